//! The ports on PostgreSQL: a write transaction per [`WriteStore::write`], a pooled
//! connection per [`ReadStore::read`], both seen through one [`Session`].

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::PgConnection;
use domain::store::{ReadStore, ReadWork, Work, WriteStore};
use domain::{DomainError, StoreError};

use crate::error::PgStoreError;
use crate::pool::PgStore;

/// A connection seen through the domain's ports: its reads (`crate::reads`) and, inside a
/// transaction, the primitives of a unit of work (`crate::unit_of_work`).
pub(crate) struct Session<'c> {
    pub(crate) conn: &'c mut PgConnection,
}

impl WriteStore for PgStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let mut conn = self.conn()?;
        AnsiTransactionManager::begin_transaction(&mut *conn).map_err(PgStoreError::from)?;
        if let Err(err) = work(&mut store_sql::SqlWork(&mut Session { conn: &mut conn })) {
            // A broken connection cannot roll back; the pool then discards it.
            let _ = AnsiTransactionManager::rollback_transaction(&mut *conn);
            return Err(err);
        }
        // No session timeout cancels this COMMIT: PostgreSQL disarms `statement_timeout` before
        // a transaction's commit work (deferred triggers, the WAL flush, the wait for a
        // synchronous standby), and this service never sends a cancel. So a commit is never
        // cut short into a "success with a warning" that exists on one node only (tested with
        // a commit slower than the timeout).
        AnsiTransactionManager::commit_transaction(&mut *conn).map_err(|e| {
            if crate::error::lost_during(&e) {
                // The server may have committed before the connection broke: only a retry
                // with the same idempotency key can tell.
                DomainError::Store(StoreError::outcome_unknown(
                    PgStoreError::from(e).to_string(),
                ))
            } else {
                // The server answered the COMMIT with an error: nothing was committed.
                DomainError::from(PgStoreError::from(e))
            }
        })
    }
}

impl ReadStore for PgStore {
    fn read(&self, work: &mut ReadWork<'_>) -> Result<(), DomainError> {
        let mut conn = self.conn()?;
        work(&mut store_sql::SqlReads(&mut Session { conn: &mut conn }))
    }
}
