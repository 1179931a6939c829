//! Errors of the PostgreSQL adapter.
//!
//! Error policy: adapter errors never cross a port. [`PgStoreError`] says what failed in
//! PostgreSQL terms (for logs and for the command line's one-line messages), and its conversion
//! into [`DomainError::Store`] decides the one thing callers act on: whether retrying may help.
//! Constraint violations are bugs, not client errors: the domain decides before writing.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::{DomainError, StoreError};

/// What can fail in the PostgreSQL adapter.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// The URL is not a PostgreSQL URL.
    #[error("not a PostgreSQL URL (expected postgres:// or postgresql://): {0}")]
    InvalidUrl(String),
    /// No connection could be made or checked out in time: the pool's message, without the
    /// URL's secrets.
    #[error("cannot connect to PostgreSQL: {0}")]
    Pool(String),
    /// A direct connection could not be made: libpq's message, without the URL's secrets.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// A statement failed.
    #[error("PostgreSQL query failed: {0}")]
    Query(#[from] DieselError),
    /// The migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A row holds a value the schema's CHECK constraints should have refused.
    #[error("corrupt row: {0}")]
    CorruptRow(String),
}

impl PgStoreError {
    /// Whether the failure is the connection's (lost, refused, pool exhausted): retrying
    /// later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_)
            | Self::Connect(_)
            | Self::Query(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
                true
            }
            Self::Query(DieselError::DatabaseError(_, info)) if is_timeout(info.message()) => true,
            Self::Query(err) => lost_during(err),
            _ => false,
        }
    }
}

/// Whether `err` means the connection was lost while a statement ran, so the server may have
/// done it or not (for a `COMMIT`: committed or not).
pub(crate) fn lost_during(err: &DieselError) -> bool {
    match err {
        DieselError::RollbackErrorOnCommit { commit_error, .. } => lost_during(commit_error),
        DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(kind, info) => {
            matches!(kind, DatabaseErrorKind::ClosedConnection)
                || is_connection_loss(info.message())
        }
        _ => false,
    }
}

/// The session's `statement_timeout` or `lock_timeout` cancelled a statement: the transaction
/// is rolled back, and the database is too busy (or a lock is held too long) right now.
fn is_timeout(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
        || message.contains("canceling statement due to lock timeout")
}

/// libpq reports a killed or vanished server with these phrases and no specific error kind.
fn is_connection_loss(message: &str) -> bool {
    const PHRASES: [&str; 5] = [
        "terminating connection",
        "server closed the connection",
        "connection to server",
        "no connection to the server",
        "the database system is shutting down",
    ];
    PHRASES.iter().any(|p| message.contains(p))
}

impl From<PgStoreError> for DomainError {
    fn from(err: PgStoreError) -> Self {
        let message = err.to_string();
        if err.is_transient() {
            DomainError::Store(StoreError::unavailable(message))
        } else {
            DomainError::Store(StoreError::internal(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::StoreErrorKind;

    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_constraint_violations_internal() {
        let lost = PgStoreError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection unexpectedly".to_owned()),
        ));
        let check = PgStoreError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::CheckViolation,
            Box::new("violates check constraint".to_owned()),
        ));
        let kind = |e| match DomainError::from(e) {
            DomainError::Store(s) => s.kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(lost), StoreErrorKind::Unavailable);
        assert_eq!(kind(check), StoreErrorKind::Internal);
    }
}
