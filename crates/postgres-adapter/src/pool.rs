//! The connection pool behind [`PgStore`].

use std::fmt;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};

use crate::error::PgStoreError;

/// How the pool is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most connections the pool opens.
    pub max_size: u32,
    /// How long a call waits for a free connection (and how long start-up waits for the first
    /// one) before failing as unavailable.
    pub checkout_timeout: Duration,
}

impl PoolSettings {
    /// A pool size that suits this machine: one transaction per connection keeps each core
    /// busy while others wait on the network or the disk flush.
    pub fn default_size() -> u32 {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        u32::try_from(cores * 4).unwrap_or(u32::MAX).clamp(4, 32)
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: Self::default_size(),
            checkout_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// The PostgreSQL store: implements every port of `domain::store`.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PgStore")
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .finish()
    }
}

/// Settings of every session the service opens.
///
/// The service's statements are all lookups by key, so the right plan is always an index scan
/// and, for joins with a batch's arrays, a nested loop. Left to table statistics, PostgreSQL
/// picks sequential scans and hash joins for a table that was small when a statement was first
/// prepared, and keeps that plan while the table grows: on a new deployment's first on-sale,
/// batches slowed from 4 ms to 60 ms within seconds (seen in `just bench` on a fresh cluster).
/// Turning both off for these sessions keeps every plan on the indexes whatever the
/// statistics say.
const SESSION_SQL: &str = "SET enable_seqscan = off; SET enable_hashjoin = off;";

#[derive(Debug)]
struct SessionSettings;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SESSION_SQL)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Reports the pool's connection failures through `tracing` instead of `log`.
#[derive(Debug)]
struct TracingErrorHandler;

impl<E: fmt::Display> r2d2::HandleError<E> for TracingErrorHandler {
    fn handle_error(&self, error: E) {
        tracing::debug!(%error, "PostgreSQL connection attempt failed");
    }
}

impl PgStore {
    /// Opens a pool on `url` and waits until one connection works, so a wrong URL or an
    /// unreachable server fails here, at start, with the server's own message.
    ///
    /// # Errors
    /// [`PgStoreError::InvalidUrl`] for a URL of another scheme, [`PgStoreError::Pool`] when no
    /// connection could be made within the checkout timeout.
    pub fn connect(url: &str, settings: PoolSettings) -> Result<Self, PgStoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PgStoreError::InvalidUrl(redact(url)));
        }
        // No idle minimum: r2d2 would replenish it from a background thread, and a process
        // exiting while that thread is mid-handshake crashes in libpq's TLS teardown.
        // Connections are opened on demand and kept for reuse.
        let pool = Pool::builder()
            .max_size(settings.max_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(settings.checkout_timeout)
            // A checkout test would add a round trip to every request; a broken connection
            // shows up as an error on first use and r2d2 then discards it.
            .test_on_check_out(false)
            .error_handler(Box::new(TracingErrorHandler))
            .connection_customizer(Box::new(SessionSettings))
            .build(ConnectionManager::<PgConnection>::new(url))?;
        // Fail now, with the server's own message, rather than on the first request.
        drop(pool.get()?);
        Ok(Self { pool })
    }

    pub(crate) fn conn(&self) -> Result<PgPooled, PgStoreError> {
        Ok(self.pool.get()?)
    }

    /// Applies the pending migrations (see [`crate::migrate_url`]) on a pooled connection.
    ///
    /// # Errors
    /// [`PgStoreError::Migration`] or a connection error.
    pub fn migrate(&self) -> Result<Vec<String>, PgStoreError> {
        let mut conn = self.conn()?;
        crate::migrations::run_pending(&mut conn)
    }

    /// The largest number of connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("mysql://h/db"), "mysql://h/db");
    }

    #[test]
    fn connect_refuses_other_schemes() {
        assert!(matches!(
            PgStore::connect("mysql://u:p@h/db", PoolSettings::default()),
            Err(PgStoreError::InvalidUrl(u)) if u == "mysql://u:***@h/db"
        ));
    }
}
