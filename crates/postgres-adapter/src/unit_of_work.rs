//! The primitives of a write transaction on PostgreSQL. None decides anything: the domain
//! drives them (see `domain::store::UnitOfWork`). Locks are row locks (`FOR UPDATE`), taken in
//! the order the domain asks: keys, events by id, reservations by id.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Int2, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use domain::store::{Changes, LockedEvent, ReleasedHold, StatusChange, UnitOfWork};
use domain::{
    Capacity, ClaimOutcome, Customer, DomainError, Event, EventId, EventName, EventSnapshot,
    Fingerprint, IdempotencyClaim, NewEvent, Reservation, ReservationId, ReservationStatus,
    StoredAnswer,
};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::EventRow;
use crate::reads;
use crate::schema::{events, reservations};
use crate::statement::Prepared;

/// The transaction's connection, seen through the domain's port.
pub(crate) struct PgUnitOfWork<'c> {
    conn: &'c mut PgConnection,
}

impl<'c> PgUnitOfWork<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        Self { conn }
    }
}

fn fail(err: impl Into<PgStoreError>) -> DomainError {
    DomainError::from(err.into())
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Int4)]
    capacity: i32,
    #[diesel(sql_type = Int4)]
    purchased_count: i32,
    #[diesel(sql_type = Int4)]
    reserved_count: i32,
}

/// One round trip for both sets of events: the ids are gathered first (an init plan: the
/// reservations' events are read unlocked, they never change), then the rows are locked in id
/// order (ORDER BY under FOR UPDATE sorts before locking): the one lock order.
const LOCK_EVENTS_SQL: &str = "
SELECT e.id, e.capacity, e.purchased_count, e.reserved_count
  FROM events e
 WHERE e.id = ANY (ARRAY(SELECT unnest($1::bigint[])
                         UNION
                         SELECT r.event_id FROM reservations r WHERE r.id = ANY($2::uuid[])))
 ORDER BY e.id
   FOR UPDATE";

#[derive(QueryableByName)]
struct ReleasedRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = Int4)]
    quantity: i32,
}

/// Oldest first, through the `(event_id, status, expires_at)` index, one index range per event;
/// the events are locked by this transaction, so no other writer is changing these rows.
///
/// Per event, with `LATERAL`: with `event_id = ANY($1)` the index cannot return the rows in
/// `expires_at` order (not on PostgreSQL 15), so the planner read and sorted every past-due hold
/// of the events to keep the oldest few: 150–240 ms under the event's lock with 700,000 of them
/// (found by `just faults`' sweep scenario), against 5 ms this way.
///
/// Plans here must not depend on statistics (a new database has none, and a prepared
/// statement keeps its first generic plan while tables grow): each statement leaves the planner
/// only index paths driven by the batch's keys. `(r.status = 'reserved') IS TRUE` is that guard
/// written as a filter, which no index can serve, so the rows are found by their ids.
const RELEASE_SQL: &str = "
UPDATE reservations r
   SET status = 'expired', updated_at = $2
  FROM (SELECT d.id
          FROM unnest($1::bigint[]) AS e (id)
          CROSS JOIN LATERAL (
                SELECT id, expires_at FROM reservations
                 WHERE event_id = e.id AND status = 'reserved' AND expires_at <= $2
                 ORDER BY expires_at
                 LIMIT $3) d
         ORDER BY d.expires_at
         LIMIT $3) due
 WHERE r.id = due.id AND (r.status = 'reserved') IS TRUE
RETURNING r.id, r.event_id, r.quantity";

#[derive(QueryableByName)]
struct UsageRow {
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = Text)]
    customer: String,
    #[diesel(sql_type = Int8)]
    tickets: i64,
}

/// One lookup of `(event_id, customer)` per pair, whatever the statistics say.
const USAGE_SQL: &str = "
SELECT p.event_id, p.customer,
       (SELECT COALESCE(sum(r.quantity), 0) FROM reservations r
         WHERE r.event_id = p.event_id AND r.customer = p.customer
           AND (r.status = 'purchased' OR (r.status = 'reserved' AND r.expires_at > $3)))::int8
         AS tickets
  FROM unnest($1::bigint[], $2::text[]) AS p (event_id, customer)";

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    key: String,
}

