//! Reserve, purchase, cancel and read reservations.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{
    Cancel, Customer, EventId, Operation, PaymentReference, Purchase, Quantity, ReservationId,
    Reserve,
};
use serde_json::{Map, Value};

use crate::body::optional_object;
use crate::commands;
use crate::dto::{HoldCreated, ReservationBody};
use crate::error::{ApiError, FieldErrors};
use crate::extract::HoldRequest;
use crate::params::{EventPath, IdempotencyKeyHeader, ReservationPath};
use crate::seats::Seated;
use crate::state::AppState;

/// The `customer` of a body, if it names one; a wrong one is reported in `errors`.
fn customer_of(errors: &mut FieldErrors, body: &Map<String, Value>) -> Option<Customer> {
    match body.get("customer") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Customer::parse(raw)
            .map_err(|e| crate::body::record(errors, e))
            .ok(),
        Some(_) => {
            errors.insert(
                "customer",
                vec!["The customer field must be a string.".into()],
            );
            None
        }
    }
}

/// Reads the reserve body: every problem at once.
fn parse_reserve(
    event: EventId,
    body: Option<&Map<String, Value>>,
    max_quantity: u32,
) -> Result<Reserve, ApiError> {
    let empty = Map::new();
    let body = body.unwrap_or(&empty);
    let mut errors = FieldErrors::new();
    let customer = customer_of(&mut errors, body);
    match crate::seats::of_reserve(&mut errors, body, max_quantity) {
        Seated::No => {}
        Seated::Asked(quantity, seats) if errors.is_empty() => {
            return Ok(Reserve::seated(event, quantity, customer, seats));
        }
        Seated::Asked(..) | Seated::Invalid => return Err(ApiError::Validation(errors)),
    }
    let typed = crate::lines::of_reserve(&mut errors, body, max_quantity);
    let quantity = match &typed {
        Some(crate::lines::Named::Typed(lines, field)) => {
            let total: u64 = lines.iter().map(|l| u64::from(l.quantity.get())).sum();
            let total = i64::try_from(total).unwrap_or(i64::MAX);
            Quantity::new(total, max_quantity)
                .map_err(|_| {
                    errors.entry(field).or_default().push(format!(
                        "The {field} must hold at most {max_quantity} tickets in all."
                    ));
                })
                .ok()
        }
        Some(crate::lines::Named::Untyped) => {
            crate::lines::quantity(&mut errors, "quantity", body.get("quantity"), max_quantity)
        }
        None => None,
    };
    match (typed, quantity) {
        (Some(typed), Some(quantity)) if errors.is_empty() => {
            let (lines, lines_field) = match typed {
                crate::lines::Named::Typed(lines, field) => (lines, field),
                crate::lines::Named::Untyped => (Vec::new(), "ticket_type"),
            };
            Ok(Reserve {
                lines,
                lines_field,
                ..Reserve::untyped(event, quantity, customer)
            })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Hold tickets of an event, all or nothing.
///
/// The hold lasts `RESERVATION_TTL_SECONDS`; purchase it before `expires_at`. Send an
/// `Idempotency-Key` to retry safely after a network error: a retry gets the first answer
/// again (with `Idempotent-Replayed: true`) and takes no second hold.
#[utoipa::path(
    post,
    path = "/api/events/{event}/reserve",
    operation_id = "reserve",
    tag = "reservations",
    params(EventPath, IdempotencyKeyHeader),
    request_body(content = crate::dto::ReserveRequest, content_type = "application/json",
        description = "Optional: an empty body or `{}` reserves one ticket."),
    responses(
        (status = 201, description = "The hold.", body = HoldCreated,
            links(
                ("purchase" = (operation_id = "purchase",
                    parameters(("reservation" = "$response.body#/id")),
                    description = "Buy the held tickets before `expires_at`.")),
                ("cancel" = (operation_id = "cancel",
                    parameters(("reservation" = "$response.body#/id")),
                    description = "Release the held tickets at once.")),
                ("extend" = (operation_id = "extend",
                    parameters(("reservation" = "$response.body#/id")),
                    description = "Keep the tickets longer, while the customer pays.")),
                ("release" = (operation_id = "release",
                    parameters(("reservation" = "$response.body#/id")),
                    description = "Give back some of the held tickets.")),
                ("getReservation" = (operation_id = "getReservation",
                    parameters(("reservation" = "$response.body#/id")),
                    description = "Read the reservation.")),
            )),
    ),
)]
pub(crate) async fn reserve(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let event: EventId = path.parse().map_err(|_| ApiError::invalid_event())?;
    let body = optional_object(&req, &body)?;
    let reserve = parse_reserve(event, body.as_ref(), state.max_quantity)?;
    commands::serve(&state, &req, Operation::Reserve(reserve), body.as_ref()).await
}

/// Buy a held reservation while its hold is active; a reservation is purchased at most once.
#[utoipa::path(
    post,
    path = "/api/reservations/{reservation}/purchase",
    operation_id = "purchase",
    tag = "reservations",
    params(ReservationPath, IdempotencyKeyHeader),
    request_body(content = crate::dto::PurchaseRequest, content_type = "application/json",
        description = "Optional."),
    responses(
        (status = 200, description = "The purchased reservation.", body = ReservationBody),
    ),
)]
pub(crate) async fn purchase(hold: HoldRequest) -> Result<HttpResponse, ApiError> {
    let reference = match hold.body.as_ref().and_then(|b| b.get("payment_reference")) {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => PaymentReference::parse(raw)?,
        Some(_) => {
            return Err(ApiError::invalid(
                "payment_reference",
                "The payment reference must be a string.",
            ));
        }
    };
    let id = hold.id;
    hold.serve(Operation::Purchase(Purchase {
        id,
        payment_reference: reference,
    }))
    .await
}

