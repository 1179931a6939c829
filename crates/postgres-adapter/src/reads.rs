//! Reads: each is one statement, so it sees one consistent snapshot, takes no lock and waits
//! for no writer.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Int8, Timestamptz};
use domain::{EventAudit, EventId, EventSnapshot, Reservation, ReservationId};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::statement::Prepared;

#[derive(Debug, QueryableByName)]
struct SnapshotRow {
    #[diesel(embed)]
    event: EventRow,
    #[diesel(sql_type = Int4)]
    purchased_count: i32,
    #[diesel(sql_type = Int4)]
    reserved_count: i32,
    #[diesel(sql_type = Int4)]
    past_due: i32,
}

impl From<SnapshotRow> for EventSnapshot {
    fn from(r: SnapshotRow) -> Self {
        Self {
            event: r.event.into(),
            purchased: r.purchased_count,
            held: r.reserved_count,
            past_due: r.past_due,
        }
    }
}

/// The counters and the past-due tickets come from the same snapshot. The past-due sum is a
/// range scan of `(event_id, status, expires_at) INCLUDE (quantity)`, short while the sweep
/// runs.
const SNAPSHOTS_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       COALESCE((SELECT sum(r.quantity) FROM reservations r
                  WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= $2), 0)::int4
         AS past_due
  FROM events e
 WHERE e.id = ANY($1)";

pub(crate) fn event_snapshots(
    conn: &mut PgConnection,
    ids: &[EventId],
    now: DateTime<Utc>,
) -> Result<Vec<EventSnapshot>, PgStoreError> {
    let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let rows: Vec<SnapshotRow> = Prepared::new(SNAPSHOTS_SQL)
        .bind::<Array<BigInt>, _>(raw)
        .bind::<Timestamptz, _>(now)
        .load(conn)?;
    Ok(rows.into_iter().map(EventSnapshot::from).collect())
}

const LIST_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       COALESCE((SELECT sum(r.quantity) FROM reservations r
                  WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= $2), 0)::int4
         AS past_due
  FROM events e
 WHERE e.id <= $1
 ORDER BY e.id DESC
 LIMIT $3";

pub(crate) fn list_events(
    conn: &mut PgConnection,
    before: Option<EventId>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Vec<EventSnapshot>, PgStoreError> {
    let last = before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
    let rows: Vec<SnapshotRow> = Prepared::new(LIST_SQL)
        .bind::<BigInt, _>(last)
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)?;
    Ok(rows.into_iter().map(EventSnapshot::from).collect())
}

pub(crate) fn reservations(
    conn: &mut PgConnection,
    ids: &[ReservationId],
) -> Result<Vec<Reservation>, PgStoreError> {
    use crate::schema::reservations::dsl;
    let raw: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
    dsl::reservations
        .filter(dsl::id.eq_any(raw))
        .select(ReservationRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Reservation::try_from)
        .collect()
}

/// Reservations whose events this transaction has locked, in id order. No row lock: every
/// writer of a reservation holds its event's lock, so the rows read here cannot change before
/// the commit (and the writes re-check `status = 'reserved'` all the same).
pub(crate) fn read_reservations(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Reservation>, PgStoreError> {
    use crate::schema::reservations::dsl;
    dsl::reservations
        .filter(dsl::id.eq_any(ids))
        .order(dsl::id)
        .select(ReservationRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Reservation::try_from)
        .collect()
}

#[derive(Debug, QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = Int4)]
    capacity: i32,
    #[diesel(sql_type = Int4)]
    purchased_count: i32,
    #[diesel(sql_type = Int4)]
    reserved_count: i32,
    #[diesel(sql_type = Int8)]
    purchased_tickets: i64,
    #[diesel(sql_type = Int8)]
    reserved_tickets: i64,
    #[diesel(sql_type = Int8)]
    active_tickets: i64,
}

const AUDIT_SQL: &str = "
SELECT e.capacity, e.purchased_count, e.reserved_count,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'purchased'), 0)::int8 AS purchased_tickets,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved'), 0)::int8 AS reserved_tickets,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved' AND r.expires_at > $2), 0)::int8
         AS active_tickets
  FROM events e
  LEFT JOIN reservations r ON r.event_id = e.id
 WHERE e.id = $1
 GROUP BY e.id";

pub(crate) fn audit_event(
    conn: &mut PgConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Option<EventAudit>, PgStoreError> {
    let row = Prepared::new(AUDIT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Timestamptz, _>(now)
        .get_result::<AuditRow>(conn)
        .optional()?;
    Ok(row.map(|r| EventAudit {
        capacity: r.capacity,
        purchased_counter: r.purchased_count,
        held_counter: r.reserved_count,
        purchased_tickets: r.purchased_tickets,
        reserved_tickets: r.reserved_tickets,
        active_tickets: r.active_tickets,
    }))
}

/// For [`read_reservations`]' callers that hold domain ids.
pub(crate) fn uuids(ids: &[ReservationId]) -> Vec<Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}
