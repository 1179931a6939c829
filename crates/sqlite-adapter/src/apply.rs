//! Everything a transaction writes, on SQLite: one statement per kind of row, most of them per
//! row (the transaction holds the file's write lock; statements are prepared once per
//! connection and cost microseconds).

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use domain::store::{Changes, CounterDelta, StatusChange, Stored, Timestamp};
use domain::{DomainError, ReservationStatus};
use store_sql::still_reserved;

use crate::error::SqliteStoreError;
use crate::models::NewHoldRow;
use crate::schema::{idempotency_keys, reservations};
use crate::time::to_text;

/// Rows per INSERT statement: 8 parameters a row stays below SQLite's 32,766.
const INSERT_CHUNK: usize = 2_000;

fn fail(err: impl Into<SqliteStoreError>) -> DomainError {
    DomainError::from(err.into())
}

fn corrupt(what: impl Into<String>) -> DomainError {
    fail(SqliteStoreError::CorruptRow(what.into()))
}

/// One reservation row's change: `?1` the hold, `?2` its status (`reserved` while it stays
/// one), `?3` the instant, `?4` a purchase's reference, `?5` a new expiry, `?6` a new quantity
/// and `?8` new lines and `?9` new seats (NULL: unchanged), `?7` its event.
static ROW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE reservations
            SET status = ?2, updated_at = ?3,
                purchased_at = CASE WHEN ?2 = 'purchased' THEN ?3 END,
                payment_reference = CASE WHEN ?2 = 'purchased' THEN ?4 END,
                expires_at = COALESCE(?5, expires_at),
                quantity = COALESCE(?6, quantity),
                lines = COALESCE(?8, lines),
                seats = COALESCE(?9, seats)
          WHERE id = ?1 AND event_id = ?7 AND {}",
        still_reserved("reservations")
    )
});

const EVENT_COUNTERS_SQL: &str = "
UPDATE events SET reserved_count = reserved_count + ?3, purchased_count = purchased_count + ?4
 WHERE id = ?1 AND id = ?2";
const SEAT_VERSION_SQL: &str = "UPDATE events SET seat_version = seat_version + ?2 WHERE id = ?1";
const TAKE_SEAT_SQL: &str =
    "INSERT INTO seat_holds (event_id, seat_id, reservation_id) VALUES (?1, ?2, ?3)";
const FREE_SEAT_SQL: &str = "DELETE FROM seat_holds WHERE event_id = ?1 AND seat_id = ?2";
const MOVE_SEAT_SQL: &str = "
UPDATE seat_holds SET reservation_id = ?3
 WHERE event_id = ?1 AND seat_id = ?2 AND reservation_id = ?4";
const QUOTA_COUNTERS_SQL: &str = "
UPDATE quotas SET reserved_count = reserved_count + ?3, purchased_count = purchased_count + ?4
 WHERE event_id = ?1 AND id = ?2";
const TYPE_COUNTERS_SQL: &str = "
UPDATE ticket_types
   SET reserved_count = reserved_count + ?3, purchased_count = purchased_count + ?4
 WHERE event_id = ?1 AND id = ?2";

fn narrow(value: i64) -> Stored<i32> {
    i32::try_from(value).map_err(|_| corrupt("counter change out of range"))
}

/// Runs `query`, which must change exactly one row.
fn one_row(
    query: impl RunQueryDsl<SqliteConnection>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryId,
    conn: &mut SqliteConnection,
    what: &str,
) -> Stored<()> {
    let changed = query.execute(conn).map_err(fail)?;
    if changed == 1 {
        Ok(())
    } else {
        // Only a writer outside the transaction protocol can get here: change nothing.
        Err(corrupt(format!("{what}: {changed} rows changed, not 1")))
    }
}

fn counters(
    conn: &mut SqliteConnection,
    sql: &str,
    event: i64,
    id: i64,
    d: CounterDelta,
) -> Stored<()> {
    let query = diesel::sql_query(sql)
        .bind::<BigInt, _>(event)
        .bind::<BigInt, _>(id)
        .bind::<Integer, _>(narrow(d.held)?)
        .bind::<Integer, _>(narrow(d.purchased)?);
    one_row(query, conn, "counters")
}

/// The new holds, with their lines.
fn insert_holds(conn: &mut SqliteConnection, changes: &Changes, stamp: &str) -> Stored<()> {
    let rows: Vec<NewHoldRow<'_>> = changes
        .holds
        .iter()
        .map(|hold| NewHoldRow {
            id: hold.id.to_string(),
            event_id: hold.event_id.get(),
            status: ReservationStatus::Reserved.as_str(),
            quantity: hold.quantity,
            customer: hold.customer.as_deref(),
            expires_at: hold.expires_at.map(to_text),
            lines: store_sql::lines_text(&hold.lines),
            seats: store_sql::seats_text(&hold.seats),
            created_at: stamp,
            updated_at: stamp,
        })
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        diesel::insert_into(reservations::table)
            .values(chunk)
            .execute(conn)
            .map_err(fail)?;
    }
    Ok(())
}

