//! Errors of the domain layer.
//!
//! Error policy: every outcome a client can act on (sold out, not found, expired, invalid input)
//! is its own variant, so the HTTP layer can map it to one status code and body in one place.
//! Everything the client cannot act on (the database is down, a query failed) is a
//! [`DomainError::Store`], which carries only whether retrying may help and a message for the
//! logs; adapters never leak their own error types through the ports.

use thiserror::Error;

/// What can go wrong in a use case.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// No ticket is left for the event.
    #[error("event is sold out")]
    SoldOut,
    /// A typed reserve asked for more tickets of these types than are left.
    #[error("sold out: {0:?}")]
    TypesSoldOut(Vec<Shortfall>),
    /// An extend would make the hold last longer than the longest hold from its creation.
    #[error("the hold would last longer than allowed")]
    HoldLifetimeExceeded,
    /// Some of the seats a reserve named are held or sold: their labels.
    #[error("seats unavailable: {0:?}")]
    SeatUnavailable(Vec<String>),
    /// The event's seating plan cannot be replaced: seats or tickets are held or sold.
    #[error("the seating plan is locked")]
    SeatingLocked,
    /// The event has no seating plan.
    #[error("the event has no seating plan")]
    SeatingNotFound,
    /// No webhook endpoint (or none of its deliveries) has the given id.
    #[error("webhook endpoint or delivery not found")]
    WebhookNotFound,
    /// No quota of the event has the given id.
    #[error("quota not found")]
    QuotaNotFound,
    /// No event has the given id.
    #[error("event not found")]
    EventNotFound,
    /// No reservation has the given id.
    #[error("reservation not found")]
    ReservationNotFound,
    /// The reservation was purchased already; a reservation is purchased at most once.
    #[error("reservation already purchased")]
    AlreadyPurchased,
    /// The hold has expired or was canceled, so it can no longer be purchased or canceled.
    #[error("reservation is invalid or expired")]
    InvalidOrExpired,
    /// The customer already holds or bought as many tickets of the event as the per-customer
    /// limit allows (counting this request).
    #[error("customer limit reached")]
    CustomerLimitReached,
    /// An idempotency key was used before for a different request.
    #[error("idempotency key reused for a different request")]
    IdempotencyKeyReused,
    /// A request with the same idempotency key is still being served.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyKeyInProgress,
    /// The new capacity is below the tickets purchased and held by active holds.
    #[error("capacity below the tickets already sold or held")]
    CapacityBelowSold,
    /// An input value breaks a rule; `field` names the input as clients send it.
    #[error("invalid {field}: {message}")]
    Validation {
        /// The input field, as named in the HTTP API (`payment_reference`, `capacity`, ...).
        field: &'static str,
        /// A sentence a client can show to a person.
        message: String,
    },
    /// The store failed; nothing was changed by the failed call.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many tickets of a type were left when a typed reserve asked for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// The type.
    pub ticket_type: crate::TicketTypeId,
    /// Its tickets left: the least of its quotas'.
    pub available: i64,
}

/// Whether a store failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store could not be reached or dropped the connection: retrying later may succeed.
    Unavailable,
    /// The store refused or failed the operation for another reason (a bug or a broken schema).
    Internal,
    /// The connection broke while the store was committing: the changes may or may not have
    /// been made. Retrying with the same idempotency key tells which.
    OutcomeUnknown,
}

/// A failure of the store behind a port, already stripped of adapter types.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("store {}: {message}", match .kind {
    StoreErrorKind::Unavailable => "unavailable",
    StoreErrorKind::Internal => "error",
    StoreErrorKind::OutcomeUnknown => "commit outcome unknown",
})]
pub struct StoreError {
    /// Whether retrying may help.
    pub kind: StoreErrorKind,
    /// What happened, for the logs.
    pub message: String,
}

impl StoreError {
    /// A failure that retrying later may fix (connection lost, pool exhausted).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: StoreErrorKind::Unavailable,
            message: message.into(),
        }
    }

    /// A commit whose outcome is unknown: the connection broke during `COMMIT`.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self {
            kind: StoreErrorKind::OutcomeUnknown,
            message: message.into(),
        }
    }

    /// A failure that retrying will not fix.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: StoreErrorKind::Internal,
            message: message.into(),
        }
    }
}
