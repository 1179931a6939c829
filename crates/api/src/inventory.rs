//! Operators' routes for an event's inventory: `POST /api/events/{event}/quotas`,
//! `PATCH /api/events/{event}/quotas/{quota}` and `POST /api/events/{event}/ticket-types`.

use actix_web::HttpResponse;
use domain::inventory::MAX_QUOTAS_PER_TYPE;
use domain::{EventId, NewQuota, NewTicketType, Quantity, QuotaId, QuotaPatch};
use serde_json::{Map, Value};

use crate::body::saturating_integer;
use crate::dto::{QuotaBody, TicketTypeBody};
use crate::error::{ApiError, FieldErrors};
use crate::events::{parse_name, parse_new_event, parse_patch};
use crate::extract::AdminRequest;
use crate::params::EventPath;
use crate::state::Effect;

/// The largest `max_per_reservation` of a ticket type.
const MAX_PER_RESERVATION: u32 = 10_000;

/// `{quota}` in a path.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("quota"), parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct QuotaPath(
    /// The quota's id.
    #[param(minimum = 1, format = Int64)]
    i64,
);

/// Add a named quota to an event (operators only): a pool of its tickets that ticket types
/// draw from, under the event's own capacity.
#[utoipa::path(
    post,
    path = "/api/events/{event}/quotas",
    operation_id = "createQuota",
    tag = "inventory",
    params(EventPath),
    request_body(content = crate::dto::NewEventRequest, content_type = "application/json"),
    responses((status = 201, description = "The new quota, with nothing held.", body = QuotaBody)),
    security(("admin_token" = [])),
)]
pub(crate) async fn create_quota(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let event: EventId = admin.id("event")?;
    let fields = parse_new_event(&admin.required_body()?)?;
    let new = NewQuota {
        name: fields.name,
        capacity: fields.capacity,
    };
    let created = admin
        .run(Effect::Write, move |t| t.create_quota(event, &new))
        .await?;
    tracing::info!(
        event = event.get(),
        quota = created.quota.id.get(),
        "quota created"
    );
    Ok(HttpResponse::Created().json(QuotaBody::from(created)))
}

/// Change a quota's name or capacity (operators only). The capacity is never lowered below
/// the quota's tickets purchased and held by active holds (409 `capacity_below_sold`); the
/// change is decided under the event's lock.
#[utoipa::path(
    patch,
    path = "/api/events/{event}/quotas/{quota}",
    operation_id = "updateQuota",
    tag = "inventory",
    params(EventPath, QuotaPath),
    request_body(content = crate::dto::EventPatchRequest, content_type = "application/json"),
    responses((status = 200, description = "The quota as changed.", body = QuotaBody)),
    security(("admin_token" = [])),
)]
pub(crate) async fn update_quota(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let event: EventId = admin.id("event")?;
    let quota: QuotaId = admin.id("quota")?;
    let fields = parse_patch(&admin.required_body()?)?;
    let change = QuotaPatch {
        name: fields.name,
        capacity: fields.capacity,
    };
    let updated = admin
        .run(Effect::Write, move |t| {
            t.update_quota(event, quota, &change)
        })
        .await?;
    Ok(HttpResponse::Ok().json(QuotaBody::from(updated)))
}

fn parse_ticket_type(body: &Map<String, Value>) -> Result<NewTicketType, ApiError> {
    let mut errors = FieldErrors::new();
    let name = match body.get("name") {
        None | Some(Value::Null) => {
            errors.insert("name", vec!["The name field is required.".into()]);
            None
        }
        Some(value) => parse_name(&mut errors, value),
    };
    let quotas = match body.get("quotas") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_QUOTAS_PER_TYPE => items
            .iter()
            .map(|v| {
                saturating_integer(v)
                    .filter(|id| *id > 0 && *id < i64::MAX)
                    .map(QuotaId::new)
            })
            .collect::<Option<Vec<_>>>()
            .or_else(|| {
                errors.insert("quotas", vec!["The quotas must be quota ids.".into()]);
                None
            }),
        Some(_) => {
            errors.insert(
                "quotas",
                vec![format!(
                    "The quotas field must be an array of at most {MAX_QUOTAS_PER_TYPE} quota ids."
                )],
            );
            None
        }
    };
    let max = match body.get("max_per_reservation") {
        None | Some(Value::Null) => Some(None),
        Some(value) => {
            let limit = saturating_integer(value)
                .and_then(|raw| Quantity::new(raw, MAX_PER_RESERVATION).ok());
            if limit.is_none() {
                errors.insert(
                    "max_per_reservation",
                    vec![format!(
                        "The max per reservation must be an integer from 1 to {MAX_PER_RESERVATION}."
                    )],
                );
            }
            limit.map(Some)
        }
    };
    match (name, quotas, max) {
        (Some(name), Some(quotas), Some(max_per_reservation)) if errors.is_empty() => {
            Ok(NewTicketType {
                name,
                quotas,
                max_per_reservation,
            })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Add a ticket type to an event (operators only), drawing from some of its quotas; a hold of
/// n tickets of the type takes n from each of them and from the event. Once an event has a
/// ticket type, every reserve must name types.
#[utoipa::path(
    post,
    path = "/api/events/{event}/ticket-types",
    operation_id = "createTicketType",
    tag = "inventory",
    params(EventPath),
    request_body(content = crate::dto::NewTicketTypeRequest, content_type = "application/json"),
    responses((status = 201, description = "The new ticket type.", body = TicketTypeBody)),
    security(("admin_token" = [])),
)]
pub(crate) async fn create_ticket_type(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let event: EventId = admin.id("event")?;
    let new = parse_ticket_type(&admin.required_body()?)?;
    let created = admin
        .run(Effect::Write, move |t| t.create_ticket_type(event, &new))
        .await?;
    tracing::info!(
        event = event.get(),
        ticket_type = created.ticket_type.id.get(),
        "ticket type created"
    );
    Ok(HttpResponse::Created().json(TicketTypeBody::from(created)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_ticket_type_has_a_name_quota_ids_and_maybe_a_limit() {
        let ok = parse_ticket_type(
            json!({"name": "Pass", "quotas": [1, 2], "max_per_reservation": 4})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (ok.quotas.len(), ok.max_per_reservation.map(Quantity::get)),
            (2, Some(4))
        );
        for bad in [
            json!({}),
            json!({"name": "P", "quotas": "1"}),
            json!({"name": "P", "quotas": [0]}),
            json!({"name": "P", "quotas": ["1"]}),
            json!({"name": "P", "max_per_reservation": 0}),
            json!({"name": "P", "max_per_reservation": "2"}),
        ] {
            assert!(
                parse_ticket_type(bad.as_object().unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
