//! Event creation and the read-only views of an event.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Int8, Timestamptz};
use domain::{DomainError, Event, EventAudit, EventId, EventSnapshot, NewEvent};

use crate::error::PgStoreError;
use crate::models::{EventRow, NewEventRow};
use crate::schema::events;

pub(crate) fn create_event(
    conn: &mut PgConnection,
    new: &NewEvent,
    now: DateTime<Utc>,
) -> Result<Event, PgStoreError> {
    let row = diesel::insert_into(events::table)
        .values(NewEventRow {
            name: new.name.as_str(),
            capacity: new.capacity.get(),
            created_at: now,
            updated_at: now,
        })
        .returning(EventRow::as_returning())
        .get_result(conn)?;
    Ok(row.into())
}

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

/// One statement, so the counters and the past-due count come from the same snapshot. The
/// past-due count is a range scan of `(event_id, status, expires_at)`, short while the expiry
/// sweep runs.
const SNAPSHOT_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       (SELECT count(*) FROM reservations r
         WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= $2)::int4 AS past_due
  FROM events e
 WHERE e.id = $1";

pub(crate) fn event_snapshot(
    conn: &mut PgConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Result<EventSnapshot, DomainError>, PgStoreError> {
    let row = diesel::sql_query(SNAPSHOT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Timestamptz, _>(now)
        .get_result::<SnapshotRow>(conn)
        .optional()?;
    Ok(row
        .map(|r| EventSnapshot {
            event: r.event.into(),
            purchased: r.purchased_count,
            held: r.reserved_count,
            past_due: r.past_due,
        })
        .ok_or(DomainError::EventNotFound))
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
    purchased_rows: i64,
    #[diesel(sql_type = Int8)]
    reserved_rows: i64,
    #[diesel(sql_type = Int8)]
    active_rows: i64,
}

const AUDIT_SQL: &str = "
SELECT e.capacity, e.purchased_count, e.reserved_count,
       count(r.id) FILTER (WHERE r.status = 'purchased') AS purchased_rows,
       count(r.id) FILTER (WHERE r.status = 'reserved') AS reserved_rows,
       count(r.id) FILTER (WHERE r.status = 'reserved' AND r.expires_at > $2) AS active_rows
  FROM events e
  LEFT JOIN reservations r ON r.event_id = e.id
 WHERE e.id = $1
 GROUP BY e.id";

pub(crate) fn audit_event(
    conn: &mut PgConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Result<EventAudit, DomainError>, PgStoreError> {
    let row = diesel::sql_query(AUDIT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Timestamptz, _>(now)
        .get_result::<AuditRow>(conn)
        .optional()?;
    Ok(row
        .map(|r| EventAudit {
            capacity: r.capacity,
            purchased_counter: r.purchased_count,
            held_counter: r.reserved_count,
            purchased_rows: r.purchased_rows,
            reserved_rows: r.reserved_rows,
            active_rows: r.active_rows,
        })
        .ok_or(DomainError::EventNotFound))
}
