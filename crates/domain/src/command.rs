//! The requests that move tickets, as the write pipeline carries them: reserve, purchase,
//! cancel, extend and release, each optionally with an idempotency key.

use crate::error::DomainError;
use crate::idempotency::{IdempotencyClaim, StoredAnswer};
use crate::ids::{EventId, ReservationId};
use crate::inventory::LineRequest;
use crate::reservation::Reservation;
use crate::seating::SeatRequest;
use crate::validation::{Customer, PaymentReference, Quantity};

/// Hold `quantity` tickets of `event`, all or nothing: untyped, or of the ticket types of
/// `lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    /// The event.
    pub event: EventId,
    /// How many tickets in all (the lines' sum, for a typed reserve).
    pub quantity: Quantity,
    /// Whose they are, for the per-customer limit.
    pub customer: Option<Customer>,
    /// The tickets by type (distinct types); empty for an untyped reserve.
    pub lines: Vec<LineRequest>,
    /// The request's field that named the types (`ticket_type` or `lines`), for refusals.
    pub lines_field: &'static str,
    /// The seats asked for, on an event with a seating plan (`quantity` is their number).
    pub seats: Option<SeatRequest>,
}

impl Reserve {
    /// An untyped reserve of `quantity` tickets.
    pub fn untyped(event: EventId, quantity: Quantity, customer: Option<Customer>) -> Self {
        Self {
            event,
            quantity,
            customer,
            lines: Vec::new(),
            lines_field: "ticket_type",
            seats: None,
        }
    }

    /// A reserve of seats of a seated event: `quantity` must be their number.
    pub fn seated(
        event: EventId,
        quantity: Quantity,
        customer: Option<Customer>,
        seats: SeatRequest,
    ) -> Self {
        Self {
            seats: Some(seats),
            ..Self::untyped(event, quantity, customer)
        }
    }
}

/// Make an active hold last longer: `expires_at = max(expires_at, now + seconds)`, as long as
/// the hold's whole life stays within the longest hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extend {
    /// The hold.
    pub id: ReservationId,
    /// How long from now (`None`: the hold TTL).
    pub seconds: Option<u32>,
}

/// What a release gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasePart {
    /// Tickets of an untyped hold.
    Tickets(Quantity),
    /// Tickets of a typed hold, by type.
    Lines(Vec<LineRequest>),
    /// Seats of a seated hold, by label.
    Seats(Vec<String>),
}

/// Give back part of an active hold at once; the rest stays held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The hold.
    pub id: ReservationId,
    /// What it gives back: fewer than all of its tickets.
    pub part: ReleasePart,
}

/// Purchase the hold `id` while it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// The hold.
    pub id: ReservationId,
    /// What the client records with the purchase.
    pub payment_reference: Option<PaymentReference>,
}

/// Release the active hold `id` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// The hold.
    pub id: ReservationId,
}

/// One request that changes tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// See [`Reserve`].
    Reserve(Reserve),
    /// See [`Purchase`].
    Purchase(Purchase),
    /// See [`Cancel`].
    Cancel(Cancel),
    /// See [`Extend`].
    Extend(Extend),
    /// See [`Release`].
    Release(Release),
}

/// Which kind of [`Operation`] a request is, for rendering its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// A reserve.
    Reserve,
    /// A purchase.
    Purchase,
    /// A cancel.
    Cancel,
    /// An extend.
    Extend,
    /// A release.
    Release,
}

impl Operation {
    /// Its kind.
    pub fn kind(&self) -> OperationKind {
        match self {
            Self::Reserve(_) => OperationKind::Reserve,
            Self::Purchase(_) => OperationKind::Purchase,
            Self::Cancel(_) => OperationKind::Cancel,
            Self::Extend(_) => OperationKind::Extend,
            Self::Release(_) => OperationKind::Release,
        }
    }

    /// The hold it acts on, for everything but a reserve.
    pub fn reservation(&self) -> Option<ReservationId> {
        match self {
            Self::Reserve(_) => None,
            Self::Purchase(p) => Some(p.id),
            Self::Cancel(c) => Some(c.id),
            Self::Extend(e) => Some(e.id),
            Self::Release(r) => Some(r.id),
        }
    }

    /// A 16-bit tag of the event it acts on, the same for every request of one event (for
    /// purchases and cancels, read from the reservation id, so no lookup is needed). Servers
    /// partition their work by it.
    pub fn lane_tag(&self) -> u16 {
        match (self, self.reservation()) {
            (_, Some(id)) => id.lane_tag(),
            (Self::Reserve(r), None) => r.event.lane_tag(),
            // Every operation but a reserve names a hold.
            (_, None) => 0,
        }
    }
}

/// A request of a batch: what to do and, optionally, the idempotency key it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What to do.
    pub operation: Operation,
    /// The client's idempotency key and the request's fingerprint.
    pub idempotency: Option<IdempotencyClaim>,
}

impl Command {
    /// A command without an idempotency key.
    pub fn new(operation: Operation) -> Self {
        Self {
            operation,
            idempotency: None,
        }
    }
}

/// The answer to one command of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Decided in this batch: the reservation as it now is, or why not.
    Decided(Result<Reservation, DomainError>),
    /// The command's idempotency key was used before for this same request: its first answer.
    Replayed(StoredAnswer),
}

impl CommandOutcome {
    /// The decided result; a replay is reported as `None`.
    pub fn decided(self) -> Option<Result<Reservation, DomainError>> {
        match self {
            Self::Decided(result) => Some(result),
            Self::Replayed(_) => None,
        }
    }
}
