//! Extend a hold while the customer pays, and give back part of it.

use actix_web::HttpResponse;
use domain::{Extend, Operation, Release, ReleasePart};
use serde_json::{Map, Value};

use crate::body::saturating_integer;
use crate::dto::ReservationBody;
use crate::error::{ApiError, FieldErrors};
use crate::extract::HoldRequest;
use crate::params::{IdempotencyKeyHeader, ReservationPath};

/// `seconds`: 1 to the hold TTL, or absent (the TTL).
fn parse_extend(body: Option<&Map<String, Value>>, ttl: u32) -> Result<Option<u32>, ApiError> {
    match body.and_then(|b| b.get("seconds")) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => saturating_integer(value)
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| (1..=ttl).contains(s))
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(
                    "seconds",
                    format!("The seconds field must be an integer from 1 to {ttl}."),
                )
            }),
    }
}

/// `quantity` (an untyped hold), `lines` (a typed one) or `seats` (a seated one): one of them.
fn parse_release(body: Option<&Map<String, Value>>, max: u32) -> Result<ReleasePart, ApiError> {
    let empty = Map::new();
    let body = body.unwrap_or(&empty);
    let present = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
    let mut errors = FieldErrors::new();
    if present("seats") {
        if present("quantity") || present("lines") {
            errors.insert(
                "seats",
                vec!["Send seats alone, without quantity or lines.".into()],
            );
            return Err(ApiError::Validation(errors));
        }
        return crate::seats::labels(&mut errors, &body["seats"], max)
            .map(ReleasePart::Seats)
            .ok_or(ApiError::Validation(errors));
    }
    let part = match (present("quantity"), present("lines")) {
        (true, true) => {
            errors.insert("lines", vec!["Send a quantity or lines, not both.".into()]);
            None
        }
        (false, false) => {
            errors.insert(
                "quantity",
                vec!["The quantity field is required (or lines, for a typed hold).".into()],
            );
            None
        }
        (true, false) => crate::lines::quantity(&mut errors, "quantity", body.get("quantity"), max)
            .map(ReleasePart::Tickets),
        (false, true) => {
            crate::lines::lines(&mut errors, &body["lines"], max).map(ReleasePart::Lines)
        }
    };
    match part {
        Some(part) if errors.is_empty() => Ok(part),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Make an active hold last longer, as when the customer starts paying: `expires_at` becomes
/// the later of itself and now + `seconds`, as long as the hold lasts at most
/// `MAX_HOLD_SECONDS` from its creation (else 409 `hold_lifetime_exceeded`, nothing changed).
#[utoipa::path(
    post,
    path = "/api/reservations/{reservation}/extend",
    operation_id = "extend",
    tag = "reservations",
    params(ReservationPath, IdempotencyKeyHeader),
    request_body(content = crate::dto::ExtendRequest, content_type = "application/json",
        description = "Optional: without `seconds`, the hold TTL."),
    responses(
        (status = 200, description = "The hold, extended.", body = ReservationBody),
    ),
)]
pub(crate) async fn extend(hold: HoldRequest) -> Result<HttpResponse, ApiError> {
    let seconds = parse_extend(hold.body.as_ref(), hold.state().ttl_seconds)?;
    let id = hold.id;
    hold.serve(Operation::Extend(Extend { id, seconds })).await
}

/// Give back part of an active hold: its released tickets are available at once, the rest
/// stays held until `expires_at`. Releasing all of a hold is a cancel (422).
#[utoipa::path(
    post,
    path = "/api/reservations/{reservation}/release",
    operation_id = "release",
    tag = "reservations",
    params(ReservationPath, IdempotencyKeyHeader),
    request_body(content = crate::dto::ReleaseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The hold that remains.", body = ReservationBody),
    ),
)]
pub(crate) async fn release(hold: HoldRequest) -> Result<HttpResponse, ApiError> {
    let part = parse_release(hold.body.as_ref(), hold.state().max_quantity)?;
    let id = hold.id;
    hold.serve(Operation::Release(Release { id, part })).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn extend_takes_seconds_from_one_to_the_ttl() {
        let body = |v: Value| v.as_object().cloned();
        assert_eq!(parse_extend(None, 600), Ok(None));
        assert_eq!(
            parse_extend(body(json!({"seconds": 60})).as_ref(), 600),
            Ok(Some(60))
        );
        for bad in [json!(0), json!(601), json!("60"), json!(1.5), json!(-1)] {
            assert!(parse_extend(body(json!({ "seconds": bad })).as_ref(), 600).is_err());
        }
    }

    #[test]
    fn release_takes_a_quantity_or_lines_but_not_both_nor_neither() {
        let body = |v: Value| v.as_object().cloned();
        assert!(matches!(
            parse_release(body(json!({"quantity": 2})).as_ref(), 10),
            Ok(ReleasePart::Tickets(q)) if q.get() == 2
        ));
        assert!(matches!(
            parse_release(body(json!({"lines": [{"ticket_type": 3, "quantity": 1}]})).as_ref(), 10),
            Ok(ReleasePart::Lines(l)) if l.len() == 1
        ));
        for bad in [
            json!({}),
            json!({"quantity": 1, "lines": [{"ticket_type": 3}]}),
            json!({"quantity": 0}),
            json!({"lines": []}),
        ] {
            assert!(
                parse_release(body(bad.clone()).as_ref(), 10).is_err(),
                "{bad}"
            );
        }
        assert!(parse_release(None, 10).is_err());
    }
}
