//! The routes, shared by `ticketctl serve` and the tests.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse, Resource};
use domain::{DomainError, StoreErrorKind};

use crate::batching::Failure;
use crate::body::MAX_BODY_BYTES;
use crate::dto::Health;
use crate::error::ApiError;
use crate::openapi::ApiDocs;
use crate::state::AppState;
use crate::{events, hold_changes, inventory, pages, reservations, seats};

/// A resource that answers other methods with a JSON 405 naming the ones it accepts.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

/// Is the process serving? Answers without touching the database (same as `/health/live`).
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    responses((status = 200, description = "The process serves.", body = Health)),
)]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        webhook_backlog: None,
    })
}

/// Liveness: the process answers. No I/O, so a slow database never gets a healthy process
/// restarted.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "live",
    tag = "operations",
    responses((status = 200, description = "The process serves.", body = Health)),
)]
pub(crate) async fn live() -> HttpResponse {
    health().await
}

/// Readiness: the store answered within a second and its schema is current. Load balancers
/// send traffic only to ready instances.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "ready",
    tag = "operations",
    responses((status = 200, description = "Ready to serve.", body = Health)),
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(Ordering::Acquire) {
        return Err(ApiError::NotReady("shutting down".to_owned()));
    }
    let deadline = Instant::now() + READINESS_DEADLINE;
    // Probes that arrive together share one check, so a crowd of probes costs one round trip.
    match state.readiness.submit(0, (), deadline).await {
        Ok(readiness) if readiness.pending_migrations == 0 => Ok(HttpResponse::Ok().json(Health {
            status: "ok",
            webhook_backlog: Some(readiness.webhook_backlog),
        })),
        Ok(readiness) => Err(ApiError::NotReady(format!(
            "{} database migrations of this version are not applied (run `ticketctl migrate`)",
            readiness.pending_migrations
        ))),
        Err(Failure::Batch(err)) => Err(ApiError::NotReady(match err {
            DomainError::Store(store) if store.kind == StoreErrorKind::Unavailable => {
                "the database cannot be reached".to_owned()
            }
            _ => "the database check failed".to_owned(),
        })),
        Err(Failure::Overloaded | Failure::OutcomeUnknown) => Err(ApiError::NotReady(
            "the database did not answer within a second".to_owned(),
        )),
    }
}

/// How long `GET /health/ready` waits for the store.
const READINESS_DEADLINE: Duration = Duration::from_secs(1);

/// Registers every route and the shared state on an actix-web app.
pub fn configure(
    state: web::Data<AppState>,
    docs: web::Data<ApiDocs>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            // Routes are tried in order, each dynamic one with a regex: the hot path first.
            .service(
                resource("/api/events/{event}/reserve", "POST")
                    .route(web::post().to(reservations::reserve)),
            )
            .service(
                resource("/api/events/{event}", "GET, PATCH")
                    .route(web::get().to(events::show))
                    .route(web::patch().to(events::update)),
            )
            .service(
                resource("/api/reservations/{reservation}/purchase", "POST")
                    .route(web::post().to(reservations::purchase)),
            )
            .service(
                resource("/api/reservations/{reservation}/cancel", "POST")
                    .route(web::post().to(reservations::cancel)),
            )
            .service(
                resource("/api/reservations/{reservation}/extend", "POST")
                    .route(web::post().to(hold_changes::extend)),
            )
            .service(
                resource("/api/reservations/{reservation}/release", "POST")
                    .route(web::post().to(hold_changes::release)),
            )
            .service(
                resource("/api/reservations/{reservation}", "GET")
                    .route(web::get().to(reservations::show)),
            )
            .service(
                resource("/api/events/{event}/quotas", "POST")
                    .route(web::post().to(inventory::create_quota)),
            )
            .service(
                resource("/api/events/{event}/quotas/{quota}", "PATCH")
                    .route(web::patch().to(inventory::update_quota)),
            )
            .service(
                resource("/api/events/{event}/ticket-types", "POST")
                    .route(web::post().to(inventory::create_ticket_type)),
            )
            .service(
                resource("/api/events/{event}/seats", "GET, PUT")
                    .app_data(web::PayloadConfig::new(crate::seats::MAX_PLAN_BYTES))
                    .route(web::get().to(seats::show))
                    .route(web::put().to(seats::load)),
            )
            .service(
                resource("/api/webhooks", "GET, POST")
                    .route(web::get().to(crate::webhooks::list))
                    .route(web::post().to(crate::webhooks::create)),
            )
            .service(
                resource("/api/webhooks/{webhook}", "DELETE")
                    .route(web::delete().to(crate::webhooks::remove)),
            )
            .service(
                resource("/api/webhooks/{webhook}/deliveries", "GET")
                    .route(web::get().to(crate::webhooks::deliveries)),
            )
            .service(
                resource(
                    "/api/webhooks/{webhook}/deliveries/{delivery}/retry",
                    "POST",
                )
                .route(web::post().to(crate::webhooks::retry)),
            )
            .service(
                resource("/api/events/{event}/messages", "GET")
                    .route(web::get().to(crate::messages::list)),
            )
            .service(
                resource("/api/events/{event}/stream", "GET")
                    .route(web::get().to(crate::stream::stream)),
            )
            .service(
                resource("/api/events", "GET, POST")
                    .route(web::get().to(events::list))
                    .route(web::post().to(events::create)),
            )
            .service(
                resource("/events/{event}/seatmap", "GET").route(web::get().to(pages::seat_map)),
            )
            .service(resource("/seatmap/seatmap.js", "GET").route(web::get().to(pages::script)))
            .service(resource("/seatmap/seatmap.css", "GET").route(web::get().to(pages::style)))
            .service(resource("/health", "GET").route(web::get().to(health)))
            .service(resource("/health/live", "GET").route(web::get().to(live)))
            .service(resource("/health/ready", "GET").route(web::get().to(ready)))
            .configure(crate::openapi::configure(docs))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound)
            }));
    }
}
