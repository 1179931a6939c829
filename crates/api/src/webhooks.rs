//! `/api/webhooks`: operators subscribe endpoints to the outbox, list them with their
//! deliveries, remove them, and retry a delivery by hand. The signing secret is shown once,
//! in the answer that creates it.

use actix_web::HttpResponse;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::webhook::{DeliveryRecord, Endpoint, EndpointId, EndpointUrl, KindFilter, NewEndpoint};
use domain::Ticketing;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, FieldErrors};
use crate::extract::AdminRequest;
use crate::state::Effect;

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookBody {
    /// Its id.
    #[schema(format = Int64, minimum = 1)]
    id: i64,
    /// Where messages are sent (`POST`).
    url: String,
    /// The kinds of message it gets (`["*"]`: all).
    events: Vec<&'static str>,
    /// Whether messages are still sent (a 410 answer turns it off).
    enabled: bool,
    /// Why it was turned off.
    disabled_reason: Option<String>,
    /// When it was added.
    created_at: DateTime<Utc>,
    /// The signing secret (`whsec_` and base64 of 32 bytes): only in the answer that creates
    /// the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookBody {
    /// The body of `endpoint`, with its `secret` only when it was just made.
    pub fn of(endpoint: Endpoint, secret: Option<String>) -> Self {
        Self {
            id: endpoint.id.get(),
            url: endpoint.url,
            events: endpoint.kinds.names(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            created_at: endpoint.created_at,
            secret,
        }
    }
}

/// The endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// By id.
    webhooks: Vec<WebhookBody>,
}

/// A delivery of a message to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    /// Its id.
    #[schema(format = Int64)]
    id: i64,
    /// The message's event.
    #[schema(format = Int64)]
    event_id: i64,
    /// The message's number among the event's.
    #[schema(format = Int64)]
    seq: i64,
    /// The message's kind.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `pending`, `delivered` or `failed`.
    status: &'static str,
    /// Attempts made.
    attempts: u32,
    /// When the next attempt is due (pending ones).
    next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status.
    last_status: Option<u16>,
    /// The last attempt's error, when it got no answer.
    last_error: Option<String>,
}

impl From<DeliveryRecord> for DeliveryBody {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            event_id: d.event.get(),
            seq: d.seq,
            kind: d.kind.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

/// An endpoint's latest deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    deliveries: Vec<DeliveryBody>,
}

/// Body of `POST /api/webhooks`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WebhookRequest {
    /// `http://` or `https://`; private, loopback and link-local addresses are refused when
    /// sending unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`.
    #[schema(
        example = "https://shop.example/hooks/tickets",
        max_length = 2000,
        pattern = r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?([/?#][!-~]*)?$"
    )]
    url: String,
    /// Kinds of message, or `["*"]` alone for all.
    #[schema(example = json!(["reservation.purchased", "event.sold_out"]), min_items = 1)]
    events: Vec<WebhookKind>,
}

/// A kind of message an endpoint may ask for.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum WebhookKind {
    /// Every kind (alone in the list).
    #[schema(rename = "*")]
    All,
    /// A hold was granted.
    #[schema(rename = "reservation.created")]
    Created,
    /// A hold was bought.
    #[schema(rename = "reservation.purchased")]
    Purchased,
    /// A hold was canceled.
    #[schema(rename = "reservation.canceled")]
    Canceled,
    /// A hold ran out.
    #[schema(rename = "reservation.expired")]
    Expired,
    /// A hold was given more time.
    #[schema(rename = "reservation.extended")]
    Extended,
    /// Part of a hold went back on sale.
    #[schema(rename = "reservation.released")]
    Released,
    /// The event changed.
    #[schema(rename = "event.updated")]
    Updated,
    /// The event sold out.
    #[schema(rename = "event.sold_out")]
    SoldOut,
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The endpoint a `POST /api/webhooks` body asks for.
///
/// # Errors
/// [`ApiError::Validation`] naming each bad field.
pub fn parse_request(body: &serde_json::Map<String, Value>) -> Result<NewEndpoint, ApiError> {
    let mut errors = FieldErrors::new();
    let url = if let Some(raw) = body.get("url").and_then(Value::as_str) {
        EndpointUrl::parse(raw)
            .map_err(|e| errors.insert("url", vec![message_of(&e)]))
            .ok()
    } else {
        errors.insert("url", vec!["The url field is required.".into()]);
        None
    };
    let kinds = match body.get("events").and_then(Value::as_array) {
        Some(items) if items.iter().all(Value::is_string) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            KindFilter::parse(&names)
                .map_err(|e| errors.insert("events", vec![message_of(&e)]))
                .ok()
        }
        _ => {
            errors.insert(
                "events",
                vec!["The events field must be a list of kinds of message, or [\"*\"].".into()],
            );
            None
        }
    };
    match (url, kinds) {
        (Some(url), Some(kinds)) if errors.is_empty() => Ok(NewEndpoint { url, kinds }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Subscribe an endpoint to the outbox (operators only). Every message of the kinds it names,
/// from the commit of this request on, is sent to it (`POST`), signed as Standard Webhooks says
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret in this answer,
/// which is never shown again.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    operation_id = "createWebhook",
    tag = "webhooks",
    request_body(content = WebhookRequest, content_type = "application/json"),
    responses((status = 201, description = "The endpoint, with its secret.", body = WebhookBody)),
    security(("admin_token" = [])),
)]
pub(crate) async fn create(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let new = parse_request(&admin.required_body()?)?;
    let secret = new_secret();
    let kept = secret.clone();
    let endpoint = admin
        .run(Effect::Write, move |t| t.add_endpoint(&new, &kept))
        .await?;
    // The URL may carry the receiver's own token: it is not logged.
    tracing::info!(webhook = endpoint.id.get(), "webhook endpoint added");
    Ok(HttpResponse::Created().json(WebhookBody::of(endpoint, Some(secret))))
}

