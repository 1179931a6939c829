//! Test databases for the integration tests: every test gets a fresh PostgreSQL database,
//! copied from a migrated template (`CREATE DATABASE t TEMPLATE tpl`) and dropped `WITH (FORCE)`
//! when the test ends, so tests run in parallel without seeing each other's rows.
//!
//! Where PostgreSQL comes from, in order:
//! 1. `DATABASE_URL`, if set: the server it points at (its database is only used to create
//!    and drop the test databases);
//! 2. else a throwaway cluster made with the local PostgreSQL binaries (`initdb`, `pg_ctl`),
//!    shared by the test processes of this user and left running for the next run;
//! 3. else, when built with the `docker` feature and a Docker engine answers, a PostgreSQL
//!    container (testcontainers), one per test process;
//! 4. else the tests fail with a message saying how to get one.
#![allow(clippy::missing_panics_doc)]

mod cluster;
#[cfg(feature = "docker")]
mod container;
mod database;
mod url;

pub use cluster::{postgres_pids, PrivateCluster};
pub use database::{migrations_fingerprint, server_url, TestDatabase};
pub use url::with_database;
