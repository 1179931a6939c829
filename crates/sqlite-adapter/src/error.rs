//! Errors of the SQLite adapter.
//!
//! Error policy: as for PostgreSQL, adapter errors never cross a port; the conversion into
//! [`DomainError::Store`] decides only whether retrying may help. A busy database (another
//! process held the write lock past the busy timeout) is worth retrying.

use diesel::result::Error as DieselError;
use domain::{DomainError, StoreError};

/// What can fail in the SQLite adapter.
#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
    /// The database file could not be opened.
    #[error("cannot open SQLite database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: r2d2::Error,
    },
    /// No connection could be checked out in time.
    #[error("SQLite connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A statement failed.
    #[error("SQLite query failed: {0}")]
    Query(#[from] DieselError),
    /// The migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row holds a value the schema should have refused.
    #[error("corrupt row: {0}")]
    CorruptRow(String),
}

impl SqliteStoreError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Open { .. } => true,
            Self::Query(DieselError::DatabaseError(_, info)) => {
                let message = info.message();
                message.contains("database is locked") || message.contains("busy")
            }
            _ => false,
        }
    }
}

impl From<SqliteStoreError> for DomainError {
    fn from(err: SqliteStoreError) -> Self {
        let message = err.to_string();
        if err.is_transient() {
            DomainError::Store(StoreError::unavailable(message))
        } else {
            DomainError::Store(StoreError::internal(message))
        }
    }
}
