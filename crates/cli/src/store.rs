//! Opens the store a database URL names: PostgreSQL or the embedded SQLite file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::{Clock, Policy, Store as Ports, SystemClock, Ticketing};
use postgres_adapter::{is_local_url, redact_url, PgStore, PoolSettings};
use sqlite_adapter::{SqliteLocation, SqliteStore};

use crate::args::PoolArgs;
use crate::error::CliError;

/// The URL used when none is given: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tickets.db";

/// Which store a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Postgres(String),
    Sqlite(SqliteLocation),
}

/// Reads a database URL: `postgres://` and `postgresql://` name PostgreSQL; `sqlite://PATH`,
/// `sqlite:PATH` and `sqlite::memory:` name SQLite.
pub fn parse_url(url: &str) -> Result<Target, CliError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        return match path {
            "" => Err(CliError::Config(format!(
                "no file in the SQLite URL {url:?}: use sqlite://PATH"
            ))),
            ":memory:" | ":memory" => Ok(Target::Sqlite(SqliteLocation::Memory)),
            path => Ok(Target::Sqlite(SqliteLocation::File(PathBuf::from(path)))),
        };
    }
    Err(CliError::Config(format!(
        "unsupported database URL {:?}: use postgres://, postgresql://, sqlite://PATH or sqlite::memory:",
        redact_url(url)
    )))
}

enum Backend {
    Postgres(Arc<PgStore>),
    Sqlite(Arc<SqliteStore>),
}

/// An opened store.
pub struct Store {
    backend: Backend,
    description: String,
}

impl Store {
    pub fn open(url: &str, pool: Option<&PoolArgs>) -> Result<Self, CliError> {
        let settings = pool.map_or_else(PoolSettings::default, |p| PoolSettings {
            max_size: p.pool_size,
            checkout_timeout: Duration::from_secs(p.pool_timeout_seconds),
            statement_timeout_ms: p.statement_timeout_ms,
            lock_timeout_ms: p.lock_timeout_ms,
            idle_in_transaction_timeout_ms: p.idle_in_transaction_timeout_ms,
        });
        match parse_url(url)? {
            Target::Postgres(url) => {
                let store = PgStore::connect(&url, settings)?;
                let tls = store.tls_version()?;
                if tls.is_none() && !is_local_url(&url) {
                    tracing::warn!(
                        "the connection to PostgreSQL is not encrypted: add sslmode=verify-full \
                         (or sslmode=require) to DATABASE_URL"
                    );
                }
                Ok(Self {
                    backend: Backend::Postgres(Arc::new(store)),
                    description: format!(
                        "PostgreSQL at {} ({})",
                        redact_url(&url),
                        tls.map_or_else(|| "no TLS".to_owned(), |v| format!("TLS: {v}"))
                    ),
                })
            }
            Target::Sqlite(location) => {
                let description = match &location {
                    SqliteLocation::File(path) => format!("SQLite file {}", path.display()),
                    SqliteLocation::Memory => "SQLite in memory (lost at exit)".to_owned(),
                };
                let store =
                    SqliteStore::open(location, settings.max_size, settings.checkout_timeout)?;
                Ok(Self {
                    backend: Backend::Sqlite(Arc::new(store)),
                    description,
                })
            }
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn max_connections(&self) -> u32 {
        match &self.backend {
            Backend::Postgres(pg) => pg.max_connections(),
            Backend::Sqlite(lite) => lite.max_connections(),
        }
    }

    /// The embedded store belongs to this program alone, so one-shot commands bring its schema
    /// up to date themselves; a PostgreSQL schema changes only by `migrate` or `serve`.
    pub fn prepare_embedded(&self) -> Result<(), CliError> {
        if let Backend::Sqlite(lite) = &self.backend {
            lite.migrate()?;
        }
        Ok(())
    }

    pub fn migrate(&self) -> Result<Vec<String>, CliError> {
        Ok(match &self.backend {
            Backend::Postgres(pg) => pg.migrate()?,
            Backend::Sqlite(lite) => lite.migrate()?,
        })
    }

    pub fn ticketing(&self, policy: Policy) -> Ticketing {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ports: Arc<dyn Ports> = match &self.backend {
            Backend::Postgres(pg) => pg.clone(),
            Backend::Sqlite(lite) => lite.clone(),
        };
        Ticketing::new(ports, clock, policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_url_picks_the_store_by_scheme() {
        assert_eq!(
            parse_url("postgres://u@h/db").ok(),
            Some(Target::Postgres("postgres://u@h/db".into()))
        );
        assert!(matches!(
            parse_url("postgresql://h/db"),
            Ok(Target::Postgres(_))
        ));
        let file = |p: &str| Some(Target::Sqlite(SqliteLocation::File(PathBuf::from(p))));
        assert_eq!(
            parse_url("sqlite://./tickets.db").ok(),
            file("./tickets.db")
        );
        assert_eq!(
            parse_url("sqlite:///var/lib/t.db").ok(),
            file("/var/lib/t.db")
        );
        assert_eq!(parse_url("sqlite:data/t.db").ok(), file("data/t.db"));
        for memory in ["sqlite::memory:", "sqlite://:memory:"] {
            assert_eq!(
                parse_url(memory).ok(),
                Some(Target::Sqlite(SqliteLocation::Memory))
            );
        }
    }

    #[test]
    fn parse_url_names_the_accepted_schemes_for_anything_else() {
        for bad in [
            "mysql://u:secret@h/db",
            "tickets.db",
            "sqlite://",
            "http://x",
        ] {
            let err = parse_url(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("sqlite") && !err.contains("secret"),
                "{bad}: {err}"
            );
        }
    }
}
