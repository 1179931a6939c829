//! The primitives of a write transaction on PostgreSQL. None decides anything: the domain
//! drives them (see `domain::store::UnitOfWork`). Locks are row locks (`FOR UPDATE`), taken in
//! the order the domain asks: keys, events by id, reservations by id.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Int2, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use domain::store::{
    Changes, Claims, CustomerOf, KeyTerm, Locked, LockedEvent, PastDue, Reads, ReleasedHold,
    Stored, Timestamp, UnitOfWork, Usage,
};
use domain::{
    ClaimOutcome, Customer, DomainError, Event, EventId, EventSnapshot, Fingerprint,
    IdempotencyClaim, NewEvent, Reservation, ReservationId, StoredAnswer,
};
use store_sql::{counts_for_customer, key_expired, past_due, still_reserved, LockedRow};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::models::EventRow;
use crate::reads::uuids;
use crate::schema::events;
use crate::statement::Prepared;
use crate::store::Session;

fn fail(err: impl Into<PgStoreError>) -> DomainError {
    DomainError::from(err.into())
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
static RELEASE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE reservations r
            SET status = 'expired', updated_at = $2
           FROM (SELECT d.id
                   FROM unnest($1::bigint[]) AS e (id)
                   CROSS JOIN LATERAL (
                         SELECT d.id, d.expires_at FROM reservations d
                          WHERE d.event_id = e.id AND {}
                          ORDER BY d.expires_at
                          LIMIT $3) d
                  ORDER BY d.expires_at
                  LIMIT $3) due
          WHERE r.id = due.id AND {}
         RETURNING r.id, r.event_id, r.quantity",
        past_due("d", "$2"),
        still_reserved("r")
    )
});

#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = BigInt)]
    event_id: i64,
}

/// The oldest due holds, through the partial index on due holds (whose predicate names
/// `quantity > 0`, so that this is the one query that uses it).
static DUE_EVENTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT r.event_id FROM reservations r WHERE {} AND r.quantity > 0
          ORDER BY r.expires_at LIMIT $2",
        past_due("r", "$1")
    )
});

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
static USAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT p.event_id, p.customer,
                (SELECT COALESCE(sum(r.quantity), 0) FROM reservations r
                  WHERE r.event_id = p.event_id AND r.customer = p.customer AND {})::int8
                  AS tickets
           FROM unnest($1::bigint[], $2::text[]) AS p (event_id, customer)",
        counts_for_customer("r", "$3")
    )
});

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    key: String,
}

/// Inserts the keys in the order given (the lock order). A key held by a transaction in
/// flight is waited for; a key whose record expired is taken over; any other existing key is
/// left alone (and not returned).
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO idempotency_keys AS k (key, fingerprint, created_at, expires_at)
         SELECT c.key, c.fingerprint, $3, $4
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c (key, fingerprint, n)
          ORDER BY c.n
         ON CONFLICT (key) DO UPDATE
            SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL,
                created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
          WHERE {}
         RETURNING k.key",
        key_expired("k", "$3")
    )
});

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
static PURGE_KEYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM idempotency_keys k
          WHERE k.ctid = ANY (ARRAY(SELECT o.ctid FROM idempotency_keys o
                                     WHERE {} ORDER BY o.expires_at LIMIT $2))
            AND {}",
        key_expired("o", "$1"),
        key_expired("k", "$1")
    )
});

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
static APPLY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("
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
     WHERE r.id = c.id AND {}
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
       (SELECT count(*) FROM answered) AS answered",
        still_reserved("r")
    )
});

fn delta(value: i64, event: EventId) -> Result<i32, DomainError> {
    i32::try_from(value).map_err(|_| {
        fail(PgStoreError::CorruptRow(format!(
            "counter change {value} of event {event} out of range"
        )))
    })
}

impl UnitOfWork for Session<'_> {
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event> {
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

    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked> {
        let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows: Vec<LockedRow> = Prepared::new(LOCK_EVENTS_SQL)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Array<SqlUuid>, _>(uuids(of_holds))
            .load(self.conn)
            .map_err(fail)?;
        Ok(rows.into_iter().map(LockedEvent::from).collect())
    }

    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event> {
        let row: EventRow = diesel::update(events::table.find(id.get()))
            .set((
                events::name.eq(set.name.as_str()),
                events::capacity.eq(set.capacity.get()),
                events::updated_at.eq(now),
            ))
            .returning(EventRow::as_returning())
            .get_result(self.conn)
            .map_err(fail)?;
        Ok(row.into())
    }

    fn read_reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        self.reservations(ids)
    }

    fn event_snapshot(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventSnapshot>> {
        Ok(self.event_snapshots(&[id], now)?.pop())
    }

    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>> {
        let raw: Vec<i64> = due.events.iter().map(|id| id.get()).collect();
        let rows: Vec<ReleasedRow> = Prepared::new(&RELEASE_SQL)
            .bind::<Array<BigInt>, _>(raw)
            .bind::<Timestamptz, _>(due.now)
            .bind::<BigInt, _>(i64::from(due.limit))
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

    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>> {
        let rows: Vec<DueRow> = Prepared::new(&DUE_EVENTS_SQL)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(limit))
            .load(self.conn)
            .map_err(fail)?;
        Ok(rows.into_iter().map(|r| EventId::new(r.event_id)).collect())
    }

    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>> {
        let events: Vec<i64> = pairs.iter().map(|(e, _)| e.get()).collect();
        let customers: Vec<&str> = pairs.iter().map(|(_, c)| c.as_str()).collect();
        let rows: Vec<UsageRow> = Prepared::new(&USAGE_SQL)
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

    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims> {
        let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
        let fingerprints: Vec<&str> = claims.iter().map(|c| c.fingerprint.0.as_str()).collect();
        let claimed: Vec<ClaimedRow> = Prepared::new(&CLAIM_SQL)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(fingerprints)
            .bind::<Timestamptz, _>(term.now)
            .bind::<Timestamptz, _>(term.until)
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

    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()> {
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
            statuses.push(change.status().as_str());
            references.push(change.payment_reference());
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

        let applied: AppliedRow = Prepared::new(&APPLY_SQL)
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

    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32> {
        let purge = Prepared::new(&PURGE_KEYS_SQL).bind::<Timestamptz, _>(now);
        let deleted = purge.bind::<BigInt, _>(i64::from(limit)).execute(self.conn);
        Ok(u32::try_from(deleted.map_err(fail)?).unwrap_or(u32::MAX))
    }
}
