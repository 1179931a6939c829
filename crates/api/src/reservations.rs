//! Reserve, purchase, cancel and read reservations.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{EventId, PaymentReference, PurchaseRequest, ReservationId};
use serde_json::Value;

use crate::body::optional_object;
use crate::dto::{HoldCreated, ReservationBody};
use crate::error::ApiError;
use crate::state::{blocking, AppState};

pub(crate) async fn reserve(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body carries nothing yet, but a broken one is still refused.
    optional_object(&req, &body)?;
    let event: EventId = path.parse().map_err(|_| ApiError::invalid_event())?;
    let hold = state
        .reservations
        .submit(event, ())
        .await
        .map_err(ApiError::from_reserve)?;
    Ok(HttpResponse::Created().json(HoldCreated::from(hold)))
}

pub(crate) async fn purchase(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // An unknown reservation answers 404 before its body is looked at.
    let id: ReservationId = path.parse().map_err(|_| ApiError::NotFound)?;
    let body = optional_object(&req, &body)?.unwrap_or_default();
    let reference = match body.get("payment_reference") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => PaymentReference::parse(raw)?,
        Some(_) => {
            return Err(ApiError::invalid(
                "payment_reference",
                "The payment reference must be a string.",
            ));
        }
    };
    let bought = state
        .purchases
        .submit(
            (),
            PurchaseRequest {
                id,
                payment_reference: reference,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ReservationBody::from(bought)))
}

pub(crate) async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id: ReservationId = path.parse().map_err(|_| ApiError::NotFound)?;
    optional_object(&req, &body)?;
    let ticketing = state.ticketing.clone();
    let canceled = blocking(move || ticketing.cancel(id)).await??;
    Ok(HttpResponse::Ok().json(ReservationBody::from(canceled)))
}

pub(crate) async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ReservationId = path.parse().map_err(|_| ApiError::NotFound)?;
    let ticketing = state.ticketing.clone();
    let found = blocking(move || ticketing.reservation(id)).await??;
    Ok(HttpResponse::Ok().json(ReservationBody::from(found)))
}
