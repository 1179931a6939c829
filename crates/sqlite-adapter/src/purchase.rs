//! The purchase transaction: a whole batch of purchases in one `BEGIN IMMEDIATE`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::purchase_plan::{decide_purchases, PurchaseRequest};
use domain::{DomainError, PaymentReference, Reservation, ReservationId, ReservationStatus};

use crate::error::SqliteStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};
use crate::time::to_text;

pub(crate) fn purchase_batch(
    conn: &mut SqliteConnection,
    requests: &[PurchaseRequest],
    now: DateTime<Utc>,
) -> Result<Vec<Result<Reservation, DomainError>>, SqliteStoreError> {
    let stamp = to_text(now);
    let mut keys: Vec<String> = requests.iter().map(|r| r.id.to_string()).collect();
    keys.sort_unstable();
    keys.dedup();
    conn.immediate_transaction(|conn| {
        let current: HashMap<ReservationId, Reservation> = reservations::table
            .filter(reservations::id.eq_any(&keys))
            .select(ReservationRow::as_select())
            .load(conn)?
            .into_iter()
            .map(|row| Reservation::try_from(row).map(|r| (r.id, r)))
            .collect::<Result<_, _>>()?;

        let plan = decide_purchases(&current, requests, now);

        let mut bought = HashMap::new();
        for (id, reference) in plan.buys() {
            // The guard repeats the decision in SQL: a hold is never bought twice.
            let row = diesel::update(reservations::table)
                .filter(reservations::id.eq(id.to_string()))
                .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                .filter(reservations::purchased_at.is_null())
                .set((
                    reservations::status.eq(ReservationStatus::Purchased.as_str()),
                    reservations::purchased_at.eq(Some(&stamp)),
                    reservations::payment_reference.eq(reference.map(PaymentReference::as_str)),
                    reservations::updated_at.eq(&stamp),
                ))
                .returning(ReservationRow::as_returning())
                .get_result(conn)
                .optional()?
                .ok_or_else(|| {
                    SqliteStoreError::CorruptRow(format!("hold {id} could not be purchased"))
                })?;
            let reservation = Reservation::try_from(row)?;
            bought.insert(reservation.id, reservation);
        }
        let expire_keys: Vec<String> = plan.expiries().map(|id| id.to_string()).collect();
        if !expire_keys.is_empty() {
            diesel::update(reservations::table)
                .filter(reservations::id.eq_any(&expire_keys))
                .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
                .set((
                    reservations::status.eq(ReservationStatus::Expired.as_str()),
                    reservations::updated_at.eq(&stamp),
                ))
                .execute(conn)?;
        }
        for (event, change) in &plan.counters {
            diesel::update(events::table.find(event.get()))
                .set((
                    events::reserved_count.eq(events::reserved_count + change.held),
                    events::purchased_count.eq(events::purchased_count + change.purchased),
                ))
                .execute(conn)?;
        }
        Ok(plan.outcomes(&bought))
    })
}