/// Release an active hold at once; its tickets are available again.
#[utoipa::path(
    post,
    path = "/api/reservations/{reservation}/cancel",
    operation_id = "cancel",
    tag = "reservations",
    params(ReservationPath, IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The canceled reservation.", body = ReservationBody),
    ),
)]
pub(crate) async fn cancel(hold: HoldRequest) -> Result<HttpResponse, ApiError> {
    let id = hold.id;
    hold.serve(Operation::Cancel(Cancel { id })).await
}

/// Read a reservation; a hold past its `expires_at` reads `expired` at once.
#[utoipa::path(
    get,
    path = "/api/reservations/{reservation}",
    operation_id = "getReservation",
    tag = "reservations",
    params(ReservationPath),
    responses(
        (status = 200, description = "The reservation.", body = ReservationBody,
            links(
                ("purchase" = (operation_id = "purchase",
                    parameters(("reservation" = "$response.body#/id")))),
                ("cancel" = (operation_id = "cancel",
                    parameters(("reservation" = "$response.body#/id")))),
            )),
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ReservationId = path.parse().map_err(|_| ApiError::NotFound)?;
    let found = crate::reads::read(&state, &state.reservation_reads, id).await?;
    Ok(HttpResponse::Ok().json(ReservationBody::from(found)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors_of(body: &Value) -> FieldErrors {
        match parse_reserve(EventId::new(1), body.as_object(), 10) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_reserve_without_body_or_fields_is_for_one_ticket_and_no_customer() {
        for body in [
            None,
            Some(json!({})),
            Some(json!({"quantity": null, "customer": null, "x": 1})),
        ] {
            let r = parse_reserve(
                EventId::new(1),
                body.as_ref().and_then(Value::as_object),
                10,
            )
            .unwrap();
            assert_eq!((r.quantity, r.customer), (Quantity::ONE, None));
        }
        let r = parse_reserve(
            EventId::new(1),
            json!({"quantity": 10.0, "customer": "acct"}).as_object(),
            10,
        )
        .unwrap();
        assert_eq!(
            (r.quantity.get(), r.customer.map(|c| c.as_str().to_owned())),
            (10, Some("acct".into()))
        );
    }

    #[test]
    fn a_reserve_body_reports_every_bad_field_at_once() {
        let errors = errors_of(&json!({"quantity": 11, "customer": ""}));
        assert_eq!(
            errors["quantity"],
            vec!["The quantity field must not be greater than 10."]
        );
        assert_eq!(
            errors["customer"],
            vec!["The customer field must be at least 1 character."]
        );
        for bad in [json!("2"), json!(1.5), json!(true), json!([1])] {
            assert_eq!(
                errors_of(&json!({ "quantity": bad }))["quantity"],
                vec!["The quantity field must be an integer."]
            );
        }
        assert_eq!(
            errors_of(&json!({"quantity": 0}))["quantity"],
            vec!["The quantity field must be at least 1."]
        );
        assert_eq!(
            errors_of(&json!({"quantity": u64::MAX}))["quantity"],
            vec!["The quantity field must not be greater than 10."]
        );
        assert_eq!(
            errors_of(&json!({"customer": 7}))["customer"],
            vec!["The customer field must be a string."]
        );
    }
}
