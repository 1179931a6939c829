//! The rules of the ticket reservation service, free of any framework or database.
//!
//! * [`availability`] holds the availability rule of SPEC 3 as pure functions, including the
//!   batch grant decision that the stores call inside their transactions.
//! * [`reservation`] holds the reservation state machine.
//! * [`validation`] holds the value types that can only be built valid.
//! * [`store`] declares the ports the adapters implement, one transaction per call.
//! * [`Ticketing`] is the set of use cases the HTTP API and the command line drive.
#![warn(missing_docs, clippy::missing_errors_doc)]

pub mod availability;
pub mod clock;
pub mod error;
pub mod event;
pub mod ids;
pub mod purchase_plan;
pub mod reservation;
pub mod store;
pub mod validation;

mod cancel;
mod create_event;
mod expire;
mod purchase;
mod queries;
mod reserve;
mod ticketing;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{DomainError, StoreError, StoreErrorKind};
pub use event::{Event, EventAudit, EventSnapshot, EventSummary, NewEvent};
pub use ids::{EventId, ReservationId};
pub use purchase_plan::PurchaseRequest;
pub use reservation::{HoldRequest, Reservation, ReservationStatus};
pub use store::{EventStore, ReservationStore};
pub use ticketing::{HoldTtl, Ticketing};
pub use validation::{Capacity, EventName, PaymentReference};

#[cfg(any(test, feature = "mocks"))]
pub use store::{MockEventStore, MockReservationStore};

pub use expire::DEFAULT_EXPIRE_BATCH;
pub use store::ReserveOutcome;

#[cfg(test)]
mod test_support;
