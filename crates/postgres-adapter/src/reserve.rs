//! The reserve transaction: one event lock, one decision, one insert, one counter update, for a
//! whole batch of requests.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use domain::availability::{decide_reserve, Counters};
use domain::reservation::reserve_outcomes;
use domain::{DomainError, EventId, HoldRequest, ReservationStatus, ReserveOutcome};

use crate::error::PgStoreError;
use crate::models::NewHoldRow;
use crate::schema::{events, reservations};

/// Rows per INSERT statement: 6 parameters a row stays far below PostgreSQL's 65,535.
const INSERT_CHUNK: usize = 5_000;

pub(crate) fn reserve(
    conn: &mut PgConnection,
    event: EventId,
    requests: &[HoldRequest],
    now: DateTime<Utc>,
) -> Result<Result<Vec<ReserveOutcome>, DomainError>, PgStoreError> {
    conn.transaction(|conn| {
        let counters = events::table
            .find(event.get())
            .select((
                events::capacity,
                events::purchased_count,
                events::reserved_count,
            ))
            .for_update()
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
            |limit| release_past_due(conn, event, now, limit),
        )?;

        let outcomes = reserve_outcomes(event, requests, &decision.granted, now);
        let rows: Vec<NewHoldRow> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .map(|hold| NewHoldRow {
                id: *hold.id.as_uuid(),
                event_id: event.get(),
                status: ReservationStatus::Reserved.as_str(),
                expires_at: hold.expires_at,
                created_at: now,
                updated_at: now,
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

/// Marks up to `limit` of the event's past-due holds `expired`, oldest first. The caller holds
/// the event's lock, so no other transaction is changing these rows.
pub(crate) fn release_past_due(
    conn: &mut PgConnection,
    event: EventId,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u32, PgStoreError> {
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
        .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
        .set((
            reservations::status.eq(ReservationStatus::Expired.as_str()),
            reservations::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(u32::try_from(released).unwrap_or(u32::MAX))
}
