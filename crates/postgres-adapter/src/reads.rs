//! Reads: each is one statement, so it sees one consistent snapshot, takes no lock and waits
//! for no writer. The same statements serve a write transaction's own reads.

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Int8, Timestamptz, Uuid as SqlUuid};
use domain::store::{PageRequest, Reads, Stored, Timestamp};
use domain::{EventAudit, EventId, EventSnapshot, Readiness, Reservation, ReservationId};
use store_sql::Dialect;
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::{CountersRow, EventRow, ReservationRow};
use crate::statement::Prepared;
use crate::store::Session;

#[derive(Debug, QueryableByName)]
struct SnapshotRow {
    #[diesel(embed)]
    event: EventRow,
    #[diesel(embed)]
    counters: CountersRow,
    #[diesel(sql_type = Int4)]
    past_due: i32,
}

impl From<SnapshotRow> for EventSnapshot {
    fn from(r: SnapshotRow) -> Self {
        Self {
            event: r.event.into(),
            purchased: r.counters.purchased_count,
            held: r.counters.reserved_count,
            past_due: r.past_due,
        }
    }
}

/// The events among `$1`, at `$2`.
static SNAPSHOTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events e WHERE e.id = ANY($1)",
        store_sql::snapshot_columns(Dialect::Postgres, "$2")
    )
});

/// Up to `$3` events with ids at most `$1`, newest first, at `$2`.
static LIST_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events e WHERE e.id <= $1 ORDER BY e.id DESC LIMIT $3",
        store_sql::snapshot_columns(Dialect::Postgres, "$2")
    )
});

static AUDIT_SQL: LazyLock<String> =
    LazyLock::new(|| store_sql::audit_statement(Dialect::Postgres));

#[derive(Debug, QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = Int4)]
    capacity: i32,
    #[diesel(embed)]
    counters: CountersRow,
    #[diesel(sql_type = Int8)]
    purchased_tickets: i64,
    #[diesel(sql_type = Int8)]
    reserved_tickets: i64,
    #[diesel(sql_type = Int8)]
    active_tickets: i64,
}

/// No row lock: inside a write transaction, every writer of a reservation holds its event's
/// lock, so the rows read here cannot change before the commit (and the writes re-check
/// `status = 'reserved'` all the same).
const RESERVATIONS_SQL: &str = "
SELECT r.id, r.event_id, r.status, r.quantity, r.customer, r.purchased_at, r.expires_at,
       r.payment_reference, r.created_at, r.updated_at
  FROM reservations r
 WHERE r.id = ANY($1)
 ORDER BY r.id";

/// The ids, as PostgreSQL binds them.
pub(crate) fn uuids(ids: &[ReservationId]) -> Vec<Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}

fn snapshots(rows: Vec<SnapshotRow>) -> Vec<EventSnapshot> {
    rows.into_iter().map(EventSnapshot::from).collect()
}

impl Reads for Session<'_> {
    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows = Prepared::new(&SNAPSHOTS_SQL)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Timestamptz, _>(now)
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(snapshots(rows))
    }

    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let last = page.before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
        let rows = Prepared::new(&LIST_SQL)
            .bind::<BigInt, _>(last)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(page.limit))
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(snapshots(rows))
    }

    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        let rows: Vec<ReservationRow> = Prepared::new(RESERVATIONS_SQL)
            .bind::<Array<SqlUuid>, _>(uuids(ids))
            .load(self.conn)
            .map_err(PgStoreError::from)?;
        Ok(rows
            .into_iter()
            .map(Reservation::try_from)
            .collect::<Result<_, _>>()?)
    }

    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>> {
        let row = Prepared::new(&AUDIT_SQL)
            .bind::<BigInt, _>(id.get())
            .bind::<Timestamptz, _>(now)
            .get_result::<AuditRow>(self.conn)
            .optional()
            .map_err(PgStoreError::from)?;
        Ok(row.map(|r| EventAudit {
            capacity: r.capacity,
            purchased_counter: r.counters.purchased_count,
            held_counter: r.counters.reserved_count,
            purchased_tickets: r.purchased_tickets,
            reserved_tickets: r.reserved_tickets,
            active_tickets: r.active_tickets,
        }))
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        Ok(Readiness {
            pending_migrations: crate::migrations::pending(self.conn)?,
        })
    }
}
