//! Assigned seating over HTTP: `PUT /api/events/{event}/seats` (operators) loads a plan,
//! `GET /api/events/{event}/seats` is the seat map (versioned, `ETag` / `If-None-Match`), and
//! the seats or `best_available` of a reserve and `seats` of a release.
//!
//! The seat map is the on-sale's hottest read: reads are coalesced (one statement asks for the
//! seat versions of every event waiting), a map this process holds at that version is not read
//! again, and a body is rendered (and compressed) once per version.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::seating::{MAX_PART, MAX_SEATS};
use domain::{
    EventId, NewPlan, NewRow, NewSection, Quantity, SeatMapView, SeatRequest, TicketTypeId,
};
use serde_json::{Map, Value};

use crate::body::saturating_integer;
use crate::error::{mime_json, ApiError, FieldErrors};
use crate::extract::AdminRequest;
use crate::params::EventPath;
use crate::state::{AppState, Effect};

/// The largest seating plan body, in bytes: 100,000 seats with labels of their own fit.
pub const MAX_PLAN_BYTES: usize = 8 * 1024 * 1024;

/// Seat labels of a request (`seats` of a reserve or a release): 1 to `max` distinct strings.
pub(crate) fn labels(errors: &mut FieldErrors, value: &Value, max: u32) -> Option<Vec<String>> {
    const FIELD: &str = "seats";
    let items = match value {
        Value::Array(items) if !items.is_empty() && items.len() <= max as usize => items,
        _ => {
            errors.insert(
                FIELD,
                vec![format!(
                    "The seats field must be an array of 1 to {max} seat labels."
                )],
            );
            return None;
        }
    };
    let mut labels: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(label) = item
            .as_str()
            .filter(|l| !l.is_empty() && l.len() <= 3 * MAX_PART + 2)
        else {
            errors.insert(
                FIELD,
                vec!["Each seat must be a label such as \"A-1-7\".".into()],
            );
            return None;
        };
        if labels.iter().any(|l| l == label) {
            errors.insert(FIELD, vec![format!("The seat {label} is named twice.")]);
            return None;
        }
        labels.push(label.to_owned());
    }
    Some(labels)
}

/// `best_available`: `{"quantity": n, "ticket_type"?: id, "together"?: bool}`.
fn best_available(
    errors: &mut FieldErrors,
    value: &Value,
    max: u32,
) -> Option<(Quantity, SeatRequest)> {
    const FIELD: &str = "best_available";
    let Some(object) = value.as_object() else {
        errors.insert(
            FIELD,
            vec!["The best_available field must be an object with a quantity.".into()],
        );
        return None;
    };
    let quantity = crate::lines::quantity(errors, FIELD, object.get("quantity"), max)?;
    let ticket_type = match object.get("ticket_type") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let Some(id) = saturating_integer(v).filter(|id| *id > 0 && *id < i64::MAX) else {
                errors.insert(
                    FIELD,
                    vec!["The ticket_type must be a ticket type id.".into()],
                );
                return None;
            };
            Some(TicketTypeId::new(id))
        }
    };
    let together = match object.get("together") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.insert(
                FIELD,
                vec!["The together field must be true or false.".into()],
            );
            return None;
        }
    };
    Some((
        quantity,
        SeatRequest::Best {
            quantity: quantity.get(),
            ticket_type,
            together,
        },
    ))
}

/// What a reserve body says of seats.
#[derive(Debug)]
pub(crate) enum Seated {
    /// Nothing: a plain or typed reserve.
    No,
    /// These seats, this many.
    Asked(Quantity, SeatRequest),
    /// Seats, wrongly: the errors say why.
    Invalid,
}

/// The seats a reserve body asks for.
pub(crate) fn of_reserve(errors: &mut FieldErrors, body: &Map<String, Value>, max: u32) -> Seated {
    let present = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
    let (seats, best) = (present("seats"), present("best_available"));
    if !seats && !best {
        return Seated::No;
    }
    if (seats && best) || present("quantity") || present("ticket_type") || present("lines") {
        errors.insert(
            if seats { "seats" } else { "best_available" },
            vec![
                "Send seats or best_available alone, without quantity, ticket_type or lines."
                    .into(),
            ],
        );
        return Seated::Invalid;
    }
    let asked = if seats {
        labels(errors, &body["seats"], max).and_then(|labels| {
            let quantity = Quantity::new(i64::try_from(labels.len()).ok()?, max).ok()?;
            Some((quantity, SeatRequest::Labels(labels)))
        })
    } else {
        best_available(errors, &body["best_available"], max)
    };
    match asked {
        Some((quantity, seats)) => Seated::Asked(quantity, seats),
        None => Seated::Invalid,
    }
}

fn invalid_plan(message: impl Into<String>) -> ApiError {
    ApiError::invalid("sections", message)
}

fn text<'a>(value: Option<&'a Value>, what: &str) -> Result<&'a str, ApiError> {
    value
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_plan(format!("Each {what} must have a name (a string).")))
}

