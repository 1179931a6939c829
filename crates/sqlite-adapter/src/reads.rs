//! Reads: each is one statement, so it sees one consistent snapshot; in WAL mode it runs
//! beside the writer and waits for none. The same statements serve a write transaction's own
//! reads.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use domain::store::{PageRequest, Reads, Stored, Timestamp};
use domain::{
    EventAudit, EventId, EventSnapshot, InventorySnapshot, Readiness, Reservation, ReservationId,
};
use store_sql::{AuditRow, Dialect, InventoryAuditRow, InventoryRow};

use crate::error::SqliteStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::store::Session;
use crate::time::to_text;

/// A snapshot as this store reads it.
type SnapshotRow = store_sql::SnapshotRow<EventRow>;

fn shared() -> &'static store_sql::Statements {
    store_sql::statements(Dialect::Sqlite)
}

/// A JSON array of the values, bound as one text whatever their number (SQLite allows at
/// most 32,766 parameters in a statement).
pub(crate) fn json_array<T: std::fmt::Display>(
    values: impl Iterator<Item = T>,
    quoted: bool,
) -> String {
    let items: Vec<String> = values
        .map(|v| {
            if quoted {
                format!("\"{v}\"")
            } else {
                v.to_string()
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn snapshots(rows: Vec<SnapshotRow>) -> Stored<Vec<EventSnapshot>> {
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        found.push(row.counts.of(row.event.try_into()?));
    }
    Ok(found)
}

impl Reads for Session<'_> {
    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let rows = diesel::sql_query(shared().snapshots.as_str())
            .bind::<Text, _>(json_array(ids.iter().map(|id| id.get()), false))
            .bind::<Text, _>(to_text(now))
            .load(self.conn)
            .map_err(SqliteStoreError::from)?;
        snapshots(rows)
    }

    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let last = page.before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
        let rows = diesel::sql_query(shared().page.as_str())
            .bind::<BigInt, _>(last)
            .bind::<Text, _>(to_text(now))
            .bind::<BigInt, _>(i64::from(page.limit))
            .load(self.conn)
            .map_err(SqliteStoreError::from)?;
        snapshots(rows)
    }

    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        // Reservation ids are hyphenated UUIDs: nothing in them needs escaping in JSON.
        let rows: Vec<ReservationRow> = diesel::sql_query(shared().reservations.as_str())
            .bind::<Text, _>(json_array(ids.iter(), true))
            .load(self.conn)
            .map_err(SqliteStoreError::from)?;
        Ok(rows
            .into_iter()
            .map(Reservation::try_from)
            .collect::<Result<_, _>>()?)
    }

    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>> {
        let row = diesel::sql_query(shared().audit.as_str())
            .bind::<BigInt, _>(id.get())
            .bind::<Text, _>(to_text(now))
            .get_result::<AuditRow>(self.conn)
            .optional()
            .map_err(SqliteStoreError::from)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rows: Vec<InventoryAuditRow> = diesel::sql_query(shared().audit_inventory.as_str())
            .bind::<BigInt, _>(id.get())
            .bind::<Text, _>(to_text(now))
            .load(self.conn)
            .map_err(SqliteStoreError::from)?;
        Ok(Some(store_sql::into_audit(row, &rows)))
    }

    fn inventories(
        &mut self,
        events: &[EventId],
        now: Timestamp,
    ) -> Stored<Vec<InventorySnapshot>> {
        let rows: Vec<InventoryRow> = diesel::sql_query(shared().inventories.as_str())
            .bind::<Text, _>(json_array(events.iter().map(|id| id.get()), false))
            .bind::<Text, _>(to_text(now))
            .load(self.conn)
            .map_err(SqliteStoreError::from)?;
        store_sql::into_snapshots(&rows)
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        Ok(Readiness {
            pending_migrations: crate::migrations::pending(self.conn)?,
        })
    }
}
