//! Purchase and cancel: move one hold out of `reserved`, under the write lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::reservation::{decide_transition, TransitionDecision};
use domain::{DomainError, PaymentReference, Reservation, ReservationId, ReservationStatus};

use crate::error::SqliteStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};
use crate::time::to_text;

/// Where a hold goes.
#[derive(Debug)]
pub(crate) enum Target {
    Purchased(Option<PaymentReference>),
    Canceled,
}

pub(crate) fn transition(
    conn: &mut SqliteConnection,
    id: ReservationId,
    target: &Target,
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
        let status = match target {
            Target::Purchased(_) => ReservationStatus::Purchased,
            Target::Canceled => ReservationStatus::Canceled,
        };
        match decide_transition(current.status, current.expires_at, now, status) {
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
                // The guard repeats the decision in SQL: only one purchase can match.
                let guarded = reservations::table
                    .filter(reservations::id.eq(&key))
                    .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                    .filter(reservations::purchased_at.is_null());
                let updated = match target {
                    Target::Purchased(reference) => diesel::update(guarded)
                        .set((
                            reservations::status.eq(ReservationStatus::Purchased.as_str()),
                            reservations::purchased_at.eq(Some(&stamp)),
                            reservations::payment_reference
                                .eq(reference.as_ref().map(PaymentReference::as_str)),
                            reservations::updated_at.eq(&stamp),
                        ))
                        .returning(ReservationRow::as_returning())
                        .get_result(conn)
                        .optional()?,
                    Target::Canceled => diesel::update(guarded)
                        .set((
                            reservations::status.eq(ReservationStatus::Canceled.as_str()),
                            reservations::updated_at.eq(&stamp),
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