/// A plan body: `{"sections": [{"name", "ticket_type"?, "rows": [{"name", "seats": n |
/// [labels], "rank"?}]}]}`; its rules are `domain::NewPlan::check`'s.
///
/// # Errors
/// [`ApiError::Validation`] on `sections`.
pub fn parse_plan(body: &Map<String, Value>) -> Result<NewPlan, ApiError> {
    let Some(Value::Array(sections)) = body.get("sections") else {
        return Err(invalid_plan(
            "The sections field must be an array of sections.",
        ));
    };
    let mut plan = NewPlan {
        sections: Vec::with_capacity(sections.len()),
    };
    let mut total = 0_usize;
    for section in sections {
        let section = section
            .as_object()
            .ok_or_else(|| invalid_plan("Each section must be an object."))?;
        let ticket_type = match section.get("ticket_type") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                saturating_integer(v)
                    .filter(|id| *id > 0 && *id < i64::MAX)
                    .map(TicketTypeId::new)
                    .ok_or_else(|| {
                        invalid_plan("A section's ticket_type must be a ticket type id.")
                    })?,
            ),
        };
        let Some(Value::Array(rows)) = section.get("rows") else {
            return Err(invalid_plan("Each section must have rows (an array)."));
        };
        let mut new = NewSection {
            name: text(section.get("name"), "section")?.to_owned(),
            ticket_type,
            rows: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            let row = row
                .as_object()
                .ok_or_else(|| invalid_plan("Each row must be an object."))?;
            let seats: Vec<String> = match row.get("seats") {
                Some(Value::Array(labels)) => labels
                    .iter()
                    .map(|l| {
                        l.as_str().map(str::to_owned).ok_or_else(|| {
                            invalid_plan("A row's seats must be a number or an array of labels.")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(v) => {
                    let n = saturating_integer(v)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=MAX_SEATS).contains(n))
                        .ok_or_else(|| {
                            invalid_plan(format!(
                                "A row's seats must be a number from 1 to {MAX_SEATS} or an array of labels."
                            ))
                        })?;
                    (1..=n).map(|i| i.to_string()).collect()
                }
                None => return Err(invalid_plan("Each row must have seats.")),
            };
            total += seats.len();
            if total > MAX_SEATS {
                return Err(invalid_plan(format!(
                    "A seating plan has at most {MAX_SEATS} seats."
                )));
            }
            let rank = match row.get("rank") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    saturating_integer(v)
                        .and_then(|r| i32::try_from(r).ok())
                        .ok_or_else(|| invalid_plan("A row's rank must be an integer."))?,
                ),
            };
            new.rows.push(NewRow {
                name: text(row.get("name"), "row")?.to_owned(),
                seats,
                rank,
            });
        }
        plan.sections.push(new);
    }
    Ok(plan)
}

/// A seat map's body, rendered once per version: as JSON and gzip-compressed.
#[derive(Debug)]
pub struct Rendered {
    version: i64,
    json: web::Bytes,
    gzip: web::Bytes,
}

/// The last body rendered per event.
#[derive(Debug, Default)]
pub struct SeatBodies(Mutex<HashMap<EventId, Arc<Rendered>>>);

impl SeatBodies {
    fn of(&self, view: &SeatMapView) -> Arc<Rendered> {
        let cached = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&view.event)
            .filter(|r| r.version == view.version)
            .cloned();
        if let Some(rendered) = cached {
            return rendered;
        }
        let rendered = Arc::new(render(view));
        let mut bodies = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if bodies
            .get(&view.event)
            .is_none_or(|kept| kept.version < rendered.version)
        {
            bodies.insert(view.event, Arc::clone(&rendered));
        }
        rendered
    }
}

/// The seat map's JSON body, as `GET /api/events/{event}/seats` answers it.
pub fn seat_map_json(view: &SeatMapView) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(&crate::dto::SeatMapBody::from(view)).unwrap_or_default()
}

fn render(view: &SeatMapView) -> Rendered {
    let json = seat_map_json(view);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let gzip = encoder
        .write_all(json.as_bytes())
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    Rendered {
        version: view.version,
        json: web::Bytes::from(json),
        gzip: web::Bytes::from(gzip),
    }
}

/// The `ETag` of a version.
fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Whether `If-None-Match` names the current version (or is `*`).
fn not_modified(req: &HttpRequest, version: i64) -> bool {
    let current = etag(version);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == current)
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn answer(state: &AppState, req: &HttpRequest, view: &SeatMapView) -> HttpResponse {
    let tag = etag(view.version);
    if not_modified(req, view.version) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::VARY, "Accept-Encoding"))
            .finish();
    }
    let rendered = state.seat_bodies.of(view);
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(mime_json())
        .insert_header((header::ETAG, tag))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if accepts_gzip(req) {
        answer
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(rendered.gzip.clone())
    } else {
        answer.body(rendered.json.clone())
    }
}

