//! Errors of the HTTP layer, and how every error becomes an answer.
//!
//! Error policy: each [`ApiError`] variant is one answer of the API (README, "HTTP API"), with
//! its status code, its
//! headers and its JSON body, and [`From<DomainError>`] is the only translation from domain
//! outcomes. Answers that actix-web makes itself (unknown route, body too large, ...) are
//! rewritten into the same envelope by [`json_error_envelope`], so no client ever sees plain
//! text or HTML. Store failures are logged where a request or batch meets them, with their
//! cause, and answered without it.

use std::collections::BTreeMap;

use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, OperationKind, StoreErrorKind};
use serde_json::json;

/// The message of every validation answer, which existing clients match on.
pub const VALIDATION_MESSAGE: &str = "The given data was invalid.";

/// Seconds a client is told to wait before retrying a 503, a 429 or a request still in progress.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Field → messages, as in the Laravel validation answer.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

/// An answer other than success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404 `not_found`.
    #[error("not found")]
    NotFound,
    /// 409 `sold_out`.
    #[error("sold out")]
    SoldOut,
    /// 409 `sold_out` of a typed reserve, naming each short type and its tickets left.
    #[error("sold out")]
    TypesSoldOut(Vec<domain::Shortfall>),
    /// 409 `hold_lifetime_exceeded`: an extend would make the hold last longer than
    /// `MAX_HOLD_SECONDS` from its creation.
    #[error("hold lifetime exceeded")]
    HoldLifetimeExceeded,
    /// 409 `customer_limit_reached`.
    #[error("customer limit reached")]
    CustomerLimitReached,
    /// 409 `already_purchased`.
    #[error("already purchased")]
    AlreadyPurchased,
    /// 409 `invalid_or_expired_reservation`.
    #[error("invalid or expired reservation")]
    InvalidOrExpired,
    /// 409 `capacity_below_sold`.
    #[error("capacity below sold")]
    CapacityBelowSold,
    /// 409 `idempotency_key_in_progress`, with `Retry-After`.
    #[error("idempotency key in progress")]
    IdempotencyKeyInProgress,
    /// 422 `idempotency_key_reused`.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// 422 in the Laravel shape: `{"message", "errors": {field: [messages]}}`.
    #[error("invalid input")]
    Validation(FieldErrors),
    /// 401 `unauthorized`.
    #[error("unauthorized")]
    Unauthorized,
    /// 400 `malformed_json`.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// 415 `unsupported_media_type`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 405 `method_not_allowed`, with the methods the route accepts.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 503 `service_unavailable`, with `Retry-After`: nothing was done; retrying later may
    /// work.
    #[error("service unavailable")]
    Unavailable,
    /// 503 `service_unavailable` from `GET /health/ready`, saying why, with `Retry-After`.
    #[error("not ready: {0}")]
    NotReady(String),
    /// 429 `rate_limited`, with `Retry-After` (seconds until the client's next request is let
    /// through).
    #[error("rate limited")]
    RateLimited(u64),
    /// 503 `outcome_unknown`, with `Retry-After`: the request may or may not have taken
    /// effect; retrying with the same `Idempotency-Key` tells which.
    #[error("outcome unknown")]
    OutcomeUnknown,
    /// 500 `internal_error`.
    #[error("internal error")]
    Internal,
    /// 409 `seat_unavailable`, with the seats that are taken.
    #[error("seats unavailable")]
    SeatUnavailable(Vec<String>),
    /// 409 `seating_locked`.
    #[error("seating locked")]
    SeatingLocked,
}

