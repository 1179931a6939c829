//! The routes, shared by `ticketctl serve` and the tests.

use actix_web::{web, HttpResponse, Resource};
use serde_json::json;

use crate::body::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{events, reservations};

/// A resource that answers other methods with a JSON 405 naming the ones it accepts.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Registers every route and the shared state on an actix-web app.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            // Routes are tried in order, each dynamic one with a regex: the hot path first.
            .service(
                resource("/api/events/{event}/reserve", "POST")
                    .route(web::post().to(reservations::reserve)),
            )
            .service(resource("/api/events", "POST").route(web::post().to(events::create)))
            .service(resource("/api/events/{event}", "GET").route(web::get().to(events::show)))
            .service(
                resource("/api/reservations/{reservation}", "GET")
                    .route(web::get().to(reservations::show)),
            )
            .service(
                resource("/api/reservations/{reservation}/purchase", "POST")
                    .route(web::post().to(reservations::purchase)),
            )
            .service(
                resource("/api/reservations/{reservation}/cancel", "POST")
                    .route(web::post().to(reservations::cancel)),
            )
            .service(resource("/health", "GET").route(web::get().to(health)))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound)
            }));
    }
}
