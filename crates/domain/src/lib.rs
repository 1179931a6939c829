//! The rules of the ticket reservation service, free of any framework or database.
//!
//! * [`availability`] holds the availability rule (README, "How it never oversells").
//! * [`ledger`] decides a batch of reserves, purchases and cancels in arrival order, as pure
//!   functions over what the batch's transaction locked.
//! * [`inventory`] holds quotas, ticket types and the lines of a hold.
//! * [`seating`] holds seating plans, who has each seat, and the choice of the best seats.
//! * [`reservation`] holds the reservation state machine.
//! * [`validation`] holds the value types that can only be built valid.
//! * [`idempotency`] holds idempotency keys and the first answers stored under them.
//! * [`store`] declares the ports: reads, and write transactions driven as a unit of work of
//!   primitive operations, so every store runs the same algorithm.
//! * [`Ticketing`] is the set of use cases the HTTP API and the command line drive.
#![warn(missing_docs, clippy::missing_errors_doc)]

pub mod availability;
pub mod clock;
pub mod command;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod inventory;
pub mod ledger;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod outbox;
pub mod reservation;
pub mod seating;
pub mod store;
pub mod validation;
pub mod webhook;

mod batch;
mod create_event;
mod edit_event;
mod edit_inventory;
mod edit_seating;
mod edit_webhooks;
mod expire;
mod queries;
mod ticketing;

pub use clock::{Clock, FixedClock, SystemClock};
pub use command::{
    Cancel, Command, CommandOutcome, Extend, Operation, OperationKind, Purchase, Release,
    ReleasePart, Reserve,
};
pub use edit_seating::SeatMapView;
pub use error::{DomainError, Shortfall, StoreError, StoreErrorKind};
pub use event::{
    Event, EventAudit, EventPage, EventPatch, EventSnapshot, EventSummary, NewEvent, TypeAudit,
};
pub use expire::{ExpiryReport, DEFAULT_EXPIRE_BATCH};
pub use idempotency::{
    ClaimOutcome, Fingerprint, IdempotencyClaim, IdempotencyKey, RenderAnswer, StoredAnswer,
};
pub use ids::{EventId, QuotaId, ReservationId, SeatId, TicketTypeId};
pub use inventory::{
    Counters, Inventory, InventorySnapshot, InventorySummary, Line, LineRequest, LockedQuota,
    LockedType, NewQuota, NewTicketType, Quota, QuotaAudit, QuotaPatch, QuotaSummary, TicketType,
    TypeSummary,
};
pub use outbox::{Message, MessageKind, StoredMessage, MAX_MESSAGES_PER_READ};
pub use queries::MAX_PAGE_SIZE;
pub use reservation::{Reservation, ReservationStatus};
pub use seating::{
    HeldSeat, Holder, NewPlan, NewRow, NewSection, SeatMap, SeatPlan, SeatRequest, SeatRow,
    SeatStatus, Section,
};
pub use store::{
    PageRequest, ReadStore, Readiness, Reads, Seating, Store, Stored, Timestamp, UnitOfWork,
    WriteStore,
};
pub use ticketing::{
    HoldTtl, Policy, Ticketing, DEFAULT_IDEMPOTENCY_TTL_SECONDS, DEFAULT_OUTBOX_RETENTION_HOURS,
};
pub use validation::{
    Capacity, Customer, EventName, PaymentReference, Quantity, DEFAULT_MAX_TICKETS_PER_RESERVATION,
};

#[cfg(any(test, feature = "mocks"))]
pub use store::{MockReads, MockUnitOfWork};

#[cfg(test)]
mod test_support;
