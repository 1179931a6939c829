//! The connection pool and the write lock behind [`SqliteStore`].

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;

use crate::error::SqliteStoreError;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A file, created if missing.
    File(PathBuf),
    /// A private in-memory database, gone when the process ends (tests, demos).
    Memory,
}

impl fmt::Display for SqliteLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Memory => f.write_str(":memory:"),
        }
    }
}

/// How long a writer of another process may keep the write lock before a call gives up with
/// 503. Writers of this process queue on the store's mutex instead.
const BUSY_TIMEOUT_MS: u32 = 10_000;

pub(crate) type SqlitePooled = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Sets every connection up the same way.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The SQLite store: implements every port of `domain::store`.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    writer: Arc<Mutex<()>>,
    location: SqliteLocation,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database with a pool of up to `max_size` connections.
    /// An in-memory database has exactly one connection, kept for the life of the store: each
    /// SQLite connection to `:memory:` would otherwise see a database of its own.
    ///
    /// # Errors
    /// [`SqliteStoreError::Open`] when the file cannot be opened or set up.
    pub fn open(
        location: SqliteLocation,
        max_size: u32,
        checkout_timeout: Duration,
    ) -> Result<Self, SqliteStoreError> {
        let (url, max_size, keep) = match &location {
            SqliteLocation::File(path) => {
                (path.to_string_lossy().into_owned(), max_size.max(1), false)
            }
            SqliteLocation::Memory => (":memory:".to_owned(), 1, true),
        };
        let mut builder = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(checkout_timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Pragmas))
            .event_handler(Box::new(store_metrics::PoolMetrics::new("sqlite")));
        if keep {
            builder = builder.idle_timeout(None).max_lifetime(None);
        }
        let pool = builder
            .build(ConnectionManager::<SqliteConnection>::new(url))
            .map_err(|source| SqliteStoreError::Open {
                path: location.to_string(),
                source,
            })?;
        drop(pool.get().map_err(|source| SqliteStoreError::Open {
            path: location.to_string(),
            source,
        })?);
        Ok(Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            location,
        })
    }

    /// Where the database lives.
    pub fn location(&self) -> &SqliteLocation {
        &self.location
    }

    /// The largest number of connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    pub(crate) fn conn(&self) -> Result<SqlitePooled, SqliteStoreError> {
        Ok(self.pool.get()?)
    }

    /// This process's turn to write: taken before `BEGIN IMMEDIATE`, so in-process writers
    /// queue here rather than sleep-polling SQLite's lock.
    pub(crate) fn write_turn(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the pending migrations.
    ///
    /// # Errors
    /// [`SqliteStoreError::Migration`] or a connection error.
    pub fn migrate(&self) -> Result<Vec<String>, SqliteStoreError> {
        let _turn = self.write_turn();
        let mut conn = self.conn()?;
        crate::migrations::run_pending(&mut conn)
    }
}
