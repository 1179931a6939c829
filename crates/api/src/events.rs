//! `POST /api/events`, `GET /api/events`, `GET /api/events/{event}` and
//! `PATCH /api/events/{event}`.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{Capacity, EventId, EventName, EventPatch, NewEvent, MAX_PAGE_SIZE};
use serde_json::{Map, Value};

use crate::body::{record, saturating_integer};
use crate::dto::{EventBody, EventList};
use crate::error::{ApiError, FieldErrors};
use crate::extract::AdminRequest;
use crate::params::EventPath;
use crate::state::{AppState, Effect};

/// The page size of `GET /api/events` when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// Create an event (operators only).
#[utoipa::path(
    post,
    path = "/api/events",
    operation_id = "createEvent",
    tag = "events",
    request_body(content = crate::dto::NewEventRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new event, with all its tickets available.", body = EventBody,
            links(
                ("reserve" = (operation_id = "reserve", parameters(("event" = "$response.body#/id")),
                    description = "Hold tickets of the new event.")),
                ("getEvent" = (operation_id = "getEvent", parameters(("event" = "$response.body#/id")))),
                ("updateEvent" = (operation_id = "updateEvent", parameters(("event" = "$response.body#/id")))),
                ("createQuota" = (operation_id = "createQuota", parameters(("event" = "$response.body#/id")))),
                ("createTicketType" = (operation_id = "createTicketType", parameters(("event" = "$response.body#/id")))),
            )),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn create(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let new = parse_new_event(&admin.body()?.unwrap_or_default())?;
    let created = admin
        .run(Effect::Write, move |t| t.create_event(&new))
        .await?;
    tracing::info!(
        event = created.event.id.get(),
        capacity = created.event.capacity,
        "event created"
    );
    Ok(HttpResponse::Created().json(EventBody::from(created)))
}

/// An event and its counts in tickets. A hold past its `expires_at` stops counting at once.
#[utoipa::path(
    get,
    path = "/api/events/{event}",
    operation_id = "getEvent",
    tag = "events",
    params(EventPath),
    responses(
        (status = 200, description = "The event.", body = EventBody,
            links(("reserve" = (operation_id = "reserve", parameters(("event" = "$response.body#/id")))))),
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path.parse().map_err(|_| ApiError::NotFound)?;
    let summary = crate::reads::read(&state, &state.event_reads, id).await?;
    Ok(HttpResponse::Ok().json(EventBody::from(summary)))
}

/// Events with their counts, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "listEvents",
    tag = "events",
    params(
        ("limit" = Option<u32>, Query, description = "Events per page (default 20).",
            minimum = 1, maximum = 100),
        ("after" = Option<i64>, Query, description = "The `next` of the previous page: \
            events older than this one.", minimum = 1, format = Int64),
    ),
    responses((status = 200, description = "A page of events.", body = EventList)),
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = parse_page(req.query_string())?;
    let ticketing = state.ticketing.clone();
    let page = state
        .blocking(Effect::Read, move || ticketing.list_events(after, limit))
        .await?;
    Ok(HttpResponse::Ok().json(EventList::from(page)))
}

/// Change an event's name or capacity (operators only). The capacity is never lowered below
/// the tickets purchased and held by active holds; the change is decided under the event's
/// lock, so it cannot race a reserve.
#[utoipa::path(
    patch,
    path = "/api/events/{event}",
    operation_id = "updateEvent",
    tag = "events",
    params(EventPath),
    request_body(content = crate::dto::EventPatchRequest, content_type = "application/json"),
    responses((status = 200, description = "The event as changed.", body = EventBody)),
    security(("admin_token" = [])),
)]
pub(crate) async fn update(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let id: EventId = admin.id("event")?;
    let changes = parse_patch(&admin.required_body()?)?;
    let updated = if changes.is_empty() {
        admin
            .run(Effect::Read, move |t| t.event_summary(id))
            .await?
    } else {
        let summary = admin
            .run(Effect::Write, move |t| t.update_event(id, &changes))
            .await?;
        tracing::info!(
            event = id.get(),
            capacity = summary.event.capacity,
            "event updated"
        );
        summary
    };
    Ok(HttpResponse::Ok().json(EventBody::from(updated)))
}