impl ApiError {
    /// A 422 on one field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field, vec![message.into()])]))
    }

    /// The seed's answer to reserving on an unknown or malformed event id.
    pub fn invalid_event() -> Self {
        Self::invalid("event", "The selected event is invalid.")
    }

    /// The answer to a request of `kind` that the domain refused with `err`: the reserve
    /// endpoint answers an unknown event with 422 (seed contract), not 404.
    pub fn for_operation(kind: OperationKind, err: DomainError) -> Self {
        match (kind, err) {
            (OperationKind::Reserve, DomainError::EventNotFound) => Self::invalid_event(),
            (_, other) => other.into(),
        }
    }

    /// The `error` code of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::SoldOut | Self::TypesSoldOut(_) => "sold_out",
            Self::HoldLifetimeExceeded => "hold_lifetime_exceeded",
            Self::CustomerLimitReached => "customer_limit_reached",
            Self::AlreadyPurchased => "already_purchased",
            Self::InvalidOrExpired => "invalid_or_expired_reservation",
            Self::CapacityBelowSold => "capacity_below_sold",
            Self::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unavailable | Self::NotReady(_) => "service_unavailable",
            Self::RateLimited(_) => "rate_limited",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::Internal => "internal_error",
            Self::SeatUnavailable(_) => "seat_unavailable",
            Self::SeatingLocked => "seating_locked",
        }
    }

    /// The human text of the envelope.
    pub fn message(&self) -> String {
        match self {
            Self::NotFound => "The requested resource was not found.".into(),
            Self::SoldOut | Self::TypesSoldOut(_) => "Event is sold out.".into(),
            Self::HoldLifetimeExceeded => {
                "The hold cannot last that long: it would pass the longest hold from its creation."
                    .into()
            }
            Self::CustomerLimitReached => {
                "The customer already holds or bought as many tickets of this event as allowed."
                    .into()
            }
            Self::AlreadyPurchased => "The reservation has already been purchased.".into(),
            Self::InvalidOrExpired => "The reservation is invalid or its hold has expired.".into(),
            Self::CapacityBelowSold => {
                "The capacity cannot be lower than the tickets purchased and held.".into()
            }
            Self::IdempotencyKeyInProgress => {
                "A request with this Idempotency-Key is still being served; retry shortly.".into()
            }
            Self::IdempotencyKeyReused => {
                "This Idempotency-Key was already used for a different request.".into()
            }
            Self::Validation(_) => VALIDATION_MESSAGE.into(),
            Self::Unauthorized => "A valid admin bearer token is required.".into(),
            Self::MalformedJson(why) => format!("The request body is not valid JSON: {why}"),
            Self::UnsupportedMediaType => {
                "The request body must be sent as application/json.".into()
            }
            Self::MethodNotAllowed(allow) => {
                format!("Method not allowed; this route accepts {allow}.")
            }
            Self::Unavailable => "The service is temporarily unavailable; retry shortly.".into(),
            Self::NotReady(why) => format!("Not ready: {why}."),
            Self::RateLimited(_) => "Too many requests from this client; retry later.".into(),
            Self::OutcomeUnknown => "The outcome of the request is unknown: it may or may not \
                                     have taken effect. Retry it with the same Idempotency-Key."
                .into(),
            Self::Internal => "An internal error occurred.".into(),
            Self::SeatUnavailable(_) => {
                "Some of the seats are held or sold; nothing was held.".into()
            }
            Self::SeatingLocked => "The seating plan cannot be replaced: seats of the event \
                                    are held or sold."
                .into(),
        }
    }

    /// The JSON body, exactly as sent (and as stored for idempotent replays).
    pub fn body(&self) -> String {
        let value = match self {
            // The seed's sold-out body has no other field: kept byte for byte.
            Self::Validation(errors) => {
                json!({ "message": VALIDATION_MESSAGE, "errors": errors })
            }
            // The seed's body, with the short types appended.
            Self::TypesSoldOut(short) => {
                let unavailable: Vec<serde_json::Value> = short
                    .iter()
                    .map(|s| json!({"ticket_type": s.ticket_type.get(), "available": s.available}))
                    .collect();
                let mut body = serde_json::Map::new();
                body.insert("error".into(), json!(self.code()));
                body.insert("message".into(), json!(self.message()));
                body.insert("unavailable".into(), json!(unavailable));
                serde_json::Value::Object(body)
            }
            Self::SeatUnavailable(seats) => {
                json!({ "error": self.code(), "message": self.message(), "seats": seats })
            }
            _ => json!({ "error": self.code(), "message": self.message() }),
        };
        value.to_string()
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::SoldOut => Self::SoldOut,
            DomainError::TypesSoldOut(short) => Self::TypesSoldOut(short),
            DomainError::HoldLifetimeExceeded => Self::HoldLifetimeExceeded,
            DomainError::CustomerLimitReached => Self::CustomerLimitReached,
            DomainError::EventNotFound
            | DomainError::ReservationNotFound
            | DomainError::QuotaNotFound
            | DomainError::WebhookNotFound
            | DomainError::SeatingNotFound => Self::NotFound,
            DomainError::SeatUnavailable(seats) => Self::SeatUnavailable(seats),
            DomainError::SeatingLocked => Self::SeatingLocked,
            DomainError::AlreadyPurchased => Self::AlreadyPurchased,
            DomainError::InvalidOrExpired => Self::InvalidOrExpired,
            DomainError::CapacityBelowSold => Self::CapacityBelowSold,
            DomainError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            DomainError::IdempotencyKeyInProgress => Self::IdempotencyKeyInProgress,
            DomainError::Validation { field, message } => Self::invalid(field, message),
            DomainError::Store(store) => match store.kind {
                StoreErrorKind::Unavailable => Self::Unavailable,
                StoreErrorKind::OutcomeUnknown => Self::OutcomeUnknown,
                StoreErrorKind::Internal => Self::Internal,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::SoldOut
            | Self::TypesSoldOut(_)
            | Self::HoldLifetimeExceeded
            | Self::CustomerLimitReached
            | Self::AlreadyPurchased
            | Self::InvalidOrExpired
            | Self::CapacityBelowSold
            | Self::SeatUnavailable(_)
            | Self::SeatingLocked
            | Self::IdempotencyKeyInProgress => StatusCode::CONFLICT,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable | Self::OutcomeUnknown | Self::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                answer.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed(allow) => {
                answer.insert_header((header::ALLOW, *allow));
            }
            Self::Unavailable
            | Self::OutcomeUnknown
            | Self::NotReady(_)
            | Self::IdempotencyKeyInProgress => {
                answer.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            Self::RateLimited(seconds) => {
                answer.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            _ => {}
        }
        answer.content_type(mime_json()).body(self.body())
    }
}

/// `application/json`.
pub(crate) fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// The envelope for an answer actix-web made itself.
fn envelope_for(status: StatusCode) -> String {
    // Statuses this layer answers itself keep the same words when actix-web answers them.
    let own = match status {
        StatusCode::NOT_FOUND => Some(ApiError::NotFound),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(ApiError::UnsupportedMediaType),
        StatusCode::SERVICE_UNAVAILABLE => Some(ApiError::Unavailable),
        s if s.is_server_error() => Some(ApiError::Internal),
        _ => None,
    };
    if let Some(err) = own {
        return err.body();
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed."),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body must not be larger than 64 KiB.",
        ),
        StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed."),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long to arrive."),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "The request URI is too long."),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "The request headers are too large.")
        }
        _ => ("error", "The request failed."),
    };
    json!({ "error": code, "message": message }).to_string()
}

