//! Helpers shared by the suite's tests.

use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use domain::{
    Cancel, Capacity, Clock, Command, CommandOutcome, DomainError, Event, EventAudit, EventId,
    EventName, FixedClock, HoldTtl, NewEvent, Operation, OperationKind, PaymentReference, Policy,
    Purchase, Quantity, RenderAnswer, Reservation, ReservationId, Reserve, Store, StoredAnswer,
    SystemClock, Ticketing,
};

use crate::Harness;

/// Now, at the microsecond precision every store keeps.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Ten minutes, the default hold.
pub const TTL: TimeDelta = TimeDelta::minutes(10);

/// The use cases on a store, with a clock the test moves by hand.
pub struct Fixture {
    /// The use cases.
    pub t: Ticketing,
    /// Their clock.
    pub clock: Arc<FixedClock>,
    /// The store itself, to read rows as stored (the use cases show a past-due hold as
    /// expired whatever its row says).
    store: Arc<dyn domain::store::ReadStore>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("t", &self.t)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// On `store`, with holds of [`TTL`] and `policy` applied to the defaults.
    pub fn on<S: Store + 'static>(store: Arc<S>, policy: impl FnOnce(&mut Policy)) -> Self {
        let clock = Arc::new(FixedClock::at(now()));
        let mut settings = Policy::with_hold_ttl(ttl(TTL));
        policy(&mut settings);
        Self {
            t: Ticketing::new(store.clone(), clock.clone(), settings),
            clock,
            store,
        }
    }

    /// The status in the reservation's row, as the store holds it.
    ///
    /// # Panics
    /// When the store fails or has no such reservation.
    pub fn stored_status(&self, id: ReservationId) -> domain::ReservationStatus {
        let mut stored = None;
        self.store
            .read(&mut |reads| {
                stored = reads.reservations(&[id])?.pop();
                Ok(())
            })
            .expect("the store reads");
        stored.expect("the reservation exists").status
    }

    /// The default fixture on the harness's store.
    pub fn of<H: Harness>(h: &H) -> Self {
        Self::on(h.store(), |_| {})
    }

    /// The clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// Creates an event of `capacity` tickets.
    pub fn event(&self, capacity: i64) -> Event {
        create_event(&self.t, capacity)
    }
}

/// A hold TTL of `by`.
pub fn ttl(by: TimeDelta) -> HoldTtl {
    HoldTtl::from_seconds(u64::try_from(by.num_seconds()).unwrap()).unwrap()
}

/// The use cases on `store` with the system clock, for tests that run in real time.
pub fn live<S: Store + 'static>(store: Arc<S>, hold: TimeDelta) -> Ticketing {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ticketing::new(store, clock, Policy::with_hold_ttl(ttl(hold)))
}

/// Creates an event of `capacity` tickets.
pub fn create_event(t: &Ticketing, capacity: i64) -> Event {
    let new = NewEvent {
        name: EventName::parse("Conformance gala").unwrap(),
        capacity: Capacity::new(capacity).unwrap(),
    };
    t.create_event(&new).unwrap().event
}

/// A reserve of `quantity` tickets of `event`.
pub fn reserve(event: EventId, quantity: u32) -> Operation {
    Operation::Reserve(Reserve::untyped(
        event,
        Quantity::new(i64::from(quantity), 100).unwrap(),
        None,
    ))
}

/// A purchase of `id`, with a reference when one is given.
pub fn purchase(id: ReservationId, reference: Option<&str>) -> Operation {
    Operation::Purchase(Purchase {
        id,
        payment_reference: reference.and_then(|r| PaymentReference::parse(r).unwrap()),
    })
}

/// A cancel of `id`.
pub fn cancel(id: ReservationId) -> Operation {
    Operation::Cancel(Cancel { id })
}

/// Serves one operation.
pub fn one(t: &Ticketing, operation: Operation) -> Result<Reservation, DomainError> {
    match operation {
        Operation::Reserve(r) => t.reserve(r),
        Operation::Purchase(p) => t.purchase(p),
        Operation::Cancel(c) => t.cancel(c),
        Operation::Extend(e) => t.extend(e),
        Operation::Release(r) => t.release(r),
    }
}

/// Serves operations in one batch and returns their decided outcomes.
pub fn batch(t: &Ticketing, operations: Vec<Operation>) -> Vec<Result<Reservation, DomainError>> {
    let commands: Vec<Command> = operations.into_iter().map(Command::new).collect();
    t.execute(&commands, &StatusAnswers)
        .unwrap()
        .into_iter()
        .map(|o| o.decided().expect("no key, no replay"))
        .collect()
}

/// Renders an answer as its status and the reservation id (or the error), which is enough to
/// tell a replay from a fresh decision.
#[derive(Debug)]
pub struct StatusAnswers;

impl RenderAnswer for StatusAnswers {
    fn render(
        &self,
        kind: OperationKind,
        outcome: &Result<Reservation, DomainError>,
    ) -> StoredAnswer {
        match outcome {
            Ok(r) => StoredAnswer {
                status: if kind == OperationKind::Reserve {
                    201
                } else {
                    200
                },
                body: r.id.to_string(),
            },
            Err(e) => StoredAnswer {
                status: 409,
                body: e.to_string(),
            },
        }
    }
}

