//! Fixtures for the domain's tests.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::command::OperationKind;
use crate::idempotency::{RenderAnswer, StoredAnswer};
use crate::ledger::Rules;
use crate::memory::MemoryStore;
use crate::{
    Capacity, DomainError, EventId, EventName, FixedClock, HoldTtl, NewEvent, Policy, Reservation,
    ReservationId, ReservationStatus, Ticketing,
};

/// The fixed time every test starts at.
pub const NOW: DateTime<Utc> = DateTime::from_timestamp_nanos(1_800_000_000_000_000_000);

pub fn ttl() -> HoldTtl {
    HoldTtl::from_seconds(600).unwrap_or_else(|| unreachable!())
}

pub fn rules(customer_limit: Option<u32>) -> Rules {
    Rules {
        now: NOW,
        hold_ttl: ttl(),
        max_hold: TimeDelta::seconds(1_800),
        customer_limit,
    }
}

/// A live one-ticket hold of `event`.
pub fn hold_row(event: EventId) -> Reservation {
    Reservation {
        id: ReservationId::generate(NOW, event),
        event_id: event,
        status: ReservationStatus::Reserved,
        quantity: 1,
        customer: None,
        purchased_at: None,
        expires_at: Some(NOW + TimeDelta::seconds(600)),
        payment_reference: None,
        created_at: NOW,
        updated_at: NOW,
        lines: vec![],
        seats: Vec::new(),
    }
}

/// Renders an answer as its status alone: 201/200 for success, 409 for a refusal.
pub struct Echo;

impl RenderAnswer for Echo {
    fn render(
        &self,
        kind: OperationKind,
        outcome: &Result<Reservation, DomainError>,
    ) -> StoredAnswer {
        let status = match (kind, outcome) {
            (OperationKind::Reserve, Ok(_)) => 201,
            (_, Ok(_)) => 200,
            (_, Err(_)) => 409,
        };
        StoredAnswer {
            status,
            body: format!("{outcome:?}"),
        }
    }
}

/// Use cases on an empty in-memory store, with a clock the test moves.
pub fn memory_ticketing(customer_limit: Option<u32>) -> (Ticketing, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(NOW));
    let policy = Policy {
        max_tickets_per_customer: customer_limit,
        ..Policy::with_hold_ttl(ttl())
    };
    let t = Ticketing::new(Arc::new(MemoryStore::new()), clock.clone(), policy);
    (t, clock)
}

pub fn new_event(capacity: i64) -> NewEvent {
    NewEvent {
        name: EventName::parse("Gala").unwrap_or_else(|_| unreachable!()),
        capacity: Capacity::new(capacity).unwrap_or_else(|_| unreachable!()),
    }
}