/// Holds that stay `reserved` with a new expiry or fewer tickets (and a status, if the batch
/// also settled them).
fn change_holds(conn: &mut SqliteConnection, changes: &Changes, stamp: &str) -> Stored<()> {
    for change in &changes.hold_changes {
        let status = changes
            .statuses
            .iter()
            .find(|s| s.id == change.id)
            .map_or(ReservationStatus::Reserved, StatusChange::status);
        let reference = changes
            .statuses
            .iter()
            .find(|s| s.id == change.id)
            .and_then(|s| s.payment_reference());
        let query = diesel::sql_query(ROW_SQL.as_str())
            .bind::<Text, _>(change.id.to_string())
            .bind::<Text, _>(status.as_str())
            .bind::<Text, _>(stamp)
            .bind::<Nullable<Text>, _>(reference)
            .bind::<Nullable<Text>, _>(Some(to_text(change.expires_at)))
            .bind::<Nullable<Integer>, _>(Some(change.quantity))
            .bind::<BigInt, _>(change.event.get())
            .bind::<Nullable<Text>, _>(store_sql::lines_text(&change.lines))
            .bind::<Nullable<Text>, _>(store_sql::seats_text(&change.seats));
        one_row(query, conn, &format!("hold {}", change.id))?;
    }
    Ok(())
}

/// The seats that change hands, and the events' seat versions. The unique key on a seat refuses
/// a second holder.
fn seats(conn: &mut SqliteConnection, changes: &Changes) -> Stored<()> {
    for (to, from) in &changes.seats_moved {
        let query = diesel::sql_query(MOVE_SEAT_SQL)
            .bind::<BigInt, _>(to.event.get())
            .bind::<BigInt, _>(to.seat.get())
            .bind::<Text, _>(to.reservation.to_string())
            .bind::<Text, _>(from.to_string());
        one_row(query, conn, "a seat moving between holds")?;
    }
    for (event, seat) in &changes.seats_freed {
        let query = diesel::sql_query(FREE_SEAT_SQL)
            .bind::<BigInt, _>(event.get())
            .bind::<BigInt, _>(seat.get());
        one_row(query, conn, "a seat freed")?;
    }
    for taken in &changes.seats_taken {
        let query = diesel::sql_query(TAKE_SEAT_SQL)
            .bind::<BigInt, _>(taken.event.get())
            .bind::<BigInt, _>(taken.seat.get())
            .bind::<Text, _>(taken.reservation.to_string());
        one_row(query, conn, "a seat taken")?;
    }
    for (event, by) in &changes.seat_versions {
        let query = diesel::sql_query(SEAT_VERSION_SQL)
            .bind::<BigInt, _>(event.get())
            .bind::<BigInt, _>(*by);
        one_row(query, conn, "a seat version")?;
    }
    Ok(())
}

pub(crate) fn apply(conn: &mut SqliteConnection, changes: &Changes, now: Timestamp) -> Stored<()> {
    let stamp = to_text(now);
    insert_holds(conn, changes, &stamp)?;
    change_holds(conn, changes, &stamp)?;
    for change in &changes.statuses {
        if changes.hold_changes.iter().any(|c| c.id == change.id) {
            continue;
        }
        let query = diesel::sql_query(ROW_SQL.as_str())
            .bind::<Text, _>(change.id().to_string())
            .bind::<Text, _>(change.status().as_str())
            .bind::<Text, _>(&stamp)
            .bind::<Nullable<Text>, _>(change.payment_reference())
            .bind::<Nullable<Text>, _>(None::<String>)
            .bind::<Nullable<Integer>, _>(None::<i32>)
            .bind::<BigInt, _>(change.event.get())
            .bind::<Nullable<Text>, _>(None::<String>)
            .bind::<Nullable<Text>, _>(None::<String>);
        one_row(
            query,
            conn,
            &format!("{} is no longer reserved", change.id()),
        )?;
    }
    for (event, d) in &changes.counters {
        counters(conn, EVENT_COUNTERS_SQL, event.get(), event.get(), *d)?;
    }
    for (quota, (event, d)) in &changes.quota_counters {
        counters(conn, QUOTA_COUNTERS_SQL, event.get(), quota.get(), *d)?;
    }
    for (ticket_type, (event, d)) in &changes.type_counters {
        counters(conn, TYPE_COUNTERS_SQL, event.get(), ticket_type.get(), *d)?;
    }
    seats(conn, changes)?;
    for (key, answer) in &changes.answers {
        let query = diesel::update(idempotency_keys::table.find(key.as_str())).set((
            idempotency_keys::status.eq(i32::from(answer.status)),
            idempotency_keys::body.eq(answer.body.as_str()),
        ));
        one_row(query, conn, "an answer for an unclaimed idempotency key")?;
    }
    Ok(())
}