/// The reservation id a decided or replayed outcome names.
pub fn outcome_id(outcome: &CommandOutcome) -> Option<String> {
    match outcome {
        CommandOutcome::Decided(Ok(r)) => Some(r.id.to_string()),
        CommandOutcome::Replayed(a) if a.status < 300 => Some(a.body.clone()),
        _ => None,
    }
}

/// An event as its store holds it: its counters and its reservation rows, read by the
/// harness straight from the store's tables with a query of its own (not through the
/// store's audit statement), for [`assert_consistent`] to recount.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event's capacity.
    pub capacity: i64,
    /// The `purchased` counter.
    pub purchased_counter: i64,
    /// The `held` counter.
    pub held_counter: i64,
    /// Every reservation of the event.
    pub rows: Vec<StoredRow>,
    /// Its named quotas: id, capacity, `purchased` and `held` counters.
    pub quotas: Vec<(i64, i64, i64, i64)>,
    /// Its ticket types: id, the quotas it draws from, `purchased` and `held` counters.
    pub types: Vec<(i64, Vec<i64>, i64, i64)>,
}

/// A reservation row of a [`StoredEvent`].
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// Its status, as stored.
    pub status: String,
    /// Its tickets.
    pub quantity: i64,
    /// When its hold ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// Its lines: ticket type and tickets.
    pub lines: Vec<(i64, i64)>,
}

/// Recounts every named quota (the lines of the types that draw from it) and every type of
/// `stored` at `now`, and asserts their counters equal the recount and no quota is oversold.
fn assert_inventory(stored: &StoredEvent, now: DateTime<Utc>) {
    let active = |r: &StoredRow| r.status == "reserved" && r.expires_at.is_some_and(|at| at > now);
    // Every named quota: the lines of the types that draw from it.
    for &(id, capacity, purchased, held) in &stored.quotas {
        let drawing: Vec<i64> = stored
            .types
            .iter()
            .filter(|t| t.1.contains(&id))
            .map(|t| t.0)
            .collect();
        let tickets = |keep: &dyn Fn(&StoredRow) -> bool| -> i64 {
            stored
                .rows
                .iter()
                .filter(|r| keep(r))
                .flat_map(|r| r.lines.iter())
                .filter(|(t, _)| drawing.contains(t))
                .map(|(_, n)| n)
                .sum()
        };
        let (bought, holding, live) = (
            tickets(&|r| r.status == "purchased"),
            tickets(&|r| r.status == "reserved"),
            tickets(&active),
        );
        assert_eq!(
            (purchased, held),
            (bought, holding),
            "quota {id}: counters differ from the lines"
        );
        assert!(
            bought + live <= capacity,
            "quota {id} oversold: {bought} + {live} > {capacity}"
        );
    }
    for (id, _, purchased, held) in &stored.types {
        let tickets = |status: &str| -> i64 {
            stored
                .rows
                .iter()
                .filter(|r| r.status == status)
                .flat_map(|r| r.lines.iter())
                .filter(|(t, _)| t == id)
                .map(|(_, n)| n)
                .sum()
        };
        assert_eq!(
            (*purchased, *held),
            (tickets("purchased"), tickets("reserved")),
            "ticket type {id}: counters differ from the lines"
        );
    }
}

/// Recounts the event's rows as the harness read them, at `t`'s time, and asserts that the
/// counters equal the recount, that `purchased + active <= capacity` holds on the rows, and
/// that the store's own audit (`ticketctl events check`) agrees. Returns the recount.
pub fn assert_consistent<H: Harness>(h: &H, t: &Ticketing, event: EventId) -> EventAudit {
    let now = t.clock().now();
    let stored = h.stored_event(event);
    let sum = |keep: &dyn Fn(&StoredRow) -> bool| -> i64 {
        stored
            .rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.quantity)
            .sum()
    };
    let narrow = |n: i64| i32::try_from(n).expect("a 32-bit counter");
    let recount = EventAudit {
        capacity: narrow(stored.capacity),
        purchased_counter: narrow(stored.purchased_counter),
        held_counter: narrow(stored.held_counter),
        purchased_tickets: sum(&|r| r.status == "purchased"),
        reserved_tickets: sum(&|r| r.status == "reserved"),
        active_tickets: sum(&|r| r.status == "reserved" && r.expires_at.is_some_and(|at| at > now)),
        quotas: Vec::new(),
        types: Vec::new(),
    };
    assert_eq!(
        (stored.purchased_counter, stored.held_counter),
        (recount.purchased_tickets, recount.reserved_tickets),
        "counters (purchased, held) differ from the rows: {recount:?}"
    );
    assert!(
        recount.purchased_tickets + recount.active_tickets <= stored.capacity,
        "oversold: {recount:?}"
    );
    assert_inventory(&stored, now);
    let audit = t.audit_event(event).unwrap();
    assert!(
        audit.counters_match() && audit.within_capacity(),
        "the store's own audit fails: {audit:?}"
    );
    assert_eq!(
        (audit.quotas.len(), audit.types.len()),
        (stored.quotas.len(), stored.types.len()),
        "the store's audit misses quotas or types"
    );
    // The audit reads the clock again: only the active tickets may differ on a live clock.
    assert_eq!(
        EventAudit {
            active_tickets: recount.active_tickets,
            quotas: Vec::new(),
            types: Vec::new(),
            ..audit
        },
        recount,
        "the store's own audit disagrees with the recount"
    );
    recount
}
