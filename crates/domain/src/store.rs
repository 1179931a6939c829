//! The ports the stores implement.
//!
//! Each call is one transaction: it either happens entirely or not at all, whatever else runs
//! at the same time, in this process or another one on the same database. Stores lock an
//! event's row before any of its reservation rows, in every call, so calls never deadlock each
//! other. Stores decide with the pure functions of [`crate::availability`] and
//! [`crate::reservation`] inside those transactions.
//!
//! Every call may also fail with [`DomainError::Store`]: [`crate::StoreErrorKind::Unavailable`]
//! when the database cannot be reached or dropped the connection (the call then changed
//! nothing), [`crate::StoreErrorKind::Internal`] otherwise.

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::event::{Event, EventAudit, EventSnapshot, NewEvent};
use crate::ids::{EventId, ReservationId};
use crate::purchase_plan::PurchaseRequest;
use crate::reservation::{HoldRequest, Reservation};

/// The answer to one request of a reserve batch: the new hold, or [`DomainError::SoldOut`].
pub type ReserveOutcome = Result<Reservation, DomainError>;

/// Events and their ticket counts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventStore: Send + Sync {
    /// Creates an event with nothing reserved, stamped `now`.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn create_event(&self, new: &NewEvent, now: DateTime<Utc>) -> Result<Event, DomainError>;

    /// Reads an event, its counters and its past-due holds at `now`, in one consistent snapshot
    /// and without taking the event's lock.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] when no event has this id.
    fn event_snapshot(&self, id: EventId, now: DateTime<Utc>)
        -> Result<EventSnapshot, DomainError>;

    /// Recounts the event's reservation rows next to its counters, in one consistent snapshot.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] when no event has this id.
    fn audit_event(&self, id: EventId, now: DateTime<Utc>) -> Result<EventAudit, DomainError>;
}

/// Reservations: the transactions that move tickets.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ReservationStore: Send + Sync {
    /// Serves a batch of reserve requests for one event in one transaction: locks the event
    /// row, decides with [`crate::availability::decide_reserve`] (which may release past-due
    /// holds first), inserts the granted holds, updates the counter, commits.
    ///
    /// Returns one outcome per request, in order: the new reservation, or
    /// [`DomainError::SoldOut`]. A batch never half-succeeds: either every outcome is returned
    /// or the call fails as a whole and grants nothing.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`] when no event has this id (for the whole batch).
    fn reserve(
        &self,
        event: EventId,
        requests: &[HoldRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReserveOutcome>, DomainError>;

    /// Serves a batch of purchases in one transaction: reads which events the holds belong
    /// to, locks those event rows in id order, then the reservation rows, decides with
    /// [`crate::purchase_plan::decide_purchases`] (in request order, so of two purchases of
    /// one hold the first wins), writes `purchased` under a guard that lets only one
    /// concurrent purchase of a hold win, updates the counters, commits.
    ///
    /// Returns one outcome per request, in order: the purchased reservation, or
    /// [`DomainError::ReservationNotFound`] for an unknown id,
    /// [`DomainError::AlreadyPurchased`] when it was purchased before,
    /// [`DomainError::InvalidOrExpired`] when it is expired, canceled or past due (a past-due
    /// hold is marked `expired` in the same transaction). Either every outcome is returned or
    /// the call fails as a whole and changes nothing.
    ///
    /// # Errors
    /// Only [`DomainError::Store`], for the whole batch.
    fn purchase_batch(
        &self,
        requests: &[PurchaseRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Reservation, DomainError>>, DomainError>;

    /// Cancels a hold, releasing its ticket at once: locks its event, then the reservation,
    /// and decides with [`crate::reservation::decide_transition`].
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`], [`DomainError::AlreadyPurchased`] or
    /// [`DomainError::InvalidOrExpired`] (a past-due hold is marked `expired`).
    fn cancel(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation, DomainError>;

    /// Reads a reservation.
    ///
    /// # Errors
    /// [`DomainError::ReservationNotFound`] for an unknown id.
    fn find_reservation(&self, id: ReservationId) -> Result<Reservation, DomainError>;

    /// Marks up to `limit` past-due holds `expired` in one short transaction (locking their
    /// events first, in id order, and skipping rows another transaction holds), and returns how
    /// many it marked. Safe to run concurrently with itself and with every other call.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<u32, DomainError>;
}
