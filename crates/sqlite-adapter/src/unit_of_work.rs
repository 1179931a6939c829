//! The primitives of a write transaction on SQLite. None decides anything: the domain drives
//! them (see `domain::store::UnitOfWork`). There are no row locks to take: the transaction
//! holds SQLite's one write lock (`BEGIN IMMEDIATE`) from its start, which serializes every
//! writer of the file, so "lock" here only reads.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::store::{Changes, LockedEvent, ReleasedHold, StatusChange, UnitOfWork};
use domain::{
    Capacity, ClaimOutcome, Customer, DomainError, Event, EventId, EventName, EventSnapshot,
    Fingerprint, IdempotencyClaim, NewEvent, Reservation, ReservationId, ReservationStatus,
    StoredAnswer,
};

use crate::error::SqliteStoreError;
use crate::models::{EventRow, NewHoldRow};
use crate::reads;
use crate::schema::{events, idempotency_keys, reservations};
use crate::time::to_text;

/// Rows per INSERT statement: 8 parameters a row stays below SQLite's 32,766.
const INSERT_CHUNK: usize = 2_000;
/// Ids per `IN (...)` list.
const IN_CHUNK: usize = 10_000;

/// The transaction's connection, seen through the domain's port.
pub(crate) struct SqliteUnitOfWork<'c> {
    conn: &'c mut SqliteConnection,
}

impl<'c> SqliteUnitOfWork<'c> {
    pub(crate) fn new(conn: &'c mut SqliteConnection) -> Self {
        Self { conn }
    }
}

fn fail(err: impl Into<SqliteStoreError>) -> DomainError {
    DomainError::from(err.into())
}

fn corrupt(what: impl Into<String>) -> DomainError {
    fail(SqliteStoreError::CorruptRow(what.into()))
}

fn parse_id(raw: &str) -> Result<ReservationId, DomainError> {
    raw.parse()
        .map_err(|_| corrupt(format!("reservation id {raw:?}")))
}

