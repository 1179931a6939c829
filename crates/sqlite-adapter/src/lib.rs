//! The store ports of `domain` on an embedded SQLite file, for a first look with no setup and
//! for single-host deployments.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock at
//! once: writers are serialized, across threads and across processes sharing the file, so the
//! availability rule holds exactly as on PostgreSQL. Within one process, writers also queue on
//! a mutex before asking SQLite, so they wait in order instead of polling SQLite's busy
//! handler. WAL mode lets reads run beside the writer; `synchronous = FULL` makes every
//! committed reservation durable.

mod apply;
mod error;
mod migrations;
mod models;
mod pool;
mod reads;
mod schema;
mod store;
mod time;
mod unit_of_work;

pub use error::SqliteStoreError;
pub use pool::{SqliteLocation, SqliteStore};
