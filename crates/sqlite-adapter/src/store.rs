//! The ports on SQLite. A write takes this process's write turn, then a connection, then
//! SQLite's write lock (`BEGIN IMMEDIATE`); a read only takes a connection.

use chrono::{DateTime, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use domain::store::{ReadStore, Readiness, Work, WriteStore};
use domain::{DomainError, EventAudit, EventId, EventSnapshot, Reservation, ReservationId};

use crate::error::SqliteStoreError;
use crate::pool::SqliteStore;
use crate::reads;
use crate::unit_of_work::SqliteUnitOfWork;

impl WriteStore for SqliteStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let _turn = self.write_turn();
        let mut conn = self.conn()?;
        AnsiTransactionManager::begin_transaction_sql(&mut *conn, "BEGIN IMMEDIATE")
            .map_err(SqliteStoreError::from)?;
        if let Err(err) = work(&mut SqliteUnitOfWork::new(&mut conn)) {
            let _ = AnsiTransactionManager::rollback_transaction(&mut *conn);
            return Err(err);
        }
        // SQLite commits atomically or not at all, and reports which.
        AnsiTransactionManager::commit_transaction(&mut *conn)
            .map_err(|e| DomainError::from(SqliteStoreError::from(e)))
    }
}

impl ReadStore for SqliteStore {
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
