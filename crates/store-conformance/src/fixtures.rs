//! Helpers shared by the suite's tests.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use domain::{
    Capacity, DomainError, Event, EventAudit, EventId, EventName, EventStore, HoldRequest,
    NewEvent, PaymentReference, PurchaseRequest, Reservation, ReservationId, ReservationStore,
};

/// Now, at the microsecond precision every store keeps.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Creates an event of `capacity` tickets.
pub fn create_event<S: EventStore + ?Sized>(store: &S, capacity: i64, at: DateTime<Utc>) -> Event {
    let new = NewEvent {
        name: EventName::parse("Conformance gala").unwrap(),
        capacity: Capacity::new(capacity).unwrap(),
    };
    store.create_event(&new, at).unwrap()
}

/// A hold request that expires `ttl` after `at`.
pub fn hold(at: DateTime<Utc>, ttl: TimeDelta) -> HoldRequest {
    HoldRequest {
        id: ReservationId::generate(at),
        expires_at: at + ttl,
    }
}

/// Reserves one ticket held for `ttl`, as the single-request path does.
pub fn reserve_one<S: ReservationStore + ?Sized>(
    store: &S,
    event: EventId,
    at: DateTime<Utc>,
    ttl: TimeDelta,
) -> Result<Reservation, DomainError> {
    store
        .reserve(event, &[hold(at, ttl)], at)?
        .pop()
        .expect("one outcome per request")
}

/// Purchases one hold, as the single-request path does.
pub fn purchase_one<S: ReservationStore + ?Sized>(
    store: &S,
    id: ReservationId,
    payment_reference: Option<PaymentReference>,
    at: DateTime<Utc>,
) -> Result<Reservation, DomainError> {
    store
        .purchase_batch(
            &[PurchaseRequest {
                id,
                payment_reference,
            }],
            at,
        )?
        .pop()
        .expect("one outcome per request")
}

/// Asserts that the counters equal a recount of the rows and that SPEC 3's invariant holds.
pub fn assert_consistent<S: EventStore + ?Sized>(
    store: &S,
    event: EventId,
    at: DateTime<Utc>,
) -> EventAudit {
    let audit = store.audit_event(event, at).unwrap();
    assert!(
        audit.counters_match(),
        "counters differ from the rows: {audit:?}"
    );
    assert!(audit.within_capacity(), "oversold: {audit:?}");
    audit
}

/// Ten minutes, the default hold.
pub const TTL: TimeDelta = TimeDelta::minutes(10);
