//! A PostgreSQL container for the test process, through testcontainers.

use std::sync::OnceLock;

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::SyncRunner;
use testcontainers_modules::testcontainers::Container;

/// Kept for the life of the process; testcontainers' reaper removes it afterwards.
static CONTAINER: OnceLock<Container<Postgres>> = OnceLock::new();

pub(crate) fn postgres_url() -> Result<String, String> {
    let container = if let Some(running) = CONTAINER.get() {
        running
    } else {
        let started = Postgres::default()
            .start()
            .map_err(|e| format!("no Docker engine for testcontainers: {e}"))?;
        CONTAINER.get_or_init(|| started)
    };
    let host = container.get_host().map_err(|e| e.to_string())?;
    let port = container
        .get_host_port_ipv4(5432)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "postgres://postgres:postgres@{host}:{port}/postgres"
    ))
}
