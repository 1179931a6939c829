//! The reserve transaction: one event lock, one decision, one insert, one counter update, for a
//! whole batch of requests.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Timestamptz, Uuid as SqlUuid};
use domain::availability::{decide_reserve, Counters};
use domain::reservation::reserve_outcomes;
use domain::{DomainError, EventId, HoldRequest, ReservationStatus, ReserveOutcome};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::schema::{events, reservations};

/// The granted holds and the new counter, in one statement: one round trip and one plan
/// (the arrays keep the SQL the same whatever the batch size, so it is prepared once).
const WRITE_HOLDS_SQL: &str = "
WITH inserted AS (
    INSERT INTO reservations (id, event_id, status, expires_at, created_at, updated_at)
    SELECT h.id, $1, 'reserved', h.expires_at, $2, $2
      FROM unnest($3::uuid[], $4::timestamptz[]) AS h (id, expires_at)
)
UPDATE events SET reserved_count = $5 WHERE id = $1";

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
        let (ids, expiries): (Vec<Uuid>, Vec<DateTime<Utc>>) = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .map(|hold| (*hold.id.as_uuid(), hold.expires_at.unwrap_or(now)))
            .unzip();
        if !ids.is_empty() || decision.held_after != held {
            diesel::sql_query(WRITE_HOLDS_SQL)
                .bind::<BigInt, _>(event.get())
                .bind::<Timestamptz, _>(now)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Timestamptz>, _>(&expiries)
                .bind::<Integer, _>(decision.held_after)
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