impl UnitOfWork for SqliteUnitOfWork<'_> {
    fn create_event(&mut self, new: &NewEvent, now: DateTime<Utc>) -> Result<Event, DomainError> {
        let stamp = to_text(now);
        let row: EventRow = diesel::insert_into(events::table)
            .values((
                events::name.eq(new.name.as_str()),
                events::capacity.eq(new.capacity.get()),
                events::created_at.eq(&stamp),
                events::updated_at.eq(&stamp),
            ))
            .returning(EventRow::as_returning())
            .get_result(self.conn)
            .map_err(fail)?;
        row.try_into().map_err(fail)
    }

    fn lock_events(
        &mut self,
        ids: &[EventId],
        of_reservations: &[ReservationId],
    ) -> Result<Vec<LockedEvent>, DomainError> {
        let mut ids = ids.to_vec();
        let keys: Vec<String> = of_reservations.iter().map(ToString::to_string).collect();
        for chunk in keys.chunks(IN_CHUNK) {
            let events: Vec<i64> = reservations::table
                .filter(reservations::id.eq_any(chunk))
                .select(reservations::event_id)
                .load(self.conn)
                .map_err(fail)?;
            ids.extend(events.into_iter().map(EventId::new));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut locked = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let raw: Vec<i64> = chunk.iter().map(|id| id.get()).collect();
            let rows: Vec<(i64, i32, i32, i32)> = events::table
                .filter(events::id.eq_any(raw))
                .order(events::id)
                .select((
                    events::id,
                    events::capacity,
                    events::purchased_count,
                    events::reserved_count,
                ))
                .load(self.conn)
                .map_err(fail)?;
            locked.extend(
                rows.into_iter()
                    .map(|(id, capacity, purchased, held)| LockedEvent {
                        id: EventId::new(id),
                        capacity,
                        purchased,
                        held,
                    }),
            );
        }
        Ok(locked)
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
                events::updated_at.eq(to_text(now)),
            ))
            .returning(EventRow::as_returning())
            .get_result(self.conn)
            .map_err(fail)?;
        row.try_into().map_err(fail)
    }

    fn read_reservations(
        &mut self,
        ids: &[ReservationId],
    ) -> Result<Vec<Reservation>, DomainError> {
        reads::reservations(self.conn, ids).map_err(fail)
    }

    fn release_past_due(
        &mut self,
        events: &[EventId],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ReleasedHold>, DomainError> {
        let stamp = to_text(now);
        let raw: Vec<i64> = events.iter().map(|id| id.get()).collect();
        let reserved = ReservationStatus::Reserved.as_str();
        let due_rows = diesel::alias!(reservations as due);
        let due = due_rows
            .filter(due_rows.field(reservations::event_id).eq_any(raw))
            .filter(due_rows.field(reservations::status).eq(reserved))
            .filter(due_rows.field(reservations::expires_at).le(&stamp))
            .order(due_rows.field(reservations::expires_at))
            .limit(i64::from(limit))
            .select(due_rows.field(reservations::id));
        let rows: Vec<(String, i64, i32)> = diesel::update(reservations::table)
            .filter(reservations::id.eq_any(due))
            .filter(reservations::status.eq(reserved))
            .set((
                reservations::status.eq(ReservationStatus::Expired.as_str()),
                reservations::updated_at.eq(&stamp),
            ))
            .returning((
                reservations::id,
                reservations::event_id,
                reservations::quantity,
            ))
            .get_results(self.conn)
            .map_err(fail)?;
        rows.into_iter()
            .map(|(id, event, quantity)| {
                Ok(ReleasedHold {
                    id: parse_id(&id)?,
                    event: EventId::new(event),
                    quantity,
                })
            })
            .collect()
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: u32) -> Result<Vec<EventId>, DomainError> {
        let mut ids: Vec<i64> = reservations::table
            .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()))
            .filter(reservations::expires_at.le(to_text(now)))
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
        let stamp = to_text(now);
        let mut usage = Vec::with_capacity(pairs.len());
        for (event, customer) in pairs {
            let tickets: Option<i64> = reservations::table
                .filter(reservations::event_id.eq(event.get()))
                .filter(reservations::customer.eq(customer.as_str()))
                .filter(
                    reservations::status
                        .eq(ReservationStatus::Purchased.as_str())
                        .or(reservations::status
                            .eq(ReservationStatus::Reserved.as_str())
                            .and(reservations::expires_at.gt(&stamp))),
                )
                .select(diesel::dsl::sum(reservations::quantity))
                .first(self.conn)
                .map_err(fail)?;
            usage.push((*event, customer.clone(), tickets.unwrap_or(0)));
        }
        Ok(usage)
    }

    fn claim_keys(
        &mut self,
        claims: &[IdempotencyClaim],
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimOutcome>, DomainError> {
        let stamp = to_text(now);
        let until = to_text(keep_until);
        let mut outcomes = Vec::with_capacity(claims.len());
        for claim in claims {
            let existing: Option<(String, String, Option<i32>, Option<String>)> =
                idempotency_keys::table
                    .find(claim.key.as_str())
                    .select((
                        idempotency_keys::fingerprint,
                        idempotency_keys::expires_at,
                        idempotency_keys::status,
                        idempotency_keys::body,
                    ))
                    .first(self.conn)
                    .optional()
                    .map_err(fail)?;
            match existing {
                Some((fingerprint, expires_at, status, body)) if expires_at > stamp => {
                    let (Some(status), Some(body)) = (status, body) else {
                        return Err(corrupt(
                            "an idempotency record committed without its answer",
                        ));
                    };
                    outcomes.push(ClaimOutcome::Existing {
                        fingerprint: Fingerprint(fingerprint),
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

    fn apply(&mut self, changes: &Changes, now: DateTime<Utc>) -> Result<(), DomainError> {
        let stamp = to_text(now);
        let rows: Vec<NewHoldRow<'_>> = changes
            .holds
            .iter()
            .map(|hold| NewHoldRow {
                id: hold.id.to_string(),
                event_id: hold.event_id.get(),
                status: ReservationStatus::Reserved.as_str(),
                quantity: hold.quantity,
                customer: hold.customer.as_deref(),
                expires_at: hold.expires_at.map(to_text),
                created_at: &stamp,
                updated_at: &stamp,
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            diesel::insert_into(reservations::table)
                .values(chunk)
                .execute(self.conn)
                .map_err(fail)?;
        }
        for change in &changes.statuses {
            let target = reservations::table
                .filter(reservations::id.eq(change.id().to_string()))
                .filter(reservations::status.eq(ReservationStatus::Reserved.as_str()));
            let updated = match change {
                StatusChange::Purchased {
                    payment_reference, ..
                } => diesel::update(target)
                    .set((
                        reservations::status.eq(ReservationStatus::Purchased.as_str()),
                        reservations::purchased_at.eq(&stamp),
                        reservations::payment_reference.eq(payment_reference.as_deref()),
                        reservations::updated_at.eq(&stamp),
                    ))
                    .execute(self.conn),
                StatusChange::Canceled { .. } | StatusChange::Expired { .. } => {
                    let status = if matches!(change, StatusChange::Canceled { .. }) {
                        ReservationStatus::Canceled
                    } else {
                        ReservationStatus::Expired
                    };
                    diesel::update(target)
                        .set((
                            reservations::status.eq(status.as_str()),
                            reservations::updated_at.eq(&stamp),
                        ))
                        .execute(self.conn)
                }
            }
            .map_err(fail)?;
            if updated != 1 {
                // Only a writer outside the transaction protocol can get here: change nothing.
                return Err(corrupt(format!("{} is no longer reserved", change.id())));
            }
        }
        for (event, delta) in &changes.counters {
            let held = i32::try_from(delta.held).map_err(|_| corrupt("counter change"))?;
            let purchased =
                i32::try_from(delta.purchased).map_err(|_| corrupt("counter change"))?;
            diesel::update(events::table.find(event.get()))
                .set((
                    events::reserved_count.eq(events::reserved_count + held),
                    events::purchased_count.eq(events::purchased_count + purchased),
                ))
                .execute(self.conn)
                .map_err(fail)?;
        }
        for (key, answer) in &changes.answers {
            let updated = diesel::update(idempotency_keys::table.find(key.as_str()))
                .set((
                    idempotency_keys::status.eq(i32::from(answer.status)),
                    idempotency_keys::body.eq(answer.body.as_str()),
                ))
                .execute(self.conn)
                .map_err(fail)?;
            if updated != 1 {
                return Err(corrupt("an answer for an unclaimed idempotency key"));
            }
        }
        Ok(())
    }

    fn purge_keys(&mut self, now: DateTime<Utc>, limit: u32) -> Result<u32, DomainError> {
        let stamp = to_text(now);
        let due = diesel::alias!(idempotency_keys as due);
        let expired = due
            .filter(due.field(idempotency_keys::expires_at).le(&stamp))
            .order(due.field(idempotency_keys::expires_at))
            .limit(i64::from(limit))
            .select(due.field(idempotency_keys::key));
        let deleted = diesel::delete(idempotency_keys::table)
            .filter(idempotency_keys::key.eq_any(expired))
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
