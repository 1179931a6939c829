//! Request bodies: optional JSON objects, read by hand so that every failure gets the answer
//! the API gives it (415, 400, 422; README, "HTTP API") instead of an extractor's plain-text
//! error.

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};

/// The largest body accepted; larger ones are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn is_json_content_type(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| {
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// The body as a JSON object, or `None` when there is no body (or only white space).
pub(crate) fn optional_object(
    req: &HttpRequest,
    body: &[u8],
) -> Result<Option<Map<String, Value>>, ApiError> {
    // Only a body of no bytes is no body: whitespace alone is not JSON, and is refused as such.
    if body.is_empty() {
        return Ok(None);
    }
    if !is_json_content_type(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(body) {
        Err(e) => Err(ApiError::MalformedJson(e.to_string())),
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::invalid(
            "body",
            "The request body must be a JSON object.",
        )),
    }
}

/// Adds a domain validation error to the answer's field errors.
pub(crate) fn record(errors: &mut FieldErrors, err: domain::DomainError) {
    if let domain::DomainError::Validation { field, message } = err {
        errors.entry(field).or_default().push(message);
    }
}

/// A JSON number that is an integer: `10`, but also `10.0` or `1e1`, which JSON Schema counts
/// as integers too. `None` for fractions, other types and values beyond `i64`.
pub(crate) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // Beyond ±2^63 a float cannot be an i64; the bound itself is excluded.
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let fits = f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64;
            #[allow(clippy::cast_possible_truncation)]
            fits.then_some(f as i64)
        }),
        _ => None,
    }
}

/// An integer field whose JSON value may be too large for `i64`: positive overflows read as
/// `i64::MAX`, so range checks refuse them with their own message.
pub(crate) fn saturating_integer(value: &Value) -> Option<i64> {
    integer(value).or_else(|| match value {
        Value::Number(n) if n.is_u64() => Some(i64::MAX),
        Value::Number(n) => {
            n.as_f64().filter(|f| f.fract() == 0.0).map(
                |f| {
                    if f > 0.0 {
                        i64::MAX
                    } else {
                        i64::MIN
                    }
                },
            )
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn json_req() -> HttpRequest {
        TestRequest::default()
            .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
            .to_http_request()
    }

    #[test]
    fn integers_include_integral_floats_and_nothing_else() {
        use serde_json::json;
        assert_eq!(integer(&json!(10)), Some(10));
        assert_eq!(integer(&json!(10.0)), Some(10));
        assert_eq!(integer(&json!(-3.0)), Some(-3));
        assert_eq!(integer(&json!(1.5)), None);
        assert_eq!(integer(&json!("5")), None);
        assert_eq!(integer(&json!(u64::MAX)), None);
        assert_eq!(saturating_integer(&json!(u64::MAX)), Some(i64::MAX));
        assert_eq!(saturating_integer(&json!(1e300)), Some(i64::MAX));
        assert_eq!(saturating_integer(&json!(true)), None);
    }

    #[test]
    fn an_empty_body_needs_no_content_type() {
        let req = TestRequest::default().to_http_request();
        assert!(matches!(optional_object(&req, b""), Ok(None)));
        // Whitespace is a body, and not JSON.
        let json = TestRequest::default()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request();
        assert!(matches!(
            optional_object(&json, b"  \n"),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn a_body_must_be_sent_as_json() {
        let form = TestRequest::default()
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        assert!(matches!(
            optional_object(&form, b"{}"),
            Err(ApiError::UnsupportedMediaType)
        ));
        let bare = TestRequest::default().to_http_request();
        assert!(matches!(
            optional_object(&bare, b"{}"),
            Err(ApiError::UnsupportedMediaType)
        ));
        let problem = TestRequest::default()
            .insert_header((header::CONTENT_TYPE, "application/merge-patch+json"))
            .to_http_request();
        assert!(matches!(optional_object(&problem, b"{}"), Ok(Some(_))));
    }

    #[test]
    fn malformed_json_and_non_objects_are_refused() {
        assert!(matches!(
            optional_object(&json_req(), b"{"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            optional_object(&json_req(), b"[1]"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            optional_object(&json_req(), b"null"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(optional_object(&json_req(), br#"{"a":1}"#), Ok(Some(m)) if m.len() == 1));
    }
}
