//! Cancel: release one hold at once, under its event's lock.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use domain::reservation::{decide_transition, TransitionDecision};
use domain::{DomainError, Reservation, ReservationId, ReservationStatus};

use crate::error::PgStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};

pub(crate) fn cancel(
    conn: &mut PgConnection,
    id: ReservationId,
    now: DateTime<Utc>,
) -> Result<Result<Reservation, DomainError>, PgStoreError> {
    let uuid = *id.as_uuid();
    conn.transaction(|conn| {
        // The event id never changes, so reading it unlocked is safe; locking the event before
        // the reservation keeps the one lock order every transaction follows.
        let event_id = reservations::table
            .find(uuid)
            .select(reservations::event_id)
            .first::<i64>(conn)
            .optional()?;
        let Some(event_id) = event_id else {
            return Ok(Err(DomainError::ReservationNotFound));
        };
        events::table
            .find(event_id)
            .select(events::id)
            .for_update()
            .first::<i64>(conn)?;
        let current: Reservation = reservations::table
            .find(uuid)
            .select(ReservationRow::as_select())
            .for_update()
            .first(conn)?
            .try_into()?;

        match decide_transition(
            current.status,
            current.expires_at,
            now,
            ReservationStatus::Canceled,
        ) {
            TransitionDecision::Refuse(err) => Ok(Err(err)),
            TransitionDecision::ExpireThenRefuse => {
                diesel::update(reservations::table.find(uuid))
                    .set((
                        reservations::status.eq(ReservationStatus::Expired.as_str()),
                        reservations::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::update(events::table.find(event_id))
                    .set(events::reserved_count.eq(events::reserved_count - 1))
                    .execute(conn)?;
                Ok(Err(DomainError::InvalidOrExpired))
            }
            TransitionDecision::Proceed => {
                let canceled = diesel::update(reservations::table)
                    .filter(reservations::id.eq(uuid))
                    .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                    .set((
                        reservations::status.eq(ReservationStatus::Canceled.as_str()),
                        reservations::updated_at.eq(now),
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
