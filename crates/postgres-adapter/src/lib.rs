//! The store ports of `domain` on PostgreSQL.
//!
//! Every port call is one transaction on one pooled connection. Reserve, purchase, cancel and
//! expire lock the event row (`SELECT ... FOR UPDATE`) before touching its reservation rows, so
//! they serialize per event across any number of server processes and never deadlock each other.
//! The decisions themselves are the domain's pure functions.

mod cancel;
mod error;
mod events;
mod expire;
mod migrations;
mod models;
mod pool;
mod purchase;
mod reserve;
mod schema;
mod store;

pub use error::PgStoreError;
pub use migrations::{migrate_url, MIGRATIONS_DIR};
pub use pool::{redact as redact_url, PgStore, PoolSettings};
