//! Reads: each is one statement, so it sees one consistent snapshot; in WAL mode it runs
//! beside the writer and waits for none.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::sqlite::SqliteConnection;
use domain::{EventAudit, EventId, EventSnapshot, Reservation, ReservationId};

use crate::error::SqliteStoreError;
use crate::models::{EventRow, ReservationRow};
use crate::time::to_text;

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

impl TryFrom<SnapshotRow> for EventSnapshot {
    type Error = SqliteStoreError;

    fn try_from(r: SnapshotRow) -> Result<Self, Self::Error> {
        Ok(Self {
            event: r.event.try_into()?,
            purchased: r.purchased_count,
            held: r.reserved_count,
            past_due: r.past_due,
        })
    }
}

/// The ids come as one JSON array, so the text is the same for any number of them.
const SNAPSHOTS_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       COALESCE((SELECT sum(r.quantity) FROM reservations r
                  WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= ?2), 0)
         AS past_due
  FROM events e
 WHERE e.id IN (SELECT value FROM json_each(?1))";

/// A JSON array of the ids.
fn json_ids(ids: impl Iterator<Item = i64>) -> String {
    let list: Vec<String> = ids.map(|id| id.to_string()).collect();
    format!("[{}]", list.join(","))
}

pub(crate) fn event_snapshots(
    conn: &mut SqliteConnection,
    ids: &[EventId],
    now: DateTime<Utc>,
) -> Result<Vec<EventSnapshot>, SqliteStoreError> {
    let rows: Vec<SnapshotRow> = diesel::sql_query(SNAPSHOTS_SQL)
        .bind::<Text, _>(json_ids(ids.iter().map(|id| id.get())))
        .bind::<Text, _>(to_text(now))
        .load(conn)?;
    rows.into_iter().map(EventSnapshot::try_from).collect()
}

const LIST_SQL: &str = "
SELECT e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, e.updated_at,
       COALESCE((SELECT sum(r.quantity) FROM reservations r
                  WHERE r.event_id = e.id AND r.status = 'reserved' AND r.expires_at <= ?2), 0)
         AS past_due
  FROM events e
 WHERE e.id <= ?1
 ORDER BY e.id DESC
 LIMIT ?3";

pub(crate) fn list_events(
    conn: &mut SqliteConnection,
    before: Option<EventId>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Vec<EventSnapshot>, SqliteStoreError> {
    let last = before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
    let rows: Vec<SnapshotRow> = diesel::sql_query(LIST_SQL)
        .bind::<BigInt, _>(last)
        .bind::<Text, _>(to_text(now))
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)?;
    rows.into_iter().map(EventSnapshot::try_from).collect()
}

pub(crate) fn reservations(
    conn: &mut SqliteConnection,
    ids: &[ReservationId],
) -> Result<Vec<Reservation>, SqliteStoreError> {
    use crate::schema::reservations::dsl;
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut found = Vec::with_capacity(ids.len());
    // SQLite allows at most 32,766 parameters in a statement.
    for chunk in keys.chunks(10_000) {
        let rows: Vec<ReservationRow> = dsl::reservations
            .filter(dsl::id.eq_any(chunk))
            .order(dsl::id)
            .select(ReservationRow::as_select())
            .load(conn)?;
        for row in rows {
            found.push(Reservation::try_from(row)?);
        }
    }
    Ok(found)
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
    purchased_tickets: i64,
    #[diesel(sql_type = BigInt)]
    reserved_tickets: i64,
    #[diesel(sql_type = BigInt)]
    active_tickets: i64,
}

const AUDIT_SQL: &str = "
SELECT e.capacity, e.purchased_count, e.reserved_count,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'purchased'), 0) AS purchased_tickets,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved'), 0) AS reserved_tickets,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved' AND r.expires_at > ?2), 0)
         AS active_tickets
  FROM events e
  LEFT JOIN reservations r ON r.event_id = e.id
 WHERE e.id = ?1
 GROUP BY e.id";

pub(crate) fn audit_event(
    conn: &mut SqliteConnection,
    id: EventId,
    now: DateTime<Utc>,
) -> Result<Option<EventAudit>, SqliteStoreError> {
    let row = diesel::sql_query(AUDIT_SQL)
        .bind::<BigInt, _>(id.get())
        .bind::<Text, _>(to_text(now))
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