/// The seat map of an event: for each section, each row's labels and one letter per seat,
/// `F` free, `H` held by an active hold, `S` sold (a seat of a past-due hold reads `F`).
/// `ETag` is the map's version: send it as `If-None-Match` to get 304 while nothing changed.
/// Compressed with gzip when the client accepts it.
#[utoipa::path(
    get,
    path = "/api/events/{event}/seats",
    operation_id = "getSeats",
    tag = "seating",
    params(EventPath,
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the map last read: 304 while it is current.")),
    responses(
        (status = 200, description = "The seat map.", body = crate::dto::SeatMapBody,
            headers(("ETag" = String, description = "The map's version, quoted."))),
        (status = 304, description = "The map has not changed since the version named."),
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event: EventId = path.parse().map_err(|_| ApiError::NotFound)?;
    let view = crate::reads::read(&state, &state.seat_reads, event).await?;
    Ok(answer(&state, &req, &view))
}

/// Load an event's seating plan (operators only), up to 100,000 seats in one transaction. A
/// seat's label is `SECTION-ROW-SEAT`; `seats` is a number (labels `1` to n) or the labels;
/// `rank` orders rows, lower first (default: the order given). The plan sets the event's
/// capacity (and its types' quotas) to its seat counts. Refused once any seat is held or sold
/// (409 `seating_locked`).
#[utoipa::path(
    put,
    path = "/api/events/{event}/seats",
    operation_id = "putSeats",
    tag = "seating",
    params(EventPath),
    request_body(content = crate::dto::SeatPlanRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The new seat map, every seat free.", body = crate::dto::SeatMapBody,
            links(("getSeats" = (operation_id = "getSeats", parameters(("event" = "$request.path.event")))))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn load(admin: AdminRequest) -> Result<HttpResponse, ApiError> {
    let event: EventId = admin.id("event")?;
    let plan = parse_plan(&admin.required_body()?)?;
    let seats: usize = plan
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .map(|r| r.seats.len())
        .sum();
    let view = admin
        .run(Effect::Write, move |t| t.load_seating(event, &plan))
        .await?;
    tracing::info!(event = event.get(), seats, "seating plan loaded");
    Ok(answer(admin.state(), admin.request(), &view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: &Value) -> (Seated, FieldErrors) {
        let mut errors = FieldErrors::new();
        let seats = of_reserve(&mut errors, body.as_object().unwrap(), 10);
        (seats, errors)
    }

    #[test]
    fn a_reserve_names_seats_or_the_best_ones_but_not_both_nor_with_a_quantity() {
        let (seats, errors) = errors_of(&json!({"seats": ["A-1-1", "A-1-2"]}));
        assert!(errors.is_empty());
        assert!(
            matches!(seats, Seated::Asked(q, SeatRequest::Labels(l)) if q.get() == 2 && l.len() == 2)
        );
        let (seats, _) = errors_of(&json!({"best_available": {"quantity": 3}}));
        assert!(matches!(
            seats,
            Seated::Asked(
                _,
                SeatRequest::Best {
                    quantity: 3,
                    ticket_type: None,
                    together: true
                }
            )
        ));
        let (seats, _) = errors_of(&json!({"quantity": 2}));
        assert!(matches!(seats, Seated::No));
        for bad in [
            json!({"seats": ["A-1-1"], "quantity": 1}),
            json!({"seats": ["A-1-1"], "best_available": {"quantity": 1}}),
            json!({"seats": []}),
            json!({"seats": ["A-1-1", "A-1-1"]}),
            json!({"seats": [7]}),
            json!({"best_available": {"quantity": 11}}),
            json!({"best_available": {"quantity": 1, "together": "yes"}}),
        ] {
            let (seats, errors) = errors_of(&bad);
            assert!(
                matches!(seats, Seated::Invalid) && !errors.is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_plan_body_names_rows_by_count_or_labels() {
        let body = json!({"sections": [{"name": "A", "rows": [
            {"name": "1", "seats": 3},
            {"name": "2", "seats": ["a", "b"], "rank": 0}
        ]}]});
        let plan = parse_plan(body.as_object().unwrap()).unwrap();
        assert_eq!(plan.sections[0].rows[0].seats, vec!["1", "2", "3"]);
        assert_eq!(plan.sections[0].rows[1].rank, Some(0));
        for bad in [
            json!({}),
            json!({"sections": [{"name": "A"}]}),
            json!({"sections": [{"name": "A", "rows": [{"name": "1", "seats": 0}]}]}),
            json!({"sections": [{"name": "A", "rows": [{"name": "1", "seats": 100_001}]}]}),
            json!({"sections": [{"rows": [{"name": "1", "seats": 1}]}]}),
        ] {
            assert!(parse_plan(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_none_match_and_accept_encoding_are_read_as_http_says() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"3\", W/\"7\""))
            .insert_header((header::ACCEPT_ENCODING, "br, gzip;q=0.5"))
            .to_http_request();
        assert!(not_modified(&req, 7) && not_modified(&req, 3) && !not_modified(&req, 4));
        assert!(accepts_gzip(&req));
        let refused = actix_web::test::TestRequest::default()
            .insert_header((header::ACCEPT_ENCODING, "gzip;q=0"))
            .to_http_request();
        assert!(!accepts_gzip(&refused));
    }
}
