//! The store ports of `domain` on PostgreSQL.
//!
//! Every write is one transaction on one pooled connection, in which the domain drives the
//! primitives of [`domain::store::UnitOfWork`]: event rows are locked with `SELECT ... FOR
//! UPDATE` in id order before any reservation row, so writers serialize per event across any
//! number of server processes and never deadlock each other. The decisions themselves are the
//! domain's pure functions; this crate only runs SQL.

mod apply;
mod error;
mod migrations;
mod models;
mod pool;
mod reads;
mod redaction;
mod schema;
mod statement;
mod store;
mod unit_of_work;

pub use error::PgStoreError;
pub use migrations::{migrate_url, MIGRATIONS_DIR};
pub use pool::{PgStore, PoolSettings};
pub use redaction::{is_local as is_local_url, redact as redact_url};
