//! Opens the store a database URL names.

use std::sync::Arc;
use std::time::Duration;

use domain::{Clock, HoldTtl, SystemClock, Ticketing};
use postgres_adapter::{redact_url, PgStore, PoolSettings};

use crate::args::PoolArgs;
use crate::error::CliError;

/// An opened store.
pub struct Store {
    pg: Arc<PgStore>,
    description: String,
}

impl Store {
    pub fn open(url: Option<&str>, pool: Option<&PoolArgs>) -> Result<Self, CliError> {
        let url = url.ok_or_else(|| {
            CliError::Config(
                "no database: set DATABASE_URL or pass --database-url postgres://...".into(),
            )
        })?;
        let settings = pool.map_or_else(PoolSettings::default, |p| PoolSettings {
            max_size: p.pool_size,
            checkout_timeout: Duration::from_secs(p.pool_timeout_seconds),
        });
        let pg = PgStore::connect(url, settings)?;
        let description = format!("PostgreSQL at {}", redact_url(url));
        Ok(Self {
            pg: Arc::new(pg),
            description,
        })
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn max_connections(&self) -> u32 {
        self.pg.max_connections()
    }

    pub fn migrate(&self) -> Result<Vec<String>, CliError> {
        Ok(self.pg.migrate()?)
    }

    pub fn ticketing(&self, ttl: HoldTtl) -> Ticketing {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ticketing::new(self.pg.clone(), self.pg.clone(), clock, ttl)
    }
}
