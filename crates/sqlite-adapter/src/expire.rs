//! The expiry sweep: one bounded batch per `BEGIN IMMEDIATE` transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::ReservationStatus;

use crate::error::SqliteStoreError;
use crate::schema::{events, reservations};
use crate::time::to_text;

pub(crate) fn expire_due(
    conn: &mut SqliteConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u32, SqliteStoreError> {
    let stamp = to_text(now);
    let reserved = ReservationStatus::Reserved.as_str();
    conn.immediate_transaction(|conn| {
        // The write lock covers the whole file, so no row locks: take the oldest due holds.
        let due_rows = diesel::alias!(reservations as due);
        let due = due_rows
            .filter(due_rows.field(reservations::status).eq(reserved))
            .filter(due_rows.field(reservations::expires_at).le(&stamp))
            .order(due_rows.field(reservations::expires_at))
            .limit(i64::from(limit))
            .select(due_rows.field(reservations::id));
        let expired_events: Vec<i64> = diesel::update(reservations::table)
            .filter(reservations::id.eq_any(due))
            .set((
                reservations::status.eq(ReservationStatus::Expired.as_str()),
                reservations::updated_at.eq(&stamp),
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