/// The endpoints (operators only; secrets are not shown).
#[utoipa::path(
    get,
    path = "/api/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    responses((status = 200, description = "The endpoints, by id.", body = WebhookList)),
    security(("admin_token" = [])),
)]
pub(crate) async fn list(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let endpoints = admin.run(Effect::Read, Ticketing::endpoints).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: endpoints
            .into_iter()
            .map(|e| WebhookBody::of(e, None))
            .collect(),
    }))
}

/// Remove an endpoint (operators only): nothing more is sent to it; its pending deliveries
/// fail; its deliveries stay listed.
#[utoipa::path(
    delete,
    path = "/api/webhooks/{webhook}",
    operation_id = "removeWebhook",
    tag = "webhooks",
    params(("webhook" = i64, Path, description = "The endpoint id.", minimum = 1)),
    responses((status = 200, description = "Removed.", body = Object,
        example = json!({"id": 1, "removed": true}))),
    security(("admin_token" = [])),
)]
pub(crate) async fn remove(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let id: EndpointId = admin.id("webhook")?;
    admin
        .run(Effect::Write, move |t| t.remove_endpoint(id))
        .await?;
    tracing::info!(webhook = id.get(), "webhook endpoint removed");
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id.get(), "removed": true})))
}

/// An endpoint's latest deliveries, newest first (operators only).
#[utoipa::path(
    get,
    path = "/api/webhooks/{webhook}/deliveries",
    operation_id = "listDeliveries",
    tag = "webhooks",
    params(("webhook" = i64, Path, description = "The endpoint id.", minimum = 1),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100).",
            minimum = 1, maximum = 1000)),
    responses((status = 200, description = "Its deliveries.", body = DeliveryList)),
    security(("admin_token" = [])),
)]
pub(crate) async fn deliveries(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let id: EndpointId = admin.id("webhook")?;
    let limit = crate::messages::limit_of(admin.query())?;
    let found = admin
        .run(Effect::Read, move |t| t.deliveries(id, limit))
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: found.into_iter().map(DeliveryBody::from).collect(),
    }))
}

/// Try a delivery again now, whatever its status (operators only).
#[utoipa::path(
    post,
    path = "/api/webhooks/{webhook}/deliveries/{delivery}/retry",
    operation_id = "retryDelivery",
    tag = "webhooks",
    params(("webhook" = i64, Path, description = "The endpoint id.", minimum = 1),
        ("delivery" = i64, Path, description = "The delivery id.", minimum = 1)),
    responses((status = 202, description = "Pending again, due now.", body = Object,
        example = json!({"id": 7, "status": "pending"}))),
    security(("admin_token" = [])),
)]
pub(crate) async fn retry(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let id: EndpointId = admin.id("webhook")?;
    let delivery: domain::EventId = admin.id("delivery")?;
    let delivery = delivery.get();
    admin
        .run(Effect::Write, move |t| t.retry_delivery(id, delivery))
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"id": delivery, "status": "pending"})))
}

/// The message of a domain validation error.
fn message_of(err: &domain::DomainError) -> String {
    match err {
        domain::DomainError::Validation { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_is_whsec_and_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn a_request_names_every_bad_field() {
        let bad = json!({"url": "ftp://x", "events": ["nope"]});
        match parse_request(bad.as_object().unwrap()) {
            Err(ApiError::Validation(errors)) => {
                assert!(errors.contains_key("url") && errors.contains_key("events"));
            }
            other => panic!("{other:?}"),
        }
        let good = json!({"url": "https://a.example/h", "events": ["*"]});
        assert!(parse_request(good.as_object().unwrap()).is_ok());
    }
}
