//! The seat-map page, `/events/{event}/seatmap`: an HTML page, its script and its style, all
//! compiled into the binary (closed networks: nothing is fetched from a CDN). The page drives
//! the public API only.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use domain::EventId;

use crate::error::ApiError;

const PAGE: &str = include_str!("../assets/seatmap/index.html");
const SCRIPT: &str = include_str!("../assets/seatmap/seatmap.js");
const STYLE: &str = include_str!("../assets/seatmap/seatmap.css");

/// The page of one event's seat map (404 for an id that is not one).
pub(crate) async fn seat_map(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let _: EventId = path.parse().map_err(|_| ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(PAGE))
}

/// The page's script.
pub(crate) async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

/// The page's style.
pub(crate) async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}
