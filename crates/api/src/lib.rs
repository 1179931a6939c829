//! The HTTP API (README, "HTTP API"): actix-web handlers, DTOs, the one place where domain
//! errors become HTTP answers ([`error`]), the batching engine ([`batching`]: group commit of
//! writes, coalesced reads), idempotency keys and the OpenAPI document.
//!
//! [`Application`] builds the server both for `ticketctl serve` and for the tests, which bind
//! port 0 and talk HTTP to it.

mod application;
mod auth;
pub mod batching;
mod body;
mod commands;
pub mod deliver;
mod drain;
pub mod dto;
pub mod error;
mod events;
mod extract;
mod hold_changes;
pub mod idempotency;
mod inventory;
mod lines;
mod messages;
pub mod openapi;
mod pages;
mod params;
pub mod rate_limit;
pub mod reads;
pub mod request;
mod reservations;
mod routes;
pub mod seats;
mod state;
pub mod stream;
mod sweeper;
mod telemetry;
pub mod webhooks;

pub use application::{ApiConfig, Application, RateLimitConfig};
pub use auth::AdminToken;
pub use commands::HttpAnswers;
pub use routes::configure;
pub use state::AppState;
pub use telemetry::install_recorder as install_metrics_recorder;
