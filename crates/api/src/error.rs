//! Errors of the HTTP layer, and how every error becomes an answer.
//!
//! Error policy: each [`ApiError`] variant is one answer of SPEC 4, with its status code and
//! its JSON body, and [`From<DomainError>`] is the only translation from domain outcomes.
//! Answers that actix-web makes itself (unknown route, body too large, ...) are rewritten into
//! the same envelope by [`json_error_envelope`], so no client ever sees plain text or HTML.
//! Store failures are logged here with their cause and answered without it.

use std::collections::BTreeMap;

use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, StoreErrorKind};
use serde_json::json;

/// The message of every validation answer, which existing clients match on.
pub const VALIDATION_MESSAGE: &str = "The given data was invalid.";

/// Field → messages, as in the Laravel validation answer.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

/// An answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 `not_found`.
    #[error("not found")]
    NotFound,
    /// 409 `sold_out`.
    #[error("sold out")]
    SoldOut,
    /// 409 `already_purchased`.
    #[error("already purchased")]
    AlreadyPurchased,
    /// 409 `invalid_or_expired_reservation`.
    #[error("invalid or expired reservation")]
    InvalidOrExpired,
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
    /// 503 `service_unavailable`: the store cannot be reached; retrying later may work.
    #[error("service unavailable")]
    Unavailable,
    /// 500 `internal_error`.
    #[error("internal error")]
    Internal,
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

    /// The reserve endpoint answers an unknown event with 422 (seed contract), not 404.
    pub fn from_reserve(err: DomainError) -> Self {
        match err {
            DomainError::EventNotFound => Self::invalid_event(),
            other => other.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::SoldOut => "sold_out",
            Self::AlreadyPurchased => "already_purchased",
            Self::InvalidOrExpired => "invalid_or_expired_reservation",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::NotFound => "The requested resource was not found.".into(),
            Self::SoldOut => "Event is sold out.".into(),
            Self::AlreadyPurchased => "The reservation has already been purchased.".into(),
            Self::InvalidOrExpired => "The reservation is invalid or its hold has expired.".into(),
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
            Self::Internal => "An internal error occurred.".into(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::SoldOut => Self::SoldOut,
            DomainError::EventNotFound | DomainError::ReservationNotFound => Self::NotFound,
            DomainError::AlreadyPurchased => Self::AlreadyPurchased,
            DomainError::InvalidOrExpired => Self::InvalidOrExpired,
            DomainError::Validation { field, message } => Self::invalid(field, message),
            DomainError::Store(store) => {
                tracing::error!(kind = ?store.kind, error = %store.message, "store failure");
                match store.kind {
                    StoreErrorKind::Unavailable => Self::Unavailable,
                    StoreErrorKind::Internal => Self::Internal,
                }
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("the blocking thread pool is gone");
        Self::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::SoldOut | Self::AlreadyPurchased | Self::InvalidOrExpired => StatusCode::CONFLICT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Unavailable => {
                answer.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        match self {
            Self::Validation(errors) => {
                answer.json(json!({ "message": VALIDATION_MESSAGE, "errors": errors }))
            }
            _ => answer.json(json!({ "error": self.code(), "message": self.message() })),
        }
    }
}

/// The envelope for an answer actix-web made itself.
fn envelope_for(status: StatusCode) -> serde_json::Value {
    // Statuses this layer answers itself keep the same words when actix-web answers them.
    let own = match status {
        StatusCode::NOT_FOUND => Some(ApiError::NotFound),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(ApiError::UnsupportedMediaType),
        StatusCode::SERVICE_UNAVAILABLE => Some(ApiError::Unavailable),
        s if s.is_server_error() => Some(ApiError::Internal),
        _ => None,
    };
    if let Some(err) = own {
        return json!({ "error": err.code(), "message": err.message() });
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed."),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body must not be larger than 64 KiB.",
        ),
        StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed."),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long to arrive."),
        _ => ("error", "The request failed."),
    };
    json!({ "error": code, "message": message })
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
    let mut new = HttpResponse::build(status).json(envelope_for(status));
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let res: ServiceResponse<EitherBody<B>> = ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
