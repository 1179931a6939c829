//! The ports on PostgreSQL: a write transaction per [`WriteStore::write`], one statement per
//! read.

use chrono::{DateTime, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use domain::store::{ReadStore, Readiness, Work, WriteStore};
use domain::{
    DomainError, EventAudit, EventId, EventSnapshot, Reservation, ReservationId, StoreError,
};

use crate::error::PgStoreError;
use crate::pool::PgStore;
use crate::reads;
use crate::unit_of_work::PgUnitOfWork;

impl WriteStore for PgStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let mut conn = self.conn()?;
        AnsiTransactionManager::begin_transaction(&mut *conn).map_err(PgStoreError::from)?;
        if let Err(err) = work(&mut PgUnitOfWork::new(&mut conn)) {
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
    fn readiness(&self) -> Result<Readiness, DomainError> {
        let pending = crate::migrations::pending(&mut *self.conn()?)?;
        Ok(Readiness {
            pending_migrations: pending,
        })
    }

    fn event_snapshots(
        &self,
        ids: &[EventId],
        now: DateTime<Utc>,
    ) -> Result<Vec<EventSnapshot>, DomainError> {
        Ok(reads::event_snapshots(&mut *self.conn()?, ids, now)?)
    }

    fn list_events(
        &self,
        before: Option<EventId>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventSnapshot>, DomainError> {
        Ok(reads::list_events(&mut *self.conn()?, before, limit, now)?)
    }

    fn reservations(&self, ids: &[ReservationId]) -> Result<Vec<Reservation>, DomainError> {
        Ok(reads::reservations(&mut *self.conn()?, ids)?)
    }

    fn audit_event(
        &self,
        id: EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<EventAudit>, DomainError> {
        Ok(reads::audit_event(&mut *self.conn()?, id, now)?)
    }
}
