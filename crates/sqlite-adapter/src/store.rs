//! The port implementations. Writers take this process's write turn, then a connection, then
//! SQLite's write lock (`BEGIN IMMEDIATE`); readers only take a connection.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{
    DomainError, Event, EventAudit, EventId, EventSnapshot, EventStore, HoldRequest, NewEvent,
    PurchaseRequest, Reservation, ReservationId, ReservationStore, ReserveOutcome,
};

use crate::error::SqliteStoreError;
use crate::models::ReservationRow;
use crate::pool::SqliteStore;
use crate::schema::reservations;
use crate::{cancel, events, expire, purchase, reserve};

/// Flattens "the store failed" and "the domain refused" into the port's one error type.
fn flatten<T>(result: Result<Result<T, DomainError>, SqliteStoreError>) -> Result<T, DomainError> {
    result.map_err(|e| {
        tracing::error!(error = %e, "SQLite store call failed");
        DomainError::from(e)
    })?
}

impl EventStore for SqliteStore {
    fn create_event(&self, new: &NewEvent, now: DateTime<Utc>) -> Result<Event, DomainError> {
        let _turn = self.write_turn();
        flatten(
            self.conn()
                .and_then(|mut c| events::create_event(&mut c, new, now))
                .map(Ok),
        )
    }

    fn event_snapshot(
        &self,
        id: EventId,
        now: DateTime<Utc>,
    ) -> Result<EventSnapshot, DomainError> {
        flatten(
            self.conn()
                .and_then(|mut c| events::event_snapshot(&mut c, id, now)),
        )
    }

    fn audit_event(&self, id: EventId, now: DateTime<Utc>) -> Result<EventAudit, DomainError> {
        flatten(
            self.conn()
                .and_then(|mut c| events::audit_event(&mut c, id, now)),
        )
    }
}

impl ReservationStore for SqliteStore {
    fn reserve(
        &self,
        event: EventId,
        requests: &[HoldRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReserveOutcome>, DomainError> {
        let _turn = self.write_turn();
        flatten(
            self.conn()
                .and_then(|mut c| reserve::reserve(&mut c, event, requests, now)),
        )
    }

    fn purchase_batch(
        &self,
        requests: &[PurchaseRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Reservation, DomainError>>, DomainError> {
        let _turn = self.write_turn();
        flatten(
            self.conn()
                .and_then(|mut c| purchase::purchase_batch(&mut c, requests, now))
                .map(Ok),
        )
    }

    fn cancel(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation, DomainError> {
        let _turn = self.write_turn();
        flatten(
            self.conn()
                .and_then(|mut c| cancel::cancel(&mut c, id, now)),
        )
    }

    fn find_reservation(&self, id: ReservationId) -> Result<Reservation, DomainError> {
        flatten(self.conn().and_then(|mut c| {
            let row = reservations::table
                .find(id.to_string())
                .select(ReservationRow::as_select())
                .first(&mut c)
                .optional()?;
            match row {
                Some(row) => Ok(Ok(Reservation::try_from(row)?)),
                None => Ok(Err(DomainError::ReservationNotFound)),
            }
        }))
    }

    fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<u32, DomainError> {
        let _turn = self.write_turn();
        flatten(
            self.conn()
                .and_then(|mut c| expire::expire_due(&mut c, now, limit))
                .map(Ok),
        )
    }
}
