//! The primitives of a write transaction that SQLite runs its own way (`store_sql::Primitives`;
//! `store_sql::SqlWork` serves them, with the shared ones, as the domain's unit of work). None
//! decides anything. There are no row locks to take: the transaction
//! holds SQLite's one write lock (`BEGIN IMMEDIATE`) from its start, which serializes every
//! writer of the file, so "lock" here only reads.

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use domain::store::{
    Changes, Claims, CustomerOf, KeyTerm, Locked, LockedEvent, Stored, Timestamp, Usage,
};
use domain::{
    ClaimOutcome, DomainError, Event, EventId, Fingerprint, IdempotencyClaim, NewEvent,
    ReservationId, StoredAnswer,
};
use store_sql::{counts_for_customer, key_expired, LockedRow};

use crate::error::SqliteStoreError;
use crate::models::EventRow;
use crate::reads::json_array;
use crate::schema::idempotency_keys;
use crate::store::Session;
use crate::time::to_text;

fn fail(err: impl Into<SqliteStoreError>) -> DomainError {
    DomainError::from(err.into())
}

fn corrupt(what: impl Into<String>) -> DomainError {
    fail(SqliteStoreError::CorruptRow(what.into()))
}

/// A new event: `?1` its name, `?2` its capacity, `?3` the instant.
const CREATE_EVENT_SQL: &str = "
INSERT INTO events (name, capacity, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
RETURNING id, name, capacity, created_at, updated_at";

/// A locked event's new name (`?2`) and capacity (`?3`) at `?4`.
const UPDATE_EVENT_SQL: &str = "
UPDATE events SET name = ?2, capacity = ?3, updated_at = ?4 WHERE id = ?1
RETURNING id, name, capacity, created_at, updated_at";

/// The events of the JSON array `?1` and those of the reservations of `?2`, in id order. The
/// transaction holds the file's write lock already: this only reads.
const LOCK_EVENTS_SQL: &str = "
SELECT e.id, e.capacity, e.purchased_count, e.reserved_count, e.ticket_type_count > 0 AS typed,
       e.seat_count > 0 AS seated, e.seat_version
  FROM events e
 WHERE e.id IN (SELECT value FROM json_each(?1)
                UNION
                SELECT r.event_id FROM reservations r
                 WHERE r.id IN (SELECT value FROM json_each(?2)))
 ORDER BY e.id";

static USAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT COALESCE(sum(r.quantity), 0) AS tickets FROM reservations r
          WHERE r.event_id = ?1 AND r.customer = ?2 AND {}",
        counts_for_customer("r", "?3")
    )
});

#[derive(QueryableByName)]
struct UsageRow {
    #[diesel(sql_type = BigInt)]
    tickets: i64,
}

static EXISTING_KEY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.fingerprint, k.status, k.body, {} AS expired
           FROM idempotency_keys k WHERE k.key = ?1",
        key_expired("k", "?2")
    )
});

#[derive(QueryableByName)]
struct ExistingRow {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Nullable<Integer>)]
    status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    expired: bool,
}

static PURGE_KEYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM idempotency_keys
          WHERE key IN (SELECT o.key FROM idempotency_keys o
                         WHERE {} ORDER BY o.expires_at LIMIT ?2)",
        key_expired("o", "?1")
    )
});

impl store_sql::Primitives for Session<'_> {
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event> {
        let row: EventRow = diesel::sql_query(CREATE_EVENT_SQL)
            .bind::<Text, _>(new.name.as_str())
            .bind::<Integer, _>(new.capacity.get())
            .bind::<Text, _>(to_text(now))
            .get_result(self.conn)
            .map_err(fail)?;
        row.try_into().map_err(fail)
    }

    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked> {
        let rows: Vec<LockedRow> = diesel::sql_query(LOCK_EVENTS_SQL)
            .bind::<Text, _>(json_array(ids.iter().map(|id| id.get()), false))
            .bind::<Text, _>(json_array(of_holds.iter(), true))
            .load(self.conn)
            .map_err(fail)?;
        Ok(rows.into_iter().map(LockedEvent::from).collect())
    }

    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event> {
        let row: EventRow = diesel::sql_query(UPDATE_EVENT_SQL)
            .bind::<BigInt, _>(id.get())
            .bind::<Text, _>(set.name.as_str())
            .bind::<Integer, _>(set.capacity.get())
            .bind::<Text, _>(to_text(now))
            .get_result(self.conn)
            .map_err(fail)?;
        row.try_into().map_err(fail)
    }

    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>> {
        let stamp = to_text(now);
        let mut usage = Vec::with_capacity(pairs.len());
        for (event, customer) in pairs {
            let row: UsageRow = diesel::sql_query(USAGE_SQL.as_str())
                .bind::<BigInt, _>(event.get())
                .bind::<Text, _>(customer.as_str())
                .bind::<Text, _>(&stamp)
                .get_result(self.conn)
                .map_err(fail)?;
            usage.push((*event, customer.clone(), row.tickets));
        }
        Ok(usage)
    }

    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims> {
        let stamp = to_text(term.now);
        let until = to_text(term.until);
        let mut outcomes = Vec::with_capacity(claims.len());
        for claim in claims {
            let existing: Option<ExistingRow> = diesel::sql_query(EXISTING_KEY_SQL.as_str())
                .bind::<Text, _>(claim.key.as_str())
                .bind::<Text, _>(&stamp)
                .get_result(self.conn)
                .optional()
                .map_err(fail)?;
            match existing {
                Some(row) if !row.expired => {
                    let (Some(status), Some(body)) = (row.status, row.body) else {
                        return Err(corrupt(
                            "an idempotency record committed without its answer",
                        ));
                    };
                    outcomes.push(ClaimOutcome::Existing {
                        fingerprint: Fingerprint(row.fingerprint),
                        answer: StoredAnswer {
                            status: u16::try_from(status).unwrap_or(500),
                            body,
                        },
                    });
                }
                _ => {
                    diesel::replace_into(idempotency_keys::table)
                        .values((
                            idempotency_keys::key.eq(claim.key.as_str()),
                            idempotency_keys::fingerprint.eq(claim.fingerprint.0.as_str()),
                            idempotency_keys::created_at.eq(&stamp),
                            idempotency_keys::expires_at.eq(&until),
                        ))
                        .execute(self.conn)
                        .map_err(fail)?;
                    outcomes.push(ClaimOutcome::Claimed);
                }
            }
        }
        Ok(outcomes)
    }

    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()> {
        crate::apply::apply(self.conn, changes, now)
    }

    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32> {
        let deleted = diesel::sql_query(PURGE_KEYS_SQL.as_str())
            .bind::<Text, _>(to_text(now))
            .bind::<BigInt, _>(i64::from(limit))
            .execute(self.conn)
            .map_err(fail)?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }
}
