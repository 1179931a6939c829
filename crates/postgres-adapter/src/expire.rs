//! The expiry sweep: one bounded batch per transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use domain::ReservationStatus;

use crate::error::PgStoreError;
use crate::schema::{events, reservations};

pub(crate) fn expire_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u32, PgStoreError> {
    let reserved = ReservationStatus::Reserved.as_str();
    conn.transaction(|conn| {
        // The oldest due holds, through the partial index on due holds.
        let mut event_ids: Vec<i64> = reservations::table
            .filter(reservations::status.eq(reserved))
            .filter(reservations::expires_at.le(now))
            .order(reservations::expires_at)
            .limit(i64::from(limit))
            .select(reservations::event_id)
            .load(conn)?;
        event_ids.sort_unstable();
        event_ids.dedup();
        if event_ids.is_empty() {
            return Ok(0);
        }

        // Event rows first, in id order: the lock order of every transaction. Each event is
        // held only for this one batch.
        events::table
            .filter(events::id.eq_any(&event_ids))
            .order(events::id)
            .select(events::id)
            .for_update()
            .load::<i64>(conn)?;

        // No SKIP LOCKED needed: every writer of a reservation row holds its event's lock first,
        // and we hold those now. Rows released meanwhile fail the status re-check.
        let due_rows = diesel::alias!(reservations as due);
        let due = due_rows
            .filter(due_rows.field(reservations::event_id).eq_any(&event_ids))
            .filter(due_rows.field(reservations::status).eq(reserved))
            .filter(due_rows.field(reservations::expires_at).le(now))
            .order(due_rows.field(reservations::expires_at))
            .limit(i64::from(limit))
            .select(due_rows.field(reservations::id));
        let expired_events: Vec<i64> = diesel::update(reservations::table)
            .filter(reservations::id.eq_any(due))
            .filter(reservations::status.eq(reserved))
            .set((
                reservations::status.eq(ReservationStatus::Expired.as_str()),
                reservations::updated_at.eq(now),
            ))
            .returning(reservations::event_id)
            .get_results(conn)?;

        let mut per_event: BTreeMap<i64, i32> = BTreeMap::new();
        for id in &expired_events {
            *per_event.entry(*id).or_default() += 1;
        }
        for (id, released) in per_event {
            diesel::update(events::table.find(id))
                .set(events::reserved_count.eq(events::reserved_count - released))
                .execute(conn)?;
        }
        Ok(u32::try_from(expired_events.len()).unwrap_or(u32::MAX))
    })
}
