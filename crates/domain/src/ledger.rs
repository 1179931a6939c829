//! The decision for a batch of requests, taken inside the transaction that has locked their
//! events and reservations: pure, apart from asking the store (through a callback) to release
//! an event's past-due holds when the counters would refuse a reserve.
//!
//! Requests are decided in arrival order exactly as serving them one at a time would decide
//! them (the property test below checks this against a model that counts rows, as the seed
//! design did). Reserves are all or nothing; a cancel or an expiry earlier in the batch frees
//! tickets for the reserves after it; of two purchases of one hold the first wins.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::availability::release_limit;
use crate::command::{Operation, Reserve};
use crate::error::DomainError;
use crate::ids::{EventId, ReservationId};
use crate::reservation::{decide_transition, Reservation, ReservationStatus, TransitionDecision};
use crate::store::{Changes, LockedEvent, ReleasedHold, StatusChange};
use crate::ticketing::HoldTtl;
use crate::validation::{Customer, PaymentReference};

/// An event's counters as the batch has changed them so far, in tickets.
#[derive(Debug, Clone, Copy)]
struct Counts {
    capacity: i64,
    purchased: i64,
    held: i64,
    /// Whether the store held tickets of this event when the batch locked it: only those can
    /// be past due (a hold granted in this batch is not).
    may_have_past_due: bool,
}

impl Counts {
    fn available(self) -> i64 {
        self.capacity - self.purchased - self.held
    }
}

/// The settings a batch is decided with.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// When the batch is decided: one instant for every request in it.
    pub now: DateTime<Utc>,
    /// How long a new hold lasts.
    pub hold_ttl: HoldTtl,
    /// The most tickets one customer may hold or have bought per event, if limited.
    pub customer_limit: Option<u32>,
}

/// What a batch knows and has decided so far.
#[derive(Debug)]
pub struct Ledger {
    rules: Rules,
    events: BTreeMap<EventId, Counts>,
    reservations: HashMap<ReservationId, Reservation>,
    usage: HashMap<(EventId, Customer), i64>,
    /// Tickets the batch's reserves not yet decided still ask for, per event.
    demand: HashMap<EventId, i64>,
    /// Events whose past-due holds were released in this batch (at most once per event).
    released: BTreeSet<EventId>,
    /// Holds this batch decided to expire that a release then marked in the store already.
    expired_by_release: HashSet<ReservationId>,
    changes: Changes,
}

