//! The HTTP API of SPEC 4: actix-web handlers, the JSON bodies, and the one place where domain
//! errors become HTTP answers ([`error`]).
//!
//! [`Application`] builds the server both for `ticketctl serve` and for the tests, which bind
//! port 0 and talk HTTP to it.

mod access_log;
mod application;
mod auth;
mod body;
pub mod dto;
pub mod error;
mod events;
mod group_commit;
mod reservations;
mod routes;
mod state;
mod sweeper;

pub use application::{ApiConfig, Application};
pub use group_commit::{GroupCommit, PurchaseGroup, ReserveGroup};
pub use routes::configure;
pub use state::AppState;