/// Inserts the keys in the order given (the lock order). A key held by a transaction in
/// flight is waited for; a key whose record expired is taken over; any other existing key is
/// left alone (and not returned).
const CLAIM_SQL: &str = "
INSERT INTO idempotency_keys AS k (key, fingerprint, created_at, expires_at)
SELECT c.key, c.fingerprint, $3, $4
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c (key, fingerprint, n)
 ORDER BY c.n
ON CONFLICT (key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL,
       created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
 WHERE k.expires_at <= $3
RETURNING k.key";

#[derive(QueryableByName)]
struct ExistingRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Nullable<Int2>)]
    status: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
}

const EXISTING_SQL: &str = "
SELECT k.key, k.fingerprint, k.status, k.body
  FROM unnest($1::text[]) AS x (key)
  JOIN LATERAL (SELECT * FROM idempotency_keys WHERE key = x.key) k ON true";

/// The oldest expired keys by their row addresses; a record re-claimed meanwhile fails the
/// re-check and stays.
const PURGE_KEYS_SQL: &str = "
DELETE FROM idempotency_keys
 WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys
                          WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2))
   AND expires_at <= $1";

#[derive(QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = Int8)]
    inserted: i64,
    #[diesel(sql_type = Int8)]
    changed: i64,
    #[diesel(sql_type = Int8)]
    counted: i64,
    #[diesel(sql_type = Int8)]
    answered: i64,
}

/// Every write of a transaction in one statement: one round trip while the events are locked,
/// one text whatever the batch holds. A status changes only while the row is `reserved`; the
/// counts returned let the caller check that every change found its row.
const APPLY_SQL: &str = "
WITH inserted AS (
    INSERT INTO reservations (id, event_id, status, quantity, customer, expires_at, created_at, updated_at)
    SELECT h.id, h.event_id, 'reserved', h.quantity, h.customer, h.expires_at, $1, $1
      FROM unnest($2::uuid[], $3::bigint[], $4::int4[], $5::text[], $6::timestamptz[])
           AS h (id, event_id, quantity, customer, expires_at)
    RETURNING 1
), changed AS (
    UPDATE reservations r
       SET status = c.status, updated_at = $1,
           purchased_at = CASE WHEN c.status = 'purchased' THEN $1 END,
           payment_reference = CASE WHEN c.status = 'purchased' THEN c.reference END
      FROM unnest($7::uuid[], $8::text[], $9::text[]) AS c (id, status, reference)
     WHERE r.id = c.id AND (r.status = 'reserved') IS TRUE
    RETURNING 1
), counted AS (
    UPDATE events e
       SET reserved_count = e.reserved_count + d.held,
           purchased_count = e.purchased_count + d.purchased
      FROM unnest($10::bigint[], $11::int4[], $12::int4[]) AS d (id, held, purchased)
     WHERE e.id = d.id
    RETURNING 1
), answered AS (
    UPDATE idempotency_keys k
       SET status = a.status, body = a.body
      FROM unnest($13::text[], $14::int2[], $15::text[]) AS a (key, status, body)
     WHERE k.key = a.key
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(*) FROM changed) AS changed,
       (SELECT count(*) FROM counted) AS counted,
       (SELECT count(*) FROM answered) AS answered";

fn delta(value: i64, event: EventId) -> Result<i32, DomainError> {
    i32::try_from(value).map_err(|_| {
        fail(PgStoreError::CorruptRow(format!(
            "counter change {value} of event {event} out of range"
        )))
    })
}

