//! Reads: each is one statement, so it sees one consistent snapshot, takes no lock and waits
//! for no writer. The same statements serve a write transaction's own reads.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Timestamptz, Uuid as SqlUuid};
use domain::store::{PageRequest, Reads, Stored, Timestamp};
use domain::{
    EventAudit, EventId, EventSnapshot, InventorySnapshot, Readiness, Reservation, ReservationId,
};
use store_sql::{AuditRow, Dialect, InventoryAuditRow, InventoryRow};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::statement::Prepared;
use crate::store::Session;

/// A snapshot as this store reads it.
type SnapshotRow = store_sql::SnapshotRow<EventRow>;

fn shared() -> &'static store_sql::Statements {
    store_sql::statements(Dialect::Postgres)
}

/// The ids, as PostgreSQL binds them.
pub(crate) fn uuids(ids: &[ReservationId]) -> Vec<Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}

fn snapshots(rows: Vec<SnapshotRow>) -> Vec<EventSnapshot> {
    rows.into_iter()
        .map(|r| r.counts.of(r.event.into()))
        .collect()
}

impl Reads for Session<'_> {
    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows = Prepared::new(&shared().snapshots)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Timestamptz, _>(now)
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(snapshots(rows))
    }

    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let last = page.before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
        let rows = Prepared::new(&shared().page)
            .bind::<BigInt, _>(last)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(page.limit))
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(snapshots(rows))
    }

    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        let rows: Vec<ReservationRow> = Prepared::new(&shared().reservations)
            .bind::<Array<SqlUuid>, _>(uuids(ids))
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(rows
            .into_iter()
            .map(Reservation::try_from)
            .collect::<Result<_, _>>()?)
    }

    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>> {
        let row = Prepared::new(&shared().audit)
            .bind::<BigInt, _>(id.get())
            .bind::<Timestamptz, _>(now)
            .get_result::<AuditRow>(self.conn)
            .optional()
            .map_err(PgStoreError::from)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rows: Vec<InventoryAuditRow> = Prepared::new(&shared().audit_inventory)
            .bind::<BigInt, _>(id.get())
            .bind::<Timestamptz, _>(now)
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(Some(store_sql::into_audit(row, &rows)))
    }

    fn inventories(
        &mut self,
        events: &[EventId],
        now: Timestamp,
    ) -> Stored<Vec<InventorySnapshot>> {
        let raw: Vec<i64> = events.iter().map(|id| id.get()).collect();
        let rows: Vec<InventoryRow> = Prepared::new(&shared().inventories)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Timestamptz, _>(now)
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        store_sql::into_snapshots(&rows)
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        Ok(Readiness {
            pending_migrations: crate::migrations::pending(self.conn)?,
        })
    }
}
