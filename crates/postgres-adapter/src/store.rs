//! The port implementations: each checks out a connection and runs one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{
    DomainError, Event, EventAudit, EventId, EventSnapshot, EventStore, HoldRequest, NewEvent,
    PurchaseRequest, Reservation, ReservationId, ReservationStore, ReserveOutcome,
};

use crate::error::PgStoreError;
use crate::models::ReservationRow;
use crate::pool::PgStore;
use crate::schema::reservations;
use crate::{cancel, events, expire, purchase, reserve};

/// Flattens "the store failed" and "the domain refused" into the port's one error type.
fn flatten<T>(result: Result<Result<T, DomainError>, PgStoreError>) -> Result<T, DomainError> {
    result.map_err(|e| {
        tracing::error!(error = %e, "PostgreSQL store call failed");
        DomainError::from(e)
    })?
}

impl EventStore for PgStore {
    fn create_event(&self, new: &NewEvent, now: DateTime<Utc>) -> Result<Event, DomainError> {
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

impl ReservationStore for PgStore {
    fn reserve(
        &self,
        event: EventId,
        requests: &[HoldRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReserveOutcome>, DomainError> {
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
        flatten(
            self.conn()
                .and_then(|mut c| purchase::purchase_batch(&mut c, requests, now))
                .map(Ok),
        )
    }

    fn cancel(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation, DomainError> {
        flatten(
            self.conn()
                .and_then(|mut c| cancel::cancel(&mut c, id, now)),
        )
    }

    fn find_reservation(&self, id: ReservationId) -> Result<Reservation, DomainError> {
        flatten(self.conn().and_then(|mut c| {
            let row = reservations::table
                .find(id.as_uuid())
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
        flatten(
            self.conn()
                .and_then(|mut c| expire::expire_due(&mut c, now, limit))
                .map(Ok),
        )
    }
}
