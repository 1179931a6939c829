//! The connection pool behind [`PgStore`].

use std::fmt;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::{Nullable, Text};

use crate::error::PgStoreError;
use crate::redaction::{redact, Secrets};

/// How the pool is sized, and the limits of its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most connections the pool opens.
    pub max_size: u32,
    /// How long a call waits for a free connection (and how long start-up waits for the first
    /// one) before failing as unavailable.
    pub checkout_timeout: Duration,
    /// `statement_timeout` of every session, in milliseconds (0: none). PostgreSQL does not
    /// apply it to a transaction's commit work.
    pub statement_timeout_ms: u32,
    /// `lock_timeout` of every session, in milliseconds (0: none).
    pub lock_timeout_ms: u32,
    /// `idle_in_transaction_session_timeout` of every session, in milliseconds (0: none).
    pub idle_in_transaction_timeout_ms: u32,
}

impl PoolSettings {
    /// A statement that runs longer has lost its client already (requests are answered 503
    /// after 2 s); cancelling it frees its connection and locks.
    pub const DEFAULT_STATEMENT_TIMEOUT_MS: u32 = 5_000;
    /// A batch waits for another server's batch on the same event for a few milliseconds; two
    /// seconds means something holds the row that should not.
    pub const DEFAULT_LOCK_TIMEOUT_MS: u32 = 2_000;
    /// This service never leaves a transaction idle; a session that does (a stalled process)
    /// would hold its events' row locks until ended.
    pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 10_000;

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
            statement_timeout_ms: Self::DEFAULT_STATEMENT_TIMEOUT_MS,
            lock_timeout_ms: Self::DEFAULT_LOCK_TIMEOUT_MS,
            idle_in_transaction_timeout_ms: Self::DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        }
    }
}

/// How often the pool tries again to open a connection while the database refuses them (the
/// shortest delay r2d2 allows): the server's share of recovering from an outage or a failover.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(200);

pub(crate) type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// The PostgreSQL store: implements every port of `domain::store`.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
    settings: PoolSettings,
    /// Taken out of every connection error: libpq quotes parts of the URL in its messages.
    secrets: Secrets,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PgStore")
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets)
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
/// statistics say. A scan of a table with no index to use (webhook endpoints, a handful of
/// rows) is then costed above `jit_above_cost`, and compiling it took 180 ms inside a batch
/// holding its event's lock: JIT is off too (never worth it for statements this short).
const PLANNER_SQL: &str = "SET enable_seqscan = off; SET enable_hashjoin = off; SET jit = off;";

/// The timeouts of the settings, as statements.
fn timeouts_sql(settings: &PoolSettings) -> String {
    format!(
        "SET statement_timeout = {}; SET lock_timeout = {}; \
         SET idle_in_transaction_session_timeout = {};",
        settings.statement_timeout_ms,
        settings.lock_timeout_ms,
        settings.idle_in_transaction_timeout_ms
    )
}

#[derive(Debug)]
struct SessionSettings {
    sql: String,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The pool's error, without the URL's secrets that libpq's message may quote.
fn pool_error(secrets: &Secrets, error: &r2d2::Error) -> PgStoreError {
    PgStoreError::Pool(secrets.scrub(&error.to_string()))
}

/// Reports the pool's connection failures through `tracing` instead of `log`, without the
/// URL's secrets.
#[derive(Debug)]
struct TracingErrorHandler(Secrets);

impl<E: fmt::Display> r2d2::HandleError<E> for TracingErrorHandler {
    fn handle_error(&self, error: E) {
        let error = self.0.scrub(&error.to_string());
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
        let secrets = Secrets::of(url);
        let unreachable = |e| pool_error(&secrets, &e);
        let pool = Pool::builder()
            .max_size(settings.max_size.max(1))
            .min_idle(Some(0))
            // r2d2 retries a failed connection attempt after a delay that doubles up to half
            // its `connection_timeout`: with the checkout timeout there (5 s by default), the
            // first connection after an outage came up to 2.5 s after the database was back.
            // Checkouts pass their own timeout, so this only sets the retry interval.
            .connection_timeout(RECONNECT_INTERVAL * 2)
            // A checkout test would add a round trip to every request; a broken connection
            // shows up as an error on first use and r2d2 then discards it.
            .test_on_check_out(false)
            .error_handler(Box::new(TracingErrorHandler(secrets.clone())))
            .connection_customizer(Box::new(SessionSettings {
                sql: format!("{PLANNER_SQL} {}", timeouts_sql(&settings)),
            }))
            .event_handler(Box::new(store_metrics::PoolMetrics::new("postgres")))
            .build(ConnectionManager::<PgConnection>::new(url))
            .map_err(unreachable)?;
        // Fail now, with the server's own message, rather than on the first request.
        drop(
            pool.get_timeout(settings.checkout_timeout)
                .map_err(unreachable)?,
        );
        Ok(Self {
            pool,
            settings,
            secrets,
        })
    }

    pub(crate) fn conn(&self) -> Result<PgPooled, PgStoreError> {
        self.pool
            .get_timeout(self.settings.checkout_timeout)
            .map_err(|e| pool_error(&self.secrets, &e))
    }

    /// Applies the pending migrations (see [`crate::migrate_url`]) on a pooled connection.
    ///
    /// # Errors
    /// [`PgStoreError::Migration`] or a connection error.
    pub fn migrate(&self) -> Result<Vec<String>, PgStoreError> {
        let mut conn = self.conn()?;
        // Building an index on a large table may take minutes: no timeouts while migrating.
        conn.batch_execute("SET statement_timeout = 0; SET lock_timeout = 0;")?;
        let applied = crate::migrations::run_pending(&mut conn);
        conn.batch_execute(&timeouts_sql(&self.settings))?;
        applied
    }

    /// The TLS version of this store's connections (`None`: not encrypted), as the server
    /// sees one of them.
    ///
    /// # Errors
    /// A connection or query error.
    pub fn tls_version(&self) -> Result<Option<String>, PgStoreError> {
        #[derive(QueryableByName)]
        struct Ssl {
            #[diesel(sql_type = Nullable<Text>)]
            version: Option<String>,
        }
        let row: Ssl = diesel::sql_query(
            "SELECT CASE WHEN ssl THEN version END AS version \
             FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .get_result(&mut *self.conn()?)?;
        Ok(row.version)
    }

    /// The largest number of connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_refuses_other_schemes() {
        assert!(matches!(
            PgStore::connect("mysql://u:p@h/db", PoolSettings::default()),
            Err(PgStoreError::InvalidUrl(u)) if u == "mysql://(not shown)"
        ));
    }
}
