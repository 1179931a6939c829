//! Event creation and the read-only views of an event.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::sqlite::SqliteConnection;
use domain::{DomainError, Event, EventAudit, EventId, EventSnapshot, NewEvent};

use crate::error::SqliteStoreError;
use crate::models::{EventRow, NewEventRow};
use crate::schema::events;
use crate::time::to_text;

pub(crate) fn create_event(
    conn: &mut SqliteConnection,
    new: &NewEvent,
    now: DateTime<Utc>,
) -> Result<Event, SqliteStoreError> {
    let stamp = to_text(now);
    let row = conn.immediate_transaction(|conn| {
        diesel::insert_into(events::table)
            .values(NewEventRow {
                name: new.name.as_str(),
                capacity: new.capacity.get(),
                created_at: &stamp,
                updated_at: &stamp,
            })
            .returning(EventRow::as_returning())
            .get_result(conn)
    })?;
    row.try_into()
}

#[derive(Debug, QueryableByName)]
struct SnapshotRow {
    #[diesel(embed)]
    event: EventRow,
    #[diesel(sql_type = Integer)]
    purchased_count: i32,
    #[diesel(sql_type = Integer)]
    reserved_count: i32,
    #[diesel(sql_type = Integer)]
    past_due: i32,
}

/// One statement: one consistent snapshot of the counters and the past-due count.
const SNAPSHOT_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       (SELECT count(*) FROM reservations r
         WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= ?2) AS past_due
  FROM events e
 WHERE e.id = ?1";

pub(crate) fn event_snapshot(
    conn: &mut SqliteConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Result<EventSnapshot, DomainError>, SqliteStoreError> {
    let row = diesel::sql_query(SNAPSHOT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Text, _>(to_text(now))
        .get_result::<SnapshotRow>(conn)
        .optional()?;
    let Some(r) = row else {
        return Ok(Err(DomainError::EventNotFound));
    };
    Ok(Ok(EventSnapshot {
        event: r.event.try_into()?,
        purchased: r.purchased_count,
        held: r.reserved_count,
        past_due: r.past_due,
    }))
}

#[derive(Debug, QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = Integer)]
    capacity: i32,
    #[diesel(sql_type = Integer)]
    purchased_count: i32,
    #[diesel(sql_type = Integer)]
    reserved_count: i32,
    #[diesel(sql_type = BigInt)]
    purchased_rows: i64,
    #[diesel(sql_type = BigInt)]
    reserved_rows: i64,
    #[diesel(sql_type = BigInt)]
    active_rows: i64,
}

const AUDIT_SQL: &str = "
SELECT e.capacity, e.purchased_count, e.reserved_count,
       count(r.id) FILTER (WHERE r.status = 'purchased') AS purchased_rows,
       count(r.id) FILTER (WHERE r.status = 'reserved') AS reserved_rows,
       count(r.id) FILTER (WHERE r.status = 'reserved' AND r.expires_at > ?2) AS active_rows
  FROM events e
  LEFT JOIN reservations r ON r.event_id = e.id
 WHERE e.id = ?1
 GROUP BY e.id";

pub(crate) fn audit_event(
    conn: &mut SqliteConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Result<EventAudit, DomainError>, SqliteStoreError> {
    let row = diesel::sql_query(AUDIT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Text, _>(to_text(now))
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
