//! `POST /api/events` and `GET /api/events/{event}`.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{Capacity, DomainError, EventId, EventName, NewEvent};
use serde_json::{Map, Value};

use crate::auth::require_admin;
use crate::body::optional_object;
use crate::dto::EventBody;
use crate::error::{ApiError, FieldErrors};
use crate::state::{blocking, AppState};

pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, state.admin_token.as_deref())?;
    let new = parse_new_event(&optional_object(&req, &body)?.unwrap_or_default())?;
    let ticketing = state.ticketing.clone();
    let created = blocking(move || ticketing.create_event(&new)).await??;
    tracing::info!(
        event = created.event.id.get(),
        capacity = created.event.capacity,
        "event created"
    );
    Ok(HttpResponse::Created().json(EventBody::from(created)))
}

pub(crate) async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path.parse().map_err(|_| ApiError::NotFound)?;
    let ticketing = state.ticketing.clone();
    let summary = blocking(move || ticketing.event_summary(id)).await??;
    Ok(HttpResponse::Ok().json(EventBody::from(summary)))
}

fn record(errors: &mut FieldErrors, err: DomainError) {
    if let DomainError::Validation { field, message } = err {
        errors.entry(field).or_default().push(message);
    }
}

/// Checks both fields and reports every problem at once, as the seed API did.
fn parse_new_event(body: &Map<String, Value>) -> Result<NewEvent, ApiError> {
    let mut errors = FieldErrors::new();
    let name = match body.get("name") {
        None | Some(Value::Null) => {
            errors.insert("name", vec!["The name field is required.".into()]);
            None
        }
        Some(Value::String(raw)) => EventName::parse(raw)
            .map_err(|e| record(&mut errors, e))
            .ok(),
        Some(_) => {
            errors.insert("name", vec!["The name field must be a string.".into()]);
            None
        }
    };
    let capacity = match body.get("capacity") {
        None | Some(Value::Null) => {
            errors.insert("capacity", vec!["The capacity field is required.".into()]);
            None
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let raw = n.as_i64().unwrap_or(i64::MAX);
            Capacity::new(raw).map_err(|e| record(&mut errors, e)).ok()
        }
        Some(_) => {
            errors.insert(
                "capacity",
                vec!["The capacity field must be an integer.".into()],
            );
            None
        }
    };
    match (name, capacity) {
        (Some(name), Some(capacity)) if errors.is_empty() => Ok(NewEvent { name, capacity }),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors_of(body: &Value) -> FieldErrors {
        match parse_new_event(body.as_object().unwrap_or(&Map::new())) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn parse_new_event_accepts_a_name_and_a_positive_integer_capacity() {
        let parsed = parse_new_event(
            json!({"name": " Gala ", "capacity": 3})
                .as_object()
                .unwrap_or(&Map::new()),
        );
        assert!(
            matches!(parsed, Ok(NewEvent { ref name, capacity }) if name.as_str() == "Gala" && capacity.get() == 3)
        );
    }

    #[test]
    fn parse_new_event_reports_every_field_at_once() {
        let errors = errors_of(&json!({}));
        assert_eq!(errors["name"], vec!["The name field is required."]);
        assert_eq!(errors["capacity"], vec!["The capacity field is required."]);
    }

    #[test]
    fn parse_new_event_refuses_wrong_types_and_ranges() {
        assert_eq!(
            errors_of(&json!({"name": 5, "capacity": 1}))["name"],
            vec!["The name field must be a string."]
        );
        assert_eq!(
            errors_of(&json!({"name": "x".repeat(201), "capacity": 1}))["name"],
            vec!["The name field must not be greater than 200 characters."]
        );
        for bad in [json!("5"), json!(1.5), json!(true), json!([1])] {
            assert_eq!(
                errors_of(&json!({"name": "a", "capacity": bad}))["capacity"],
                vec!["The capacity field must be an integer."]
            );
        }
        assert_eq!(
            errors_of(&json!({"name": "a", "capacity": 0}))["capacity"],
            vec!["The capacity field must be at least 1."]
        );
        assert_eq!(
            errors_of(&json!({"name": "a", "capacity": u64::MAX}))["capacity"],
            vec!["The capacity field must not be greater than 2147483647."]
        );
    }
}