/// Middleware handler: rewrites every error answer that is not JSON yet into the envelope,
/// keeping its status and headers (such as `Allow`).
///
/// # Errors
/// Never; the signature is what `ErrorHandlers` expects.
pub fn json_error_envelope<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status)
        .content_type(mime_json())
        .body(envelope_for(status));
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !new.headers().contains_key(header::RETRY_AFTER)
    {
        new.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    let res: ServiceResponse<EitherBody<B>> = ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sold_out_body_is_the_seeds_byte_for_byte() {
        assert_eq!(
            ApiError::SoldOut.body(),
            r#"{"error":"sold_out","message":"Event is sold out."}"#
        );
        assert_eq!(
            ApiError::invalid_event().body(),
            r#"{"errors":{"event":["The selected event is invalid."]},"message":"The given data was invalid."}"#
        );
    }

    #[test]
    fn every_new_code_has_its_status() {
        let cases = [
            (
                ApiError::CustomerLimitReached,
                409,
                "customer_limit_reached",
            ),
            (ApiError::CapacityBelowSold, 409, "capacity_below_sold"),
            (
                ApiError::IdempotencyKeyInProgress,
                409,
                "idempotency_key_in_progress",
            ),
            (
                ApiError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (ApiError::OutcomeUnknown, 503, "outcome_unknown"),
            (ApiError::Unavailable, 503, "service_unavailable"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status_code().as_u16(), err.code()), (status, code));
        }
        let retry = ApiError::OutcomeUnknown.error_response();
        assert_eq!(
            retry
                .headers()
                .get(header::RETRY_AFTER)
                .map(HeaderValue::as_bytes),
            Some(&b"1"[..])
        );
    }
}