impl UnitOfWork for PgUnitOfWork<'_> {
    fn create_event(&mut self, new: &NewEvent, now: DateTime<Utc>) -> Result<Event, DomainError> {
        let row: EventRow = diesel::insert_into(events::table)
            .values((
                events::name.eq(new.name.as_str()),
                events::capacity.eq(new.capacity.get()),
                events::created_at.eq(now),
                events::updated_at.eq(now),
            ))
            .returning(EventRow::as_returning())
            .get_result(self.conn)
            .map_err(fail)?;
        Ok(row.into())
    }

    fn lock_events(
        &mut self,
        ids: &[EventId],
        of_reservations: &[ReservationId],
    ) -> Result<Vec<LockedEvent>, DomainError> {
        let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows: Vec<LockedRow> = Prepared::new(LOCK_EVENTS_SQL)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Array<SqlUuid>, _>(reads::uuids(of_reservations))
            .load(self.conn)
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|r| LockedEvent {
                id: EventId::new(r.id),
                capacity: r.capacity,
                purchased: r.purchased_count,
                held: r.reserved_count,
            })
            .collect())
    }

    fn update_event(
        &mut self,
        id: EventId,
        name: &EventName,
        capacity: Capacity,
        now: DateTime<Utc>,
    ) -> Result<Event, DomainError> {
        let row: EventRow = diesel::update(events::table.find(id.get()))
            .set((
                events::name.eq(name.as_str()),
                events::capacity.eq(capacity.get()),
                events::updated_at.eq(now),
            ))
            .returning(EventRow::as_returning())
            .get_result(self.conn)
            .map_err(fail)?;
        Ok(row.into())
    }

    fn read_reservations(
        &mut self,
        ids: &[ReservationId],
    ) -> Result<Vec<Reservation>, DomainError> {
        reads::read_reservations(self.conn, &reads::uuids(ids)).map_err(fail)
    }

    fn release_past_due(
        &mut self,
        events: &[EventId],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ReleasedHold>, DomainError> {
        let raw: Vec<i64> = events.iter().map(|id| id.get()).collect();
        let rows: Vec<ReleasedRow> = Prepared::new(RELEASE_SQL)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(limit))
            .load(self.conn)
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|r| ReleasedHold {
                id: ReservationId::from_uuid(r.id),
                event: EventId::new(r.event_id),
                quantity: r.quantity,
            })
            .collect())
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: u32) -> Result<Vec<EventId>, DomainError> {
        // The oldest due holds, through the partial index on due holds (whose predicate names
        // `quantity > 0`, so that this is the one query that uses it).
        let mut ids: Vec<i64> = reservations::table
            .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
            .filter(reservations::quantity.gt(0))
            .filter(reservations::expires_at.le(now))
            .order(reservations::expires_at)
            .limit(i64::from(limit))
            .select(reservations::event_id)
            .load(self.conn)
            .map_err(fail)?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids.into_iter().map(EventId::new).collect())
    }

    fn customer_usage(
        &mut self,
        pairs: &[(EventId, Customer)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(EventId, Customer, i64)>, DomainError> {
        let events: Vec<i64> = pairs.iter().map(|(e, _)| e.get()).collect();
        let customers: Vec<&str> = pairs.iter().map(|(_, c)| c.as_str()).collect();
        let rows: Vec<UsageRow> = Prepared::new(USAGE_SQL)
            .bind::<Array<BigInt>, _>(events)
            .bind::<Array<Text>, _>(customers)
            .bind::<Timestamptz, _>(now)
            .load(self.conn)
            .map_err(fail)?;
        rows.into_iter()
            .map(|r| {
                let customer = Customer::parse(&r.customer).map_err(|_| {
                    fail(PgStoreError::CorruptRow(format!(
                        "customer of event {}",
                        r.event_id
                    )))
                })?;
                Ok((EventId::new(r.event_id), customer, r.tickets))
            })
            .collect()
    }

    fn claim_keys(
        &mut self,
        claims: &[IdempotencyClaim],
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimOutcome>, DomainError> {
        let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
        let fingerprints: Vec<&str> = claims.iter().map(|c| c.fingerprint.0.as_str()).collect();
        let claimed: Vec<ClaimedRow> = Prepared::new(CLAIM_SQL)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(fingerprints)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(keep_until)
            .load(self.conn)
            .map_err(fail)?;
        let claimed: std::collections::HashSet<String> =
            claimed.into_iter().map(|r| r.key).collect();
        let others: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !claimed.contains(*k))
            .collect();
        let existing: Vec<ExistingRow> = if others.is_empty() {
            Vec::new()
        } else {
            Prepared::new(EXISTING_SQL)
                .bind::<Array<Text>, _>(others)
                .load(self.conn)
                .map_err(fail)?
        };
        keys.iter()
            .map(|key| {
                if claimed.contains(*key) {
                    return Ok(ClaimOutcome::Claimed);
                }
                let row = existing.iter().find(|r| r.key == *key).ok_or_else(|| {
                    fail(PgStoreError::CorruptRow(
                        "an idempotency key neither claimed nor found".into(),
                    ))
                })?;
                match (row.status, &row.body) {
                    (Some(status), Some(body)) => Ok(ClaimOutcome::Existing {
                        fingerprint: Fingerprint(row.fingerprint.clone()),
                        answer: StoredAnswer {
                            status: u16::try_from(status).unwrap_or(500),
                            body: body.clone(),
                        },
                    }),
                    _ => Err(fail(PgStoreError::CorruptRow(
                        "an idempotency record committed without its answer".into(),
                    ))),
                }
            })
            .collect()
    }

    fn apply(&mut self, changes: &Changes, now: DateTime<Utc>) -> Result<(), DomainError> {
        let holds = &changes.holds;
        let hold_ids: Vec<Uuid> = holds.iter().map(|h| *h.id.as_uuid()).collect();
        let hold_events: Vec<i64> = holds.iter().map(|h| h.event_id.get()).collect();
        let quantities: Vec<i32> = holds.iter().map(|h| h.quantity).collect();
        let customers: Vec<Option<&str>> = holds.iter().map(|h| h.customer.as_deref()).collect();
        let expiries: Vec<DateTime<Utc>> =
            holds.iter().map(|h| h.expires_at.unwrap_or(now)).collect();

        let mut change_ids = Vec::with_capacity(changes.statuses.len());
        let mut statuses = Vec::with_capacity(changes.statuses.len());
        let mut references: Vec<Option<&str>> = Vec::with_capacity(changes.statuses.len());
        for change in &changes.statuses {
            change_ids.push(*change.id().as_uuid());
            let (status, reference) = match change {
                StatusChange::Purchased {
                    payment_reference, ..
                } => (ReservationStatus::Purchased, payment_reference.as_deref()),
                StatusChange::Canceled { .. } => (ReservationStatus::Canceled, None),
                StatusChange::Expired { .. } => (ReservationStatus::Expired, None),
            };
            statuses.push(status.as_str());
            references.push(reference);
        }

        let mut counter_events = Vec::with_capacity(changes.counters.len());
        let mut held = Vec::with_capacity(changes.counters.len());
        let mut purchased = Vec::with_capacity(changes.counters.len());
        for (event, d) in &changes.counters {
            counter_events.push(event.get());
            held.push(delta(d.held, *event)?);
            purchased.push(delta(d.purchased, *event)?);
        }

        let answer_keys: Vec<&str> = changes.answers.iter().map(|(k, _)| k.as_str()).collect();
        let answer_statuses: Vec<i16> = changes
            .answers
            .iter()
            .map(|(_, a)| i16::try_from(a.status).unwrap_or(500))
            .collect();
        let answer_bodies: Vec<&str> = changes
            .answers
            .iter()
            .map(|(_, a)| a.body.as_str())
            .collect();

        let applied: AppliedRow = Prepared::new(APPLY_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<SqlUuid>, _>(hold_ids)
            .bind::<Array<BigInt>, _>(hold_events)
            .bind::<Array<Int4>, _>(quantities)
            .bind::<Array<Nullable<Text>>, _>(customers)
            .bind::<Array<Timestamptz>, _>(expiries)
            .bind::<Array<SqlUuid>, _>(change_ids)
            .bind::<Array<Text>, _>(statuses)
            .bind::<Array<Nullable<Text>>, _>(references)
            .bind::<Array<BigInt>, _>(counter_events)
            .bind::<Array<Int4>, _>(held)
            .bind::<Array<Int4>, _>(purchased)
            .bind::<Array<Text>, _>(answer_keys)
            .bind::<Array<Int2>, _>(answer_statuses)
            .bind::<Array<Text>, _>(answer_bodies)
            .get_result(self.conn)
            .map_err(fail)?;
        let expected = [
            holds.len(),
            changes.statuses.len(),
            changes.counters.len(),
            changes.answers.len(),
        ];
        let got = [
            applied.inserted,
            applied.changed,
            applied.counted,
            applied.answered,
        ];
        if expected
            .iter()
            .zip(got)
            .any(|(e, g)| i64::try_from(*e).ok() != Some(g))
        {
            // Only a writer outside the lock protocol can get here: change nothing.
            return Err(fail(PgStoreError::CorruptRow(format!(
                "writes found fewer rows than decided (holds, statuses, events, keys): expected {expected:?}, wrote {got:?}"
            ))));
        }
        Ok(())
    }

    fn purge_keys(&mut self, now: DateTime<Utc>, limit: u32) -> Result<u32, DomainError> {
        let deleted = Prepared::new(PURGE_KEYS_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(limit))
            .execute(self.conn)
            .map_err(fail)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }

    fn event_snapshot(
        &mut self,
        id: EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<EventSnapshot>, DomainError> {
        Ok(reads::event_snapshots(self.conn, &[id], now)
            .map_err(fail)?
            .pop())
    }
}