impl Ledger {
    /// Starts a batch of `operations` from what the transaction locked and read: the events'
    /// counters, the reservations the operations name, and each (event, customer) pair's
    /// purchased and active tickets.
    pub fn new<'a>(
        rules: Rules,
        operations: impl IntoIterator<Item = &'a Operation>,
        events: &[LockedEvent],
        reservations: Vec<Reservation>,
        usage: Vec<(EventId, Customer, i64)>,
    ) -> Self {
        let mut demand: HashMap<EventId, i64> = HashMap::new();
        for op in operations {
            if let Operation::Reserve(r) = op {
                *demand.entry(r.event).or_default() += r.quantity.tickets();
            }
        }
        Self {
            rules,
            events: events
                .iter()
                .map(|e| {
                    let counts = Counts {
                        capacity: i64::from(e.capacity),
                        purchased: i64::from(e.purchased),
                        held: i64::from(e.held),
                        may_have_past_due: e.held > 0,
                    };
                    (e.id, counts)
                })
                .collect(),
            reservations: reservations.into_iter().map(|r| (r.id, r)).collect(),
            usage: usage
                .into_iter()
                .map(|(event, customer, tickets)| ((event, customer), tickets))
                .collect(),
            demand,
            released: BTreeSet::new(),
            expired_by_release: HashSet::new(),
            changes: Changes::default(),
        }
    }

    /// Decides the next operation. `release(event, limit)` must mark up to `limit` of the
    /// event's past-due holds `expired` in the store and return them; it is called at most
    /// once per event, only when a reserve would otherwise be refused.
    ///
    /// # Errors
    /// Only the error of `release`, unchanged.
    pub fn decide<E>(
        &mut self,
        operation: &Operation,
        release: &mut impl FnMut(EventId, u32) -> Result<Vec<ReleasedHold>, E>,
    ) -> Result<Result<Reservation, DomainError>, E> {
        Ok(match operation {
            Operation::Reserve(reserve) => return self.reserve(reserve, release),
            Operation::Purchase(purchase) => self.transition(
                purchase.id,
                ReservationStatus::Purchased,
                purchase.payment_reference.as_ref(),
            ),
            Operation::Cancel(cancel) => {
                self.transition(cancel.id, ReservationStatus::Canceled, None)
            }
        })
    }

    /// Everything the batch must write.
    pub fn into_changes(mut self) -> Changes {
        let skip = self.expired_by_release;
        self.changes.statuses.retain(|c| !skip.contains(&c.id()));
        self.changes.counters.retain(|_, delta| !delta.is_zero());
        self.changes
    }

    fn reserve<E>(
        &mut self,
        request: &Reserve,
        release: &mut impl FnMut(EventId, u32) -> Result<Vec<ReleasedHold>, E>,
    ) -> Result<Result<Reservation, DomainError>, E> {
        let event = request.event;
        let tickets = request.quantity.tickets();
        let demand = self.demand.get(&event).copied().unwrap_or(tickets);
        if let Some(left) = self.demand.get_mut(&event) {
            *left -= tickets;
        }
        let Some(counts) = self.events.get(&event).copied() else {
            return Ok(Err(DomainError::EventNotFound));
        };
        if let (Some(limit), Some(customer)) = (self.rules.customer_limit, &request.customer) {
            let used = self
                .usage
                .get(&(event, customer.clone()))
                .copied()
                .unwrap_or(0);
            if used + tickets > i64::from(limit) {
                return Ok(Err(DomainError::CustomerLimitReached));
            }
        }
        if tickets > counts.available() && counts.may_have_past_due && self.released.insert(event) {
            let released = release(event, release_limit(demand, counts.available()))?;
            self.absorb(released);
        }
        let now = self.rules.now;
        let Some(counts) = self.events.get_mut(&event) else {
            return Ok(Err(DomainError::EventNotFound));
        };
        if tickets > counts.available() {
            return Ok(Err(DomainError::SoldOut));
        }
        counts.held += tickets;
        self.changes.counters.entry(event).or_default().held += tickets;
        if let Some(customer) = &request.customer {
            *self.usage.entry((event, customer.clone())).or_default() += tickets;
        }
        let hold = Reservation {
            id: ReservationId::generate(now, event),
            event_id: event,
            status: ReservationStatus::Reserved,
            // At most the configured maximum, far below i32::MAX.
            quantity: i32::try_from(request.quantity.get()).unwrap_or(i32::MAX),
            customer: request.customer.as_ref().map(|c| c.as_str().to_owned()),
            purchased_at: None,
            expires_at: Some(now + self.rules.hold_ttl.get()),
            payment_reference: None,
            created_at: now,
            updated_at: now,
        };
        self.changes.holds.push(hold.clone());
        Ok(Ok(hold))
    }

    /// Takes in the holds a release marked `expired`: their tickets are free again.
    fn absorb(&mut self, released: Vec<ReleasedHold>) {
        for hold in released {
            if let Some(row) = self.reservations.get_mut(&hold.id) {
                if row.status == ReservationStatus::Expired {
                    // This batch expired it already (a purchase or cancel found it past due)
                    // and counted its tickets free; the store has now written that too.
                    self.expired_by_release.insert(hold.id);
                    continue;
                }
                row.status = ReservationStatus::Expired;
                row.updated_at = self.rules.now;
            }
            self.add(hold.event, -i64::from(hold.quantity), 0);
        }
    }

    fn add(&mut self, event: EventId, held: i64, purchased: i64) {
        if let Some(counts) = self.events.get_mut(&event) {
            counts.held += held;
            counts.purchased += purchased;
        }
        let delta = self.changes.counters.entry(event).or_default();
        delta.held += held;
        delta.purchased += purchased;
    }

    fn transition(
        &mut self,
        id: ReservationId,
        target: ReservationStatus,
        reference: Option<&PaymentReference>,
    ) -> Result<Reservation, DomainError> {
        let now = self.rules.now;
        let Some(row) = self.reservations.get_mut(&id) else {
            return Err(DomainError::ReservationNotFound);
        };
        match decide_transition(row.status, row.expires_at, now, target) {
            TransitionDecision::Refuse(err) => Err(err),
            TransitionDecision::ExpireThenRefuse => {
                row.status = ReservationStatus::Expired;
                row.updated_at = now;
                let (event, tickets) = (row.event_id, row.tickets());
                self.changes.statuses.push(StatusChange::Expired { id });
                self.add(event, -tickets, 0);
                Err(DomainError::InvalidOrExpired)
            }
            TransitionDecision::Proceed => {
                row.status = target;
                row.updated_at = now;
                if target == ReservationStatus::Purchased {
                    row.purchased_at = Some(now);
                    row.payment_reference = reference.map(|r| r.as_str().to_owned());
                }
                let done = row.clone();
                let tickets = done.tickets();
                if target == ReservationStatus::Purchased {
                    self.changes.statuses.push(StatusChange::Purchased {
                        id,
                        payment_reference: done.payment_reference.clone(),
                    });
                    self.add(done.event_id, -tickets, tickets);
                } else {
                    self.changes.statuses.push(StatusChange::Canceled { id });
                    self.add(done.event_id, -tickets, 0);
                    if let Some(customer) = done.customer.as_deref().map(Customer::parse) {
                        if let Some(used) = customer
                            .ok()
                            .and_then(|c| self.usage.get_mut(&(done.event_id, c)))
                        {
                            *used -= tickets;
                        }
                    }
                }
                Ok(done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use proptest::prelude::*;

    use super::*;
    use crate::command::{Cancel, Purchase};
    use crate::validation::Quantity;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn rules(customer_limit: Option<u32>) -> Rules {
        Rules {
            now: at(0),
            hold_ttl: HoldTtl::from_seconds(600).unwrap_or_else(|| unreachable!()),
            customer_limit,
        }
    }

    fn reserve(event: i64, quantity: u32, customer: Option<&str>) -> Operation {
        Operation::Reserve(Reserve {
            event: EventId::new(event),
            quantity: Quantity::new(i64::from(quantity), 100).unwrap_or(Quantity::ONE),
            customer: customer.and_then(|c| Customer::parse(c).ok()),
        })
    }

    fn locked(id: i64, capacity: i32, purchased: i32, held: i32) -> LockedEvent {
        LockedEvent {
            id: EventId::new(id),
            capacity,
            purchased,
            held,
        }
    }

    fn no_release(_: EventId, _: u32) -> Result<Vec<ReleasedHold>, Infallible> {
        panic!("must not release")
    }

    fn kinds(outcomes: &[Result<Reservation, DomainError>]) -> Vec<Result<i32, DomainError>> {
        outcomes
            .iter()
            .map(|o| o.as_ref().map(|r| r.quantity).map_err(Clone::clone))
            .collect()
    }

    fn decide_all(
        ledger: &mut Ledger,
        ops: &[Operation],
        release: &mut impl FnMut(EventId, u32) -> Result<Vec<ReleasedHold>, Infallible>,
    ) -> Vec<Result<Reservation, DomainError>> {
        ops.iter()
            .map(|op| ledger.decide(op, release).unwrap_or_else(|e| match e {}))
            .collect()
    }

    #[test]
    fn reserves_are_granted_in_arrival_order_each_all_or_nothing() {
        let ops = [
            reserve(1, 2, None),
            reserve(1, 2, None),
            reserve(1, 1, None),
            reserve(1, 1, None),
        ];
        let mut ledger = Ledger::new(rules(None), &ops, &[locked(1, 3, 0, 0)], vec![], vec![]);
        let outcomes = decide_all(&mut ledger, &ops, &mut no_release);
        assert_eq!(
            kinds(&outcomes),
            vec![
                Ok(2),
                Err(DomainError::SoldOut),
                Ok(1),
                Err(DomainError::SoldOut)
            ]
        );
        let changes = ledger.into_changes();
        assert_eq!(changes.holds.len(), 2);
        assert_eq!(changes.counters[&EventId::new(1)].held, 3);
        let hold = outcomes[0].as_ref().unwrap_or_else(|_| unreachable!());
        assert_eq!(hold.expires_at, Some(at(600)));
        assert_eq!(hold.id.lane_tag(), EventId::new(1).lane_tag());
    }

    #[test]
    fn an_unknown_event_is_refused_without_touching_the_others() {
        let ops = [reserve(9, 1, None), reserve(1, 1, None)];
        let mut ledger = Ledger::new(rules(None), &ops, &[locked(1, 1, 0, 0)], vec![], vec![]);
        let outcomes = decide_all(&mut ledger, &ops, &mut no_release);
        assert_eq!(
            kinds(&outcomes),
            vec![Err(DomainError::EventNotFound), Ok(1)]
        );
    }

    #[test]
    fn past_due_holds_are_released_once_and_only_when_the_counters_refuse() {
        // Capacity 4, all held, 3 tickets of it by past-due holds.
        let ops = [
            reserve(1, 2, None),
            reserve(1, 1, None),
            reserve(1, 1, None),
        ];
        let mut ledger = Ledger::new(rules(None), &ops, &[locked(1, 4, 0, 4)], vec![], vec![]);
        let mut calls = Vec::new();
        let outcomes = decide_all(&mut ledger, &ops, &mut |event, limit| {
            calls.push((event, limit));
            Ok(vec![
                ReleasedHold {
                    id: ReservationId::generate(at(-700), event),
                    event,
                    quantity: 2,
                },
                ReleasedHold {
                    id: ReservationId::generate(at(-700), event),
                    event,
                    quantity: 1,
                },
            ])
        });
        assert_eq!(calls, vec![(EventId::new(1), 1_000)]);
        assert_eq!(
            kinds(&outcomes),
            vec![Ok(2), Ok(1), Err(DomainError::SoldOut)]
        );
        // -3 released, +3 granted: nothing to write on the event.
        assert!(ledger.into_changes().counters.is_empty());
    }

    #[test]
    fn the_customer_limit_counts_earlier_grants_of_the_same_batch() {
        let ops = [
            reserve(1, 2, Some("acct-1")),
            reserve(1, 2, Some("acct-1")),
            reserve(1, 1, Some("acct-1")),
            reserve(1, 3, Some("acct-2")),
            reserve(1, 5, None),
        ];
        let usage = vec![(
            EventId::new(1),
            Customer::parse("acct-2").unwrap_or_else(|_| unreachable!()),
            1,
        )];
        let mut ledger = Ledger::new(rules(Some(3)), &ops, &[locked(1, 100, 0, 0)], vec![], usage);
        let outcomes = decide_all(&mut ledger, &ops, &mut no_release);
        assert_eq!(
            kinds(&outcomes),
            vec![
                Ok(2),
                Err(DomainError::CustomerLimitReached),
                Ok(1),
                Err(DomainError::CustomerLimitReached),
                Ok(5)
            ]
        );
    }

    fn row(event: i64, status: ReservationStatus, quantity: i32, expires: i64) -> Reservation {
        Reservation {
            id: ReservationId::generate(at(-1), EventId::new(event)),
            event_id: EventId::new(event),
            status,
            quantity,
            customer: None,
            purchased_at: (status == ReservationStatus::Purchased).then(|| at(-1)),
            expires_at: Some(at(expires)),
            payment_reference: None,
            created_at: at(-1),
            updated_at: at(-1),
        }
    }

    #[test]
    fn a_cancel_frees_its_tickets_for_the_reserves_after_it() {
        let hold = row(1, ReservationStatus::Reserved, 2, 60);
        let ops = [
            reserve(1, 2, None),
            Operation::Cancel(Cancel { id: hold.id }),
            reserve(1, 2, None),
        ];
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 2, 0, 2)],
            vec![hold.clone()],
            vec![],
        );
        let outcomes = decide_all(&mut ledger, &ops, &mut |_, _| Ok(vec![]));
        assert_eq!(
            kinds(&outcomes),
            vec![Err(DomainError::SoldOut), Ok(2), Ok(2)]
        );
        let changes = ledger.into_changes();
        assert_eq!(
            changes.statuses,
            vec![StatusChange::Canceled { id: hold.id }]
        );
        // -2 canceled, +2 granted: nothing to write on the event.
        assert!(changes.counters.is_empty());
    }

    #[test]
    fn the_first_purchase_of_a_hold_wins_and_a_past_due_one_is_expired_once() {
        let live = row(1, ReservationStatus::Reserved, 3, 60);
        let due = row(1, ReservationStatus::Reserved, 1, -5);
        let buy = |id| {
            Operation::Purchase(Purchase {
                id,
                payment_reference: PaymentReference::parse("pay_1").ok().flatten(),
            })
        };
        let ops = [buy(live.id), buy(live.id), buy(due.id), buy(due.id)];
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 4, 0, 4)],
            vec![live.clone(), due.clone()],
            vec![],
        );
        let outcomes = decide_all(&mut ledger, &ops, &mut no_release);
        assert_eq!(
            kinds(&outcomes),
            vec![
                Ok(3),
                Err(DomainError::AlreadyPurchased),
                Err(DomainError::InvalidOrExpired),
                Err(DomainError::InvalidOrExpired)
            ]
        );
        let bought = outcomes[0].as_ref().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            (
                bought.status,
                bought.purchased_at,
                bought.payment_reference.as_deref()
            ),
            (ReservationStatus::Purchased, Some(at(0)), Some("pay_1"))
        );
        let changes = ledger.into_changes();
        assert_eq!(changes.statuses.len(), 2);
        let delta = changes.counters[&EventId::new(1)];
        assert_eq!((delta.held, delta.purchased), (-4, 3));
    }

    #[test]
    fn a_hold_expired_by_a_purchase_then_released_is_counted_once() {
        let due = row(1, ReservationStatus::Reserved, 2, -5);
        let ops = [
            Operation::Purchase(Purchase {
                id: due.id,
                payment_reference: None,
            }),
            reserve(1, 3, None),
        ];
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 3, 0, 3)],
            vec![due.clone()],
            vec![],
        );
        let released = ReleasedHold {
            id: due.id,
            event: EventId::new(1),
            quantity: 2,
        };
        let outcomes = decide_all(&mut ledger, &ops, &mut |_, _| Ok(vec![released]));
        // The purchase freed 2; a 3-ticket reserve needs the third, which no release frees.
        assert_eq!(
            kinds(&outcomes),
            vec![
                Err(DomainError::InvalidOrExpired),
                Err(DomainError::SoldOut)
            ]
        );
        let changes = ledger.into_changes();
        assert!(changes.statuses.is_empty(), "the store marked it already");
        assert_eq!(changes.counters[&EventId::new(1)].held, -2);
    }

    // ---- the property test: a batch decides as serving one request at a time would, on a
    // model that knows nothing of counters or lazy release: it counts rows, as the availability
    // rule is written (`crate::availability`).

    #[derive(Debug, Clone)]
    struct ModelRow {
        id: ReservationId,
        event: i64,
        status: ReservationStatus,
        quantity: i64,
        customer: Option<&'static str>,
        expires: i64,
    }

    const CUSTOMERS: [Option<&str>; 3] = [None, Some("a"), Some("b")];

    fn model_serve(
        rows: &mut Vec<ModelRow>,
        capacities: &[i64],
        limit: Option<u32>,
        op: &Operation,
    ) -> Result<i64, DomainError> {
        let active_or_bought = |r: &ModelRow| {
            r.status == ReservationStatus::Purchased
                || (r.status == ReservationStatus::Reserved && r.expires > 0)
        };
        match op {
            Operation::Reserve(r) => {
                let e = r.event.get();
                let Some(capacity) = usize::try_from(e)
                    .ok()
                    .and_then(|i| capacities.get(i))
                    .copied()
                else {
                    return Err(DomainError::EventNotFound);
                };
                let q = r.quantity.tickets();
                if let (Some(limit), Some(c)) = (limit, &r.customer) {
                    let used: i64 = rows
                        .iter()
                        .filter(|x| x.event == e && x.customer == Some(c.as_str()))
                        .filter(|x| active_or_bought(x))
                        .map(|x| x.quantity)
                        .sum();
                    if used + q > i64::from(limit) {
                        return Err(DomainError::CustomerLimitReached);
                    }
                }
                let taken: i64 = rows
                    .iter()
                    .filter(|x| x.event == e && active_or_bought(x))
                    .map(|x| x.quantity)
                    .sum();
                if taken + q > capacity {
                    return Err(DomainError::SoldOut);
                }
                rows.push(ModelRow {
                    id: ReservationId::generate(at(0), r.event),
                    event: e,
                    status: ReservationStatus::Reserved,
                    quantity: q,
                    customer: CUSTOMERS
                        .iter()
                        .flatten()
                        .find(|c| Some(**c) == r.customer.as_ref().map(Customer::as_str))
                        .copied(),
                    expires: 600,
                });
                Ok(q)
            }
            Operation::Purchase(Purchase { id, .. }) | Operation::Cancel(Cancel { id }) => {
                let target = if matches!(op, Operation::Purchase(_)) {
                    ReservationStatus::Purchased
                } else {
                    ReservationStatus::Canceled
                };
                let Some(row) = rows.iter_mut().find(|x| x.id == *id) else {
                    return Err(DomainError::ReservationNotFound);
                };
                match row.status {
                    ReservationStatus::Purchased => Err(DomainError::AlreadyPurchased),
                    ReservationStatus::Reserved if row.expires > 0 => {
                        row.status = target;
                        Ok(row.quantity)
                    }
                    ReservationStatus::Reserved => {
                        row.status = ReservationStatus::Expired;
                        Err(DomainError::InvalidOrExpired)
                    }
                    _ => Err(DomainError::InvalidOrExpired),
                }
            }
        }
    }

    fn to_reservation(r: &ModelRow) -> Reservation {
        Reservation {
            id: r.id,
            event_id: EventId::new(r.event),
            status: r.status,
            quantity: i32::try_from(r.quantity).unwrap_or(1),
            customer: r.customer.map(str::to_owned),
            purchased_at: (r.status == ReservationStatus::Purchased).then(|| at(-1)),
            expires_at: Some(at(r.expires)),
            payment_reference: None,
            created_at: at(-1),
            updated_at: at(-1),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn a_batch_decides_exactly_as_serving_its_requests_one_at_a_time(
            capacities in proptest::collection::vec(1..12i64, 1..3),
            existing in proptest::collection::vec((0..2i64, 0..4usize, 1..4i64, 0..3usize, prop_oneof![Just(-30i64), Just(60i64)]), 0..10),
            requests in proptest::collection::vec((0..3usize, 0..3i64, 1..4u32, 0..3usize, 0..12usize), 0..25),
            limit in prop_oneof![Just(None), (1..6u32).prop_map(Some)],
        ) {
            // The store before the batch: rows that fit the capacity (the invariant held).
            let mut rows: Vec<ModelRow> = Vec::new();
            for (event, status, quantity, customer, expires) in existing {
                let Some(&capacity) = usize::try_from(event).ok().and_then(|i| capacities.get(i)) else { continue };
                let status = ReservationStatus::ALL[status];
                let counted: i64 = rows.iter()
                    .filter(|r| r.event == event && matches!(r.status, ReservationStatus::Purchased | ReservationStatus::Reserved))
                    .map(|r| r.quantity).sum();
                if matches!(status, ReservationStatus::Purchased | ReservationStatus::Reserved) && counted + quantity > capacity {
                    continue;
                }
                rows.push(ModelRow {
                    id: ReservationId::generate(at(-1), EventId::new(event)),
                    event, status, quantity, customer: CUSTOMERS[customer], expires,
                });
            }
            let unknown = ReservationId::generate(at(0), EventId::new(0));
            let ops: Vec<Operation> = requests.iter().map(|&(kind, event, quantity, customer, pick)| {
                let target = rows.get(pick).map_or(unknown, |r| r.id);
                match kind {
                    0 => reserve(event, quantity, CUSTOMERS[customer]),
                    1 => Operation::Purchase(Purchase { id: target, payment_reference: None }),
                    _ => Operation::Cancel(Cancel { id: target }),
                }
            }).collect();

            // The batch: counters as a store keeps them (past-due holds still counted).
            let events: Vec<LockedEvent> = capacities.iter().enumerate().map(|(i, &capacity)| {
                let sum = |status| rows.iter().filter(|r| usize::try_from(r.event).ok() == Some(i) && r.status == status).map(|r| r.quantity).sum::<i64>();
                locked(i64::try_from(i).unwrap_or(0), i32::try_from(capacity).unwrap_or(1),
                    i32::try_from(sum(ReservationStatus::Purchased)).unwrap_or(0),
                    i32::try_from(sum(ReservationStatus::Reserved)).unwrap_or(0))
            }).collect();
            let usage: Vec<(EventId, Customer, i64)> = (0..capacities.len()).flat_map(|e| {
                let rows = &rows;
                CUSTOMERS.iter().flatten().filter_map(move |c| {
                    let used: i64 = rows.iter()
                        .filter(|r| usize::try_from(r.event).ok() == Some(e) && r.customer == Some(*c))
                        .filter(|r| r.status == ReservationStatus::Purchased || (r.status == ReservationStatus::Reserved && r.expires > 0))
                        .map(|r| r.quantity).sum();
                    Some((EventId::new(i64::try_from(e).ok()?), Customer::parse(c).ok()?, used))
                })
            }).collect();
            let mut store_rows = rows.clone();
            let mut ledger = Ledger::new(rules(limit), &ops, &events, rows.iter().map(to_reservation).collect(), usage);
            let outcomes: Vec<_> = ops.iter().map(|op| {
                ledger.decide(op, &mut |event: EventId, limit: u32| -> Result<Vec<ReleasedHold>, Infallible> {
                    let mut due: Vec<&mut ModelRow> = store_rows.iter_mut()
                        .filter(|r| r.event == event.get() && r.status == ReservationStatus::Reserved && r.expires <= 0)
                        .collect();
                    due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    Ok(due.into_iter().map(|r| {
                        r.status = ReservationStatus::Expired;
                        ReleasedHold { id: r.id, event, quantity: i32::try_from(r.quantity).unwrap_or(1) }
                    }).collect())
                }).unwrap_or_else(|e| match e {})
            }).collect();

            // Serve the same requests one at a time on the model.
            let mut model = rows.clone();
            for (op, outcome) in ops.iter().zip(&outcomes) {
                let expected = model_serve(&mut model, &capacities, limit, op);
                let got = outcome.as_ref().map(Reservation::tickets).map_err(Clone::clone);
                prop_assert_eq!(got, expected, "{:?}", op);
            }

            // Applied to the store, the changes leave counters equal to a recount of the rows,
            // and the invariant holds.
            let changes = ledger.into_changes();
            let mut after = store_rows;
            for hold in &changes.holds {
                after.push(ModelRow {
                    id: hold.id, event: hold.event_id.get(), status: ReservationStatus::Reserved,
                    quantity: hold.tickets(), customer: None, expires: 600,
                });
            }
            for change in &changes.statuses {
                let row = after.iter_mut().find(|r| r.id == change.id());
                prop_assert!(row.as_ref().is_some_and(|r| r.status == ReservationStatus::Reserved), "{:?}", change);
                if let Some(row) = row {
                    row.status = match change {
                        StatusChange::Purchased { .. } => ReservationStatus::Purchased,
                        StatusChange::Canceled { .. } => ReservationStatus::Canceled,
                        StatusChange::Expired { .. } => ReservationStatus::Expired,
                    };
                }
            }
            for e in &events {
                let delta = changes.counters.get(&e.id).copied().unwrap_or_default();
                let sum = |keep: &dyn Fn(&ModelRow) -> bool| after.iter().filter(|r| r.event == e.id.get() && keep(r)).map(|r| r.quantity).sum::<i64>();
                let purchased = sum(&|r| r.status == ReservationStatus::Purchased);
                prop_assert_eq!(i64::from(e.purchased) + delta.purchased, purchased);
                prop_assert_eq!(i64::from(e.held) + delta.held, sum(&|r| r.status == ReservationStatus::Reserved));
                let active = sum(&|r| r.status == ReservationStatus::Reserved && r.expires > 0);
                prop_assert!(purchased + active <= i64::from(e.capacity));
            }
        }
    }

    #[test]
    fn release_limit_covers_the_whole_remaining_demand() {
        // 3,000 single-ticket reserves on a full event: one release of at least 3,000.
        let ops: Vec<Operation> = (0..3_000).map(|_| reserve(1, 1, None)).collect();
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 5_000, 0, 5_000)],
            vec![],
            vec![],
        );
        let mut asked = Vec::new();
        let _ = decide_all(&mut ledger, &ops, &mut |_, limit| {
            asked.push(limit);
            Ok(vec![])
        });
        assert_eq!(asked, vec![3_000]);
    }
}
