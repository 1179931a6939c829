//! Cancel: release one hold at once, under the write lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::reservation::{decide_transition, TransitionDecision};
use domain::{DomainError, Reservation, ReservationId, ReservationStatus};

use crate::error::SqliteStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};
use crate::time::to_text;

pub(crate) fn cancel(
    conn: &mut SqliteConnection,
    id: ReservationId,
    now: DateTime<Utc>,
) -> Result<Result<Reservation, DomainError>, SqliteStoreError> {
    let key = id.to_string();
    let stamp = to_text(now);
    conn.immediate_transaction(|conn| {
        let row = reservations::table
            .find(&key)
            .select(ReservationRow::as_select())
            .first(conn)
            .optional()?;
        let Some(row) = row else {
            return Ok(Err(DomainError::ReservationNotFound));
        };
        let event_id = row.event_id;
        let current = Reservation::try_from(row)?;
        match decide_transition(
            current.status,
            current.expires_at,
            now,
            ReservationStatus::Canceled,
        ) {
            TransitionDecision::Refuse(err) => Ok(Err(err)),
            TransitionDecision::ExpireThenRefuse => {
                diesel::update(reservations::table.find(&key))
                    .set((
                        reservations::status.eq(ReservationStatus::Expired.as_str()),
                        reservations::updated_at.eq(&stamp),
                    ))
                    .execute(conn)?;
                diesel::update(events::table.find(event_id))
                    .set(events::reserved_count.eq(events::reserved_count - 1))
                    .execute(conn)?;
                Ok(Err(DomainError::InvalidOrExpired))
            }
            TransitionDecision::Proceed => {
                let canceled = diesel::update(reservations::table)
                    .filter(reservations::id.eq(&key))
                    .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                    .set((
                        reservations::status.eq(ReservationStatus::Canceled.as_str()),
                        reservations::updated_at.eq(&stamp),
                    ))
                    .returning(ReservationRow::as_returning())
                    .get_result(conn)?;
                diesel::update(events::table.find(event_id))
                    .set(events::reserved_count.eq(events::reserved_count - 1))
                    .execute(conn)?;
                Ok(Ok(canceled.try_into()?))
            }
        }
    })
}
