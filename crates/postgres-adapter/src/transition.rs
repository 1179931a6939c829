//! Purchase and cancel: move one hold out of `reserved`, under its event's lock.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use domain::reservation::{decide_transition, TransitionDecision};
use domain::{DomainError, PaymentReference, Reservation, ReservationId, ReservationStatus};

use crate::error::PgStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};

/// Where a hold goes.
#[derive(Debug)]
pub(crate) enum Target {
    Purchased(Option<PaymentReference>),
    Canceled,
}

pub(crate) fn transition(
    conn: &mut PgConnection,
    id: ReservationId,
    target: &Target,
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

        let status = match target {
            Target::Purchased(_) => ReservationStatus::Purchased,
            Target::Canceled => ReservationStatus::Canceled,
        };
        match decide_transition(current.status, current.expires_at, now, status) {
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
                // The guard repeats the decision in SQL: only one concurrent purchase can match.
                let guarded = reservations::table
                    .filter(reservations::id.eq(uuid))
                    .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                    .filter(reservations::purchased_at.is_null());
                let updated = match target {
                    Target::Purchased(reference) => diesel::update(guarded)
                        .set((
                            reservations::status.eq(ReservationStatus::Purchased.as_str()),
                            reservations::purchased_at.eq(Some(now)),
                            reservations::payment_reference
                                .eq(reference.as_ref().map(PaymentReference::as_str)),
                            reservations::updated_at.eq(now),
                        ))
                        .returning(ReservationRow::as_returning())
                        .get_result(conn)
                        .optional()?,
                    Target::Canceled => diesel::update(guarded)
                        .set((
                            reservations::status.eq(ReservationStatus::Canceled.as_str()),
                            reservations::updated_at.eq(now),
                        ))
                        .returning(ReservationRow::as_returning())
                        .get_result(conn)
                        .optional()?,
                };
                let Some(row) = updated else {
                    return Ok(Err(DomainError::AlreadyPurchased));
                };
                let purchased_delta = i32::from(matches!(target, Target::Purchased(_)));
                diesel::update(events::table.find(event_id))
                    .set((
                        events::reserved_count.eq(events::reserved_count - 1),
                        events::purchased_count.eq(events::purchased_count + purchased_delta),
                    ))
                    .execute(conn)?;
                Ok(Ok(row.try_into()?))
            }
        }
    })
}
