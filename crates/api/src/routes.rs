//! The routes, shared by `ticketctl serve` and the tests.

use actix_web::{web, HttpResponse, Resource};

use crate::body::MAX_BODY_BYTES;
use crate::dto::Health;
use crate::error::ApiError;
use crate::openapi::ApiDocs;
use crate::state::AppState;
use crate::{events, reservations};

/// A resource that answers other methods with a JSON 405 naming the ones it accepts.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

/// Is the process serving? Answers without touching the database.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    responses((status = 200, description = "The process serves.", body = Health)),
)]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

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
                resource("/api/reservations/{reservation}", "GET")
                    .route(web::get().to(reservations::show)),
            )
            .service(
                resource("/api/events", "GET, POST")
                    .route(web::get().to(events::list))
                    .route(web::post().to(events::create)),
            )
            .service(resource("/health", "GET").route(web::get().to(health)))
            .configure(crate::openapi::configure(docs))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound)
            }));
    }
}
