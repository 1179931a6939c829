//! The primitives of a write transaction that PostgreSQL runs its own way
//! (`store_sql::Primitives`; `store_sql::SqlWork` serves them, with the shared ones, as the
//! domain's unit of work). None decides anything. Locks are row locks (`FOR UPDATE`), taken
//! in the order the domain asks: keys, events by id, reservations by id.

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int2, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use domain::store::{
    Changes, Claims, CustomerOf, KeyTerm, Locked, LockedEvent, Stored, Timestamp, Usage,
};
use domain::{
    ClaimOutcome, Customer, DomainError, Event, EventId, Fingerprint, IdempotencyClaim, NewEvent,
    ReservationId, StoredAnswer,
};
use store_sql::{counts_for_customer, key_expired, LockedRow};

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
SELECT e.id, e.capacity, e.purchased_count, e.reserved_count, e.ticket_type_count > 0 AS typed,
       e.seat_count > 0 AS seated, e.seat_version
  FROM events e
 WHERE e.id = ANY (ARRAY(SELECT unnest($1::bigint[])
                         UNION
                         SELECT r.event_id FROM reservations r WHERE r.id = ANY($2::uuid[])))
 ORDER BY e.id
   FOR UPDATE";

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

impl store_sql::Primitives for Session<'_> {
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
        crate::apply::apply(self.conn, changes, now)
    }

    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32> {
        let purge = Prepared::new(&PURGE_KEYS_SQL).bind::<Timestamptz, _>(now);
        let deleted = purge.bind::<BigInt, _>(i64::from(limit)).execute(self.conn);
        Ok(u32::try_from(deleted.map_err(fail)?).unwrap_or(u32::MAX))
    }
}