pub(crate) fn parse_name(errors: &mut FieldErrors, value: &Value) -> Option<EventName> {
    if let Value::String(raw) = value {
        EventName::parse(raw).map_err(|e| record(errors, e)).ok()
    } else {
        errors.insert("name", vec!["The name field must be a string.".into()]);
        None
    }
}

fn parse_capacity(errors: &mut FieldErrors, value: &Value) -> Option<Capacity> {
    if let Some(raw) = saturating_integer(value) {
        Capacity::new(raw).map_err(|e| record(errors, e)).ok()
    } else {
        errors.insert(
            "capacity",
            vec!["The capacity field must be an integer.".into()],
        );
        None
    }
}

/// Checks both fields and reports every problem at once, as the seed API did.
pub(crate) fn parse_new_event(body: &Map<String, Value>) -> Result<NewEvent, ApiError> {
    let mut errors = FieldErrors::new();
    let name = match body.get("name") {
        None | Some(Value::Null) => {
            errors.insert("name", vec!["The name field is required.".into()]);
            None
        }
        Some(value) => parse_name(&mut errors, value),
    };
    let capacity = match body.get("capacity") {
        None | Some(Value::Null) => {
            errors.insert("capacity", vec!["The capacity field is required.".into()]);
            None
        }
        Some(value) => parse_capacity(&mut errors, value),
    };
    match (name, capacity) {
        (Some(name), Some(capacity)) if errors.is_empty() => Ok(NewEvent { name, capacity }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// The fields present are changed; `null` leaves a field as it is.
pub(crate) fn parse_patch(body: &Map<String, Value>) -> Result<EventPatch, ApiError> {
    let mut errors = FieldErrors::new();
    let mut patch = EventPatch::default();
    if let Some(value) = body.get("name").filter(|v| !v.is_null()) {
        patch.name = parse_name(&mut errors, value);
    }
    if let Some(value) = body.get("capacity").filter(|v| !v.is_null()) {
        patch.capacity = parse_capacity(&mut errors, value);
    }
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// `limit` and `after` from the query string; unknown parameters are ignored.
fn parse_page(query: &str) -> Result<(Option<EventId>, u32), ApiError> {
    let pairs = crate::params::QueryPairs::parse(query);
    let first = |name: &str| pairs.first(name);
    let mut errors = FieldErrors::new();
    let limit = match first("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.insert(
                    "limit",
                    vec![format!(
                        "The limit must be an integer between 1 and {MAX_PAGE_SIZE}."
                    )],
                );
                DEFAULT_PAGE_SIZE
            }
        },
    };
    let after = match first("after") {
        None => None,
        Some(raw) => {
            if let Ok(id) = raw.parse::<EventId>() {
                Some(id)
            } else {
                errors.insert(
                    "after",
                    vec!["The after cursor must be the next value of a previous page.".into()],
                );
                None
            }
        }
    };
    if errors.is_empty() {
        Ok((after, limit))
    } else {
        Err(ApiError::Validation(errors))
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
            json!({"name": " Gala ", "capacity": 3.0})
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

    #[test]
    fn a_patch_changes_only_the_fields_present() {
        let patch = parse_patch(json!({"capacity": 5, "name": null}).as_object().unwrap()).unwrap();
        assert_eq!(
            (patch.name, patch.capacity.map(Capacity::get)),
            (None, Some(5))
        );
        assert!(parse_patch(&Map::new()).unwrap().is_empty());
        assert!(matches!(
            parse_patch(json!({"name": "  "}).as_object().unwrap()),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn a_page_is_20_events_by_default_and_at_most_100() {
        assert_eq!(parse_page("").unwrap(), (None, 20));
        assert_eq!(
            parse_page("limit=5&after=9&x=y").unwrap(),
            (Some(EventId::new(9)), 5)
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=abc",
            "after=0",
            "after=-1",
            "after=x",
        ] {
            assert!(parse_page(bad).is_err(), "{bad}");
        }
    }
}
