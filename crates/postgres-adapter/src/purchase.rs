//! The purchase transaction: a whole batch of purchases under one set of locks and one commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::purchase_plan::{decide_purchases, PurchaseRequest};
use domain::{DomainError, PaymentReference, Reservation, ReservationId};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::ReservationRow;
use crate::schema::{events, reservations};

/// Every write of a purchase batch in one statement (one round trip while the events are
/// locked): the bought holds, the past-due holds released, and each event's counters. The
/// guard repeats the decision in SQL, so a hold is never bought twice.
const WRITE_SQL: &str = "
WITH bought AS (
    UPDATE reservations r
       SET status = 'purchased', purchased_at = $1, updated_at = $1, payment_reference = b.reference
      FROM unnest($2::uuid[], $3::text[]) AS b (id, reference)
     WHERE r.id = b.id AND r.status = 'reserved' AND r.purchased_at IS NULL
    RETURNING r.id, r.event_id, r.status, r.purchased_at, r.expires_at, r.payment_reference,
              r.created_at, r.updated_at
), released AS (
    UPDATE reservations SET status = 'expired', updated_at = $1
     WHERE id = ANY($4::uuid[]) AND status = 'reserved'
), counted AS (
    UPDATE events e
       SET reserved_count = e.reserved_count + c.held, purchased_count = e.purchased_count + c.purchased
      FROM unnest($5::bigint[], $6::int4[], $7::int4[]) AS c (id, held, purchased)
     WHERE e.id = c.id
)
SELECT * FROM bought";

pub(crate) fn purchase_batch(
    conn: &mut PgConnection,
    requests: &[PurchaseRequest],
    now: DateTime<Utc>,
) -> Result<Vec<Result<Reservation, DomainError>>, PgStoreError> {
    let mut ids: Vec<Uuid> = requests.iter().map(|r| *r.id.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    conn.transaction(|conn| {
        // A hold never changes event, so its event can be read unlocked; the events are then
        // locked in id order, before any reservation row: the one lock order.
        let mut event_ids: Vec<i64> = reservations::table
            .filter(reservations::id.eq_any(&ids))
            .select(reservations::event_id)
            .distinct()
            .load(conn)?;
        event_ids.sort_unstable();
        events::table
            .filter(events::id.eq_any(&event_ids))
            .order(events::id)
            .select(events::id)
            .for_update()
            .load::<i64>(conn)?;
        let current: HashMap<ReservationId, Reservation> = reservations::table
            .filter(reservations::id.eq_any(&ids))
            .select(ReservationRow::as_select())
            .for_update()
            .load(conn)?
            .into_iter()
            .map(|row| Reservation::try_from(row).map(|r| (r.id, r)))
            .collect::<Result<_, _>>()?;

        let plan = decide_purchases(&current, requests, now);

        let (buy_ids, references): (Vec<Uuid>, Vec<Option<&str>>) = plan
            .buys()
            .map(|(id, reference)| (*id.as_uuid(), reference.map(PaymentReference::as_str)))
            .unzip();
        let expire_ids: Vec<Uuid> = plan.expiries().map(|id| *id.as_uuid()).collect();
        let (events, held, purchased): (Vec<i64>, Vec<i32>, Vec<i32>) = plan
            .counters
            .iter()
            .map(|(event, change)| (event.get(), change.held, change.purchased))
            .collect();
        let mut bought = HashMap::new();
        if !events.is_empty() {
            let rows: Vec<ReservationRow> = diesel::sql_query(WRITE_SQL)
                .bind::<Timestamptz, _>(now)
                .bind::<Array<SqlUuid>, _>(&buy_ids)
                .bind::<Array<Nullable<Text>>, _>(&references)
                .bind::<Array<SqlUuid>, _>(&expire_ids)
                .bind::<Array<BigInt>, _>(&events)
                .bind::<Array<Integer>, _>(&held)
                .bind::<Array<Integer>, _>(&purchased)
                .load(conn)?;
            for row in rows {
                let reservation = Reservation::try_from(row)?;
                bought.insert(reservation.id, reservation);
            }
            if bought.len() != buy_ids.len() {
                // Only a writer outside the lock protocol can get here: change nothing.
                return Err(PgStoreError::CorruptRow(format!(
                    "{} of {} locked holds could not be purchased",
                    buy_ids.len() - bought.len(),
                    buy_ids.len()
                )));
            }
        }
        Ok(plan.outcomes(&bought))
    })
}
