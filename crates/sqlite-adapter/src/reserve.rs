//! The reserve transaction: one `BEGIN IMMEDIATE`, one decision, one insert, one counter
//! update, for a whole batch of requests.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::availability::{decide_reserve, Counters};
use domain::reservation::reserve_outcomes;
use domain::{DomainError, EventId, HoldRequest, ReservationStatus, ReserveOutcome};

use crate::error::SqliteStoreError;
use crate::models::NewHoldRow;
use crate::schema::{events, reservations};
use crate::time::to_text;

/// Rows per INSERT statement: 6 parameters a row stays below SQLite's 32,766.
const INSERT_CHUNK: usize = 2_000;

pub(crate) fn reserve(
    conn: &mut SqliteConnection,
    event: EventId,
    requests: &[HoldRequest],
    now: DateTime<Utc>,
) -> Result<Result<Vec<ReserveOutcome>, DomainError>, SqliteStoreError> {
    let stamp = to_text(now);
    conn.immediate_transaction(|conn| {
        let counters = events::table
            .find(event.get())
            .select((
                events::capacity,
                events::purchased_count,
                events::reserved_count,
            ))
            .first::<(i32, i32, i32)>(conn)
            .optional()?;
        let Some((capacity, purchased, held)) = counters else {
            return Ok(Err(DomainError::EventNotFound));
        };

        let quantities = vec![1; requests.len()];
        let decision = decide_reserve(
            Counters {
                capacity,
                purchased,
                held,
            },
            &quantities,
            |limit| release_past_due(conn, event, &stamp, limit),
        )?;

        let outcomes = reserve_outcomes(event, requests, &decision.granted, now);
        let rows: Vec<NewHoldRow<'_>> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .map(|hold| NewHoldRow {
                id: hold.id.to_string(),
                event_id: event.get(),
                status: ReservationStatus::Reserved.as_str(),
                expires_at: hold.expires_at.map(to_text),
                created_at: &stamp,
                updated_at: &stamp,
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            diesel::insert_into(reservations::table)
                .values(chunk)
                .execute(conn)?;
        }
        if decision.held_after != held {
            diesel::update(events::table.find(event.get()))
                .set(events::reserved_count.eq(decision.held_after))
                .execute(conn)?;
        }

        Ok(Ok(outcomes))
    })
}

/// Marks up to `limit` of the event's past-due holds `expired`, oldest first.
fn release_past_due(
    conn: &mut SqliteConnection,
    event: EventId,
    now: &str,
    limit: u32,
) -> Result<u32, SqliteStoreError> {
    let due_rows = diesel::alias!(reservations as due);
    let due = due_rows
        .filter(due_rows.field(reservations::event_id).eq(event.get()))
        .filter(
            due_rows
                .field(reservations::status)
                .eq(ReservationStatus::Reserved.as_str()),
        )
        .filter(due_rows.field(reservations::expires_at).le(now))
        .order(due_rows.field(reservations::expires_at))
        .limit(i64::from(limit))
        .select(due_rows.field(reservations::id));
    let released = diesel::update(reservations::table)
        .filter(reservations::id.eq_any(due))
        .set((
            reservations::status.eq(ReservationStatus::Expired.as_str()),
            reservations::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(u32::try_from(released).unwrap_or(u32::MAX))
}
