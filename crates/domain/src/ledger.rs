//! The decision for a batch of requests, taken inside the transaction that has locked their
//! events and reservations: pure, apart from asking the store (through a callback) to release
//! an event's past-due holds when the counters would refuse a reserve.
//!
//! Requests are decided in arrival order exactly as serving them one at a time would decide
//! them (the property test below checks this against a model that counts rows per quota, as
//! the seed design did). Reserves are all or nothing, over every quota their tickets draw
//! from; a cancel, a release or an expiry earlier in the batch frees tickets for the reserves
//! after it; of two purchases of one hold the first wins.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::availability::release_limit;
use crate::command::{Extend, Operation, Release, ReleasePart, Reserve};
use crate::error::{DomainError, Shortfall, StoreError};
use crate::ids::{EventId, QuotaId, ReservationId, SeatId, TicketTypeId};
use crate::inventory::{Inventory, Line, LineRequest, TicketType};
use crate::outbox::{push_once, Message, MessageKind};
use crate::reservation::{
    decide_hold_change, decide_transition, Reservation, ReservationStatus, TransitionDecision,
};
use crate::seating::{HeldSeat, Holder, SeatMap, SeatRequest};
use crate::store::{
    Changes, CounterDelta, HoldChange, LockedEvent, ReleasedHold, SeatTaken, StatusChange, TypeOf,
};
use crate::ticketing::HoldTtl;
use crate::validation::{Customer, PaymentReference, Quantity};

/// A pool of tickets: an event's root quota, or a named quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pool {
    Root(EventId),
    Quota(QuotaId),
}

/// A pool's counters as the batch has changed them so far, in tickets.
#[derive(Debug, Clone, Copy)]
struct Counts {
    capacity: i64,
    purchased: i64,
    held: i64,
}

impl Counts {
    fn available(self) -> i64 {
        self.capacity - self.purchased - self.held
    }
}

#[derive(Debug, Clone, Copy)]
struct EventState {
    /// Whether the event has ticket types: every reserve must name them.
    typed: bool,
    /// Whether it has a seating plan: every reserve must name seats.
    seated: bool,
    /// Whether the store held tickets of this event when the batch locked it: only those can
    /// be past due (a hold granted in this batch is not).
    may_have_past_due: bool,
}

/// The settings a batch is decided with.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// When the batch is decided: one instant for every request in it.
    pub now: DateTime<Utc>,
    /// How long a new hold lasts, and how far an extend reaches by default.
    pub hold_ttl: HoldTtl,
    /// The longest a hold may last from its creation, extends included.
    pub max_hold: TimeDelta,
    /// The most tickets one customer may hold or have bought per event, if limited.
    pub customer_limit: Option<u32>,
}

/// The past-due holds a release marked `expired`, and what the batch did not know yet about
/// the ticket types of their lines.
#[derive(Debug, Clone, Default)]
pub struct Released {
    /// The holds.
    pub holds: Vec<ReleasedHold>,
    /// The types of their lines and those types' quotas.
    pub inventory: Inventory,
}

/// What a batch knows and has decided so far.
#[derive(Debug)]
pub struct Ledger {
    rules: Rules,
    pools: BTreeMap<Pool, Counts>,
    events: BTreeMap<EventId, EventState>,
    types: HashMap<TicketTypeId, TicketType>,
    reservations: HashMap<ReservationId, Reservation>,
    usage: HashMap<(EventId, Customer), i64>,
    /// Tickets the batch's reserves not yet decided still ask for, per event.
    demand: HashMap<EventId, i64>,
    /// Events whose past-due holds were released in this batch (at most once per event).
    released: BTreeSet<EventId>,
    /// Holds this batch decided to expire that a release then marked in the store already.
    expired_by_release: HashSet<ReservationId>,
    /// The seat maps of the seated events, as the batch has changed them.
    seats: HashMap<EventId, SeatMap>,
    /// Each seat the batch touched: its holder in the store before the batch, and now.
    seat_log: BTreeMap<(EventId, SeatId), (Option<ReservationId>, Option<ReservationId>)>,
    changes: Changes,
}

/// At most how many past-due holds of a seated event a batch releases before it decides on
/// seats (their seats read free): all of them, in practice; a larger backlog is left to the
/// sweep, and its seats count as taken until then.
const SEAT_RELEASE_LIMIT: u32 = 100_000;

/// The 422 of a request's field.
fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Validation {
        field,
        message: message.into(),
    }
}

fn broken(message: String) -> DomainError {
    StoreError::internal(message).into()
}

impl Ledger {
    /// Starts a batch of `operations` from what the transaction locked and read: the events'
    /// counters, the ticket types the operations name (or the holds they name hold) with their
    /// quotas, the reservations the operations name, and each (event, customer) pair's
    /// purchased and active tickets.
    pub fn new<'a>(
        rules: Rules,
        operations: impl IntoIterator<Item = &'a Operation>,
        events: &[LockedEvent],
        inventory: Inventory,
        reservations: Vec<Reservation>,
        usage: Vec<(EventId, Customer, i64)>,
    ) -> Self {
        let mut demand: HashMap<EventId, i64> = HashMap::new();
        for op in operations {
            if let Operation::Reserve(r) = op {
                *demand.entry(r.event).or_default() += r.quantity.tickets();
            }
        }
        let mut ledger = Self {
            rules,
            pools: events
                .iter()
                .map(|e| {
                    let counts = Counts {
                        capacity: i64::from(e.capacity),
                        purchased: i64::from(e.purchased),
                        held: i64::from(e.held),
                    };
                    (Pool::Root(e.id), counts)
                })
                .collect(),
            events: events
                .iter()
                .map(|e| {
                    let state = EventState {
                        typed: e.typed,
                        seated: e.seats.is_some(),
                        may_have_past_due: e.held > 0,
                    };
                    (e.id, state)
                })
                .collect(),
            types: HashMap::new(),
            reservations: reservations.into_iter().map(|r| (r.id, r)).collect(),
            usage: usage
                .into_iter()
                .map(|(event, customer, tickets)| ((event, customer), tickets))
                .collect(),
            demand,
            released: BTreeSet::new(),
            expired_by_release: HashSet::new(),
            seats: HashMap::new(),
            seat_log: BTreeMap::new(),
            changes: Changes::default(),
        };
        ledger.learn(inventory);
        ledger
    }

    /// Gives the ledger the seat maps of the batch's seated events, at the seat versions the
    /// batch locked.
    #[must_use]
    pub fn with_seats(mut self, maps: Vec<SeatMap>) -> Self {
        self.seats = maps.into_iter().map(|m| (m.event, m)).collect();
        self
    }

    /// Takes in ticket types and quotas it did not know; what it knew stays as the batch has
    /// changed it.
    fn learn(&mut self, inventory: Inventory) {
        for t in inventory.types {
            self.types.entry(t.ticket_type.id).or_insert(t.ticket_type);
        }
        for q in inventory.quotas {
            self.pools.entry(Pool::Quota(q.id)).or_insert(Counts {
                capacity: i64::from(q.capacity),
                purchased: i64::from(q.counters.purchased),
                held: i64::from(q.counters.held),
            });
        }
    }

    /// Decides the next operation. `release(event, limit)` must mark up to `limit` of the
    /// event's past-due holds `expired` in the store and return them, with the ticket types of
    /// their lines; it is called at most once per event, only when a reserve would otherwise
    /// be refused.
    ///
    /// # Errors
    /// The error of `release`, unchanged; [`DomainError::Store`] when a hold's ticket type was
    /// not given to the ledger (the store's reads missed it).
    pub fn decide(
        &mut self,
        operation: &Operation,
        release: &mut impl FnMut(EventId, u32) -> Result<Released, DomainError>,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let (decided, kind) = match operation {
            Operation::Reserve(reserve) => (
                self.reserve(reserve, release),
                MessageKind::ReservationCreated,
            ),
            Operation::Purchase(purchase) => (
                self.settle(
                    purchase.id,
                    Settle::Purchase(purchase.payment_reference.as_ref()),
                ),
                MessageKind::ReservationPurchased,
            ),
            Operation::Cancel(cancel) => (
                self.settle(cancel.id, Settle::Cancel),
                MessageKind::ReservationCanceled,
            ),
            Operation::Extend(extend) => (self.extend(extend), MessageKind::ReservationExtended),
            Operation::Release(part) => (self.release_part(part), MessageKind::ReservationReleased),
        };
        if let Ok(Ok(done)) = &decided {
            let told = Message::of_hold(done.event_id, kind, done.id);
            self.changes.messages.push(told);
        }
        decided
    }

    /// Everything the batch must write.
    pub fn into_changes(self) -> Changes {
        self.into_parts().0
    }

    /// Everything the batch must write, and the seat maps as they will be once it is
    /// committed (at their new seat versions).
    pub fn into_parts(mut self) -> (Changes, Vec<SeatMap>) {
        let skip = self.expired_by_release;
        self.changes.statuses.retain(|c| !skip.contains(&c.id()));
        // Sold out: a hold of this batch took the last ticket.
        let mut took: Vec<EventId> = self.changes.holds.iter().map(|h| h.event_id).collect();
        took.sort_unstable();
        took.dedup();
        for event in took {
            if self
                .pools
                .get(&Pool::Root(event))
                .is_some_and(|c| c.available() <= 0)
            {
                let sold_out = Message::of_event(event, MessageKind::EventSoldOut);
                self.changes.messages.push(sold_out);
            }
        }
        self.changes.counters.retain(|_, delta| !delta.is_zero());
        self.changes.quota_counters.retain(|_, (_, d)| !d.is_zero());
        self.changes.type_counters.retain(|_, (_, d)| !d.is_zero());
        // Each seat's net change: a row inserted where the store had none, removed where it
        // has none left, or moved from one hold to another (never removed and inserted in one
        // batch, which a unique key checked row by row could refuse).
        for ((event, seat), (before, now)) in self.seat_log {
            match (before, now) {
                (None, Some(reservation)) => self.changes.seats_taken.push(SeatTaken {
                    event,
                    seat,
                    reservation,
                }),
                (Some(_), None) => self.changes.seats_freed.push((event, seat)),
                (Some(from), Some(to)) if from != to => self.changes.seats_moved.push((
                    SeatTaken {
                        event,
                        seat,
                        reservation: to,
                    },
                    from,
                )),
                _ => {}
            }
        }
        let maps = self.seats.into_values().collect();
        (self.changes, maps)
    }

    /// One more change of `event`'s seats.
    fn bump(&mut self, event: EventId) {
        *self.changes.seat_versions.entry(event).or_default() += 1;
        if let Some(map) = self.seats.get_mut(&event) {
            map.version += 1;
        }
    }

    /// Notes that `seats` of `event` now belong to `holder` (`None`: to no one).
    fn log_seats(&mut self, event: EventId, seats: &[SeatId], holder: Option<ReservationId>) {
        let map = self.seats.get(&event);
        for seat in seats {
            let before = map.and_then(|m| m.holder(*seat)).map(Holder::reservation);
            self.seat_log
                .entry((event, *seat))
                .or_insert((before, before))
                .1 = holder;
        }
    }

    /// The hold `id` of `event` gives back `seats`.
    fn free_seats(&mut self, event: EventId, id: ReservationId, seats: &[SeatId]) {
        if seats.is_empty() {
            return;
        }
        self.log_seats(event, seats, None);
        if let Some(map) = self.seats.get_mut(&event) {
            map.free(id, seats);
        }
        self.bump(event);
    }

    /// Moves `total` tickets of `lines` on every pool and type they count in (see [`shift`]),
    /// in the batch's counters too.
    fn shift(
        &mut self,
        event: EventId,
        total: i64,
        lines: &[Line],
        held: i64,
        purchased: i64,
    ) -> Result<(), DomainError> {
        let pools = &mut self.pools;
        shift(
            &mut self.changes,
            &self.types,
            Move {
                event,
                total,
                lines,
                held,
                purchased,
            },
            |pool, tickets| {
                if let Some(counts) = pools.get_mut(&pool) {
                    counts.held += held * tickets;
                    counts.purchased += purchased * tickets;
                }
            },
        )
    }

    /// The pools a reserve draws from, with the tickets it takes from each.
    fn draws(&self, event: EventId, total: i64, lines: &[LineRequest]) -> BTreeMap<Pool, i64> {
        let mut draws = BTreeMap::from([(Pool::Root(event), total)]);
        for line in lines {
            if let Some(rule) = self.types.get(&line.ticket_type) {
                for q in &rule.quotas {
                    *draws.entry(Pool::Quota(*q)).or_default() += line.quantity.tickets();
                }
            }
        }
        draws
    }

    fn fits(&self, draws: &BTreeMap<Pool, i64>) -> bool {
        draws.iter().all(|(pool, tickets)| {
            self.pools
                .get(pool)
                .is_some_and(|c| *tickets <= c.available())
        })
    }

    /// The tickets of `ticket_type` left: the least of its quotas' and its event's.
    fn type_available(&self, event: EventId, ticket_type: TicketTypeId) -> i64 {
        let available = |pool| self.pools.get(&pool).map_or(0, |c: &Counts| c.available());
        self.types.get(&ticket_type).map_or(0, |rule| {
            rule.quotas
                .iter()
                .map(|q| available(Pool::Quota(*q)))
                .fold(available(Pool::Root(event)), i64::min)
        })
    }

    /// Refuses what a reserve names wrongly: no types on a typed event, a type of another
    /// event, more of a type than its limit.
    fn check_lines(&self, request: &Reserve, state: EventState) -> Result<(), DomainError> {
        match (state.seated, request.seats.is_some()) {
            (true, false) => {
                return Err(invalid(
                    "seats",
                    "This event has assigned seating: name seats or ask for best_available.",
                ))
            }
            (false, true) => return Err(invalid("seats", "This event has no seating plan.")),
            (true, true) => return Ok(()),
            (false, false) => {}
        }
        if request.lines.is_empty() {
            return if state.typed {
                Err(invalid("ticket_type", "The ticket type field is required."))
            } else {
                Ok(())
            };
        }
        for line in &request.lines {
            let Some(rule) = self
                .types
                .get(&line.ticket_type)
                .filter(|t| t.event_id == request.event)
            else {
                return Err(invalid(
                    request.lines_field,
                    "The selected ticket type is invalid.",
                ));
            };
            if let Some(max) = rule.max_per_reservation {
                if line.quantity.get() > max {
                    return Err(invalid(
                        request.lines_field,
                        format!(
                            "At most {max} tickets of ticket type {} may be held at once.",
                            rule.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn reserve(
        &mut self,
        request: &Reserve,
        release: &mut impl FnMut(EventId, u32) -> Result<Released, DomainError>,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let event = request.event;
        let tickets = request.quantity.tickets();
        let demand = self.demand.get(&event).copied().unwrap_or(tickets);
        if let Some(left) = self.demand.get_mut(&event) {
            *left -= tickets;
        }
        let Some(state) = self.events.get(&event).copied() else {
            return Ok(Err(DomainError::EventNotFound));
        };
        if let Err(refused) = self.check_lines(request, state) {
            return Ok(Err(refused));
        }
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
        if let Some(wanted) = &request.seats {
            return self.reserve_seats(request, wanted, release);
        }
        let draws = self.draws(event, tickets, &request.lines);
        if !self.fits(&draws) && state.may_have_past_due && self.released.insert(event) {
            let root = self
                .pools
                .get(&Pool::Root(event))
                .map_or(0, |c| c.available());
            let released = release(event, release_limit(demand, root))?;
            self.absorb(released)?;
        }
        if !self.fits(&draws) {
            if request.lines.is_empty() {
                return Ok(Err(DomainError::SoldOut));
            }
            let short = request
                .lines
                .iter()
                .filter_map(|line| {
                    let left = self.type_available(event, line.ticket_type);
                    let over = self.types.get(&line.ticket_type).is_some_and(|rule| {
                        std::iter::once(Pool::Root(event))
                            .chain(rule.quotas.iter().map(|q| Pool::Quota(*q)))
                            .any(|pool| {
                                let wanted = draws.get(&pool).copied().unwrap_or(0);
                                self.pools.get(&pool).is_none_or(|c| wanted > c.available())
                            })
                    });
                    over.then_some(Shortfall {
                        ticket_type: line.ticket_type,
                        available: left.max(0),
                    })
                })
                .collect();
            return Ok(Err(DomainError::TypesSoldOut(short)));
        }
        let now = self.rules.now;
        let mut lines: Vec<Line> = request
            .lines
            .iter()
            .map(|l| Line {
                ticket_type: l.ticket_type,
                // At most the configured maximum, far below i32::MAX.
                quantity: i32::try_from(l.quantity.get()).unwrap_or(i32::MAX),
            })
            .collect();
        lines.sort_unstable();
        self.shift(event, tickets, &lines, 1, 0)?;
        if let Some(customer) = &request.customer {
            *self.usage.entry((event, customer.clone())).or_default() += tickets;
        }
        let hold = Reservation {
            id: ReservationId::generate(now, event),
            event_id: event,
            status: ReservationStatus::Reserved,
            quantity: i32::try_from(request.quantity.get()).unwrap_or(i32::MAX),
            customer: request.customer.as_ref().map(|c| c.as_str().to_owned()),
            purchased_at: None,
            expires_at: Some(now + self.rules.hold_ttl.get()),
            payment_reference: None,
            created_at: now,
            updated_at: now,
            lines,
            seats: Vec::new(),
        };
        self.changes.holds.push(hold.clone());
        Ok(Ok(hold))
    }

    /// The seats `wanted` names (by label, or the best free ones), all free, or why not.
    fn find_seats(
        &self,
        event: EventId,
        wanted: &SeatRequest,
    ) -> Result<Result<Vec<SeatId>, DomainError>, DomainError> {
        let map = self
            .seats
            .get(&event)
            .ok_or_else(|| broken(format!("the seat map of event {event} was not read")))?;
        Ok(match wanted {
            SeatRequest::Labels(labels) => {
                let (known, unknown): (Vec<_>, Vec<_>) = labels
                    .iter()
                    .map(|l| (l, map.plan().seat(l)))
                    .partition(|(_, seat)| seat.is_some());
                if !unknown.is_empty() {
                    let names: Vec<&str> = unknown.iter().map(|(l, _)| l.as_str()).collect();
                    return Ok(Err(invalid(
                        "seats",
                        format!("This event has no seat {}.", names.join(", ")),
                    )));
                }
                let seats: Vec<SeatId> = known.into_iter().filter_map(|(_, s)| s).collect();
                let taken = map.taken(&seats);
                if taken.is_empty() {
                    Ok(seats)
                } else {
                    let labels = taken.iter().filter_map(|s| map.plan().label(*s)).collect();
                    Err(DomainError::SeatUnavailable(labels))
                }
            }
            SeatRequest::Best {
                quantity,
                ticket_type,
                together,
            } => {
                if let Some(t) = ticket_type {
                    if self.types.get(t).is_none_or(|rule| rule.event_id != event) {
                        return Ok(Err(invalid(
                            "best_available",
                            "The selected ticket type is invalid.",
                        )));
                    }
                }
                map.best_available(*quantity, *ticket_type, *together)
                    .ok_or(DomainError::SoldOut)
            }
        })
    }

    /// A reserve of seats: past-due holds of the event are released first (their seats read
    /// free), then the seats are found and their tickets counted like any others, on the event
    /// and on every quota of their sections' ticket types.
    fn reserve_seats(
        &mut self,
        request: &Reserve,
        wanted: &SeatRequest,
        release: &mut impl FnMut(EventId, u32) -> Result<Released, DomainError>,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let event = request.event;
        let now = self.rules.now;
        let due = self.seats.get(&event).is_some_and(|m| m.has_past_due(now));
        if due && self.released.insert(event) {
            let released = release(event, SEAT_RELEASE_LIMIT)?;
            self.absorb(released)?;
        }
        let seats = match self.find_seats(event, wanted)? {
            Ok(seats) => seats,
            Err(refused) => return Ok(Err(refused)),
        };
        let map = self
            .seats
            .get(&event)
            .ok_or_else(|| broken(format!("the seat map of event {event} was not read")))?;
        let mut lines: Vec<Line> = Vec::new();
        for seat in &seats {
            if let Some(ticket_type) = map.plan().ticket_type(*seat) {
                match lines.iter_mut().find(|l| l.ticket_type == ticket_type) {
                    Some(line) => line.quantity += 1,
                    None => lines.push(Line {
                        ticket_type,
                        quantity: 1,
                    }),
                }
            }
        }
        lines.sort_unstable();
        let held: Vec<HeldSeat> = seats
            .iter()
            .filter_map(|s| map.plan().label(*s).map(|label| HeldSeat { id: *s, label }))
            .collect();
        let tickets = i64::try_from(seats.len()).unwrap_or(i64::MAX);
        let asked: Vec<LineRequest> = lines
            .iter()
            .filter_map(|l| {
                let quantity = Quantity::new(i64::from(l.quantity), u32::MAX).ok()?;
                Some(LineRequest {
                    ticket_type: l.ticket_type,
                    quantity,
                })
            })
            .collect();
        if !self.fits(&self.draws(event, tickets, &asked)) {
            return Ok(Err(DomainError::SoldOut));
        }
        self.shift(event, tickets, &lines, 1, 0)?;
        if let Some(customer) = &request.customer {
            *self.usage.entry((event, customer.clone())).or_default() += tickets;
        }
        let until = now + self.rules.hold_ttl.get();
        let granted = Reservation {
            id: ReservationId::generate(now, event),
            event_id: event,
            status: ReservationStatus::Reserved,
            quantity: i32::try_from(seats.len()).unwrap_or(i32::MAX),
            customer: request.customer.as_ref().map(|c| c.as_str().to_owned()),
            purchased_at: None,
            expires_at: Some(until),
            payment_reference: None,
            created_at: now,
            updated_at: now,
            lines,
            seats: held,
        };
        self.log_seats(event, &seats, Some(granted.id));
        if let Some(map) = self.seats.get_mut(&event) {
            map.take(&seats, granted.id, until);
        }
        self.bump(event);
        self.changes.holds.push(granted.clone());
        Ok(Ok(granted))
    }

    /// Takes in the holds a release marked `expired`: their tickets are free again.
    fn absorb(&mut self, released: Released) -> Result<(), DomainError> {
        self.learn(released.inventory);
        for hold in released.holds {
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
            let told = Message::of_hold(hold.event, MessageKind::ReservationExpired, hold.id);
            push_once(&mut self.changes.messages, told);
            self.shift(hold.event, i64::from(hold.quantity), &hold.lines, -1, 0)?;
            self.free_seats(hold.event, hold.id, &hold.seats);
        }
        Ok(())
    }

    /// The hold `id` if it may change now; a past-due one is expired (its tickets freed) and
    /// refused.
    fn active_hold(
        &mut self,
        id: ReservationId,
        leaves_reserved: bool,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let now = self.rules.now;
        let Some(row) = self.reservations.get_mut(&id) else {
            return Ok(Err(DomainError::ReservationNotFound));
        };
        let decision = if leaves_reserved {
            decide_transition(row.status, row.expires_at, now, ReservationStatus::Canceled)
        } else {
            decide_hold_change(row.status, row.expires_at, now)
        };
        match decision {
            TransitionDecision::Refuse(err) => Ok(Err(err)),
            TransitionDecision::ExpireThenRefuse => {
                row.status = ReservationStatus::Expired;
                row.updated_at = now;
                let (event, tickets, lines) = (row.event_id, row.tickets(), row.lines.clone());
                let seats: Vec<SeatId> = row.seats.iter().map(|s| s.id).collect();
                let expired = StatusChange::new(id, event, ReservationStatus::Expired);
                self.changes.statuses.push(expired);
                let told = Message::of_hold(event, MessageKind::ReservationExpired, id);
                push_once(&mut self.changes.messages, told);
                self.shift(event, tickets, &lines, -1, 0)?;
                self.free_seats(event, id, &seats);
                Ok(Err(DomainError::InvalidOrExpired))
            }
            TransitionDecision::Proceed => Ok(Ok(row.clone())),
        }
    }

    /// A purchase or a cancel.
    fn settle(
        &mut self,
        id: ReservationId,
        how: Settle<'_>,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let hold = match self.active_hold(id, true)? {
            Ok(hold) => hold,
            Err(refused) => return Ok(Err(refused)),
        };
        let now = self.rules.now;
        let (event, tickets) = (hold.event_id, hold.tickets());
        let mut done = hold;
        done.updated_at = now;
        if let Settle::Purchase(reference) = how {
            done.status = ReservationStatus::Purchased;
            done.purchased_at = Some(now);
            done.payment_reference = reference.map(|r| r.as_str().to_owned());
            self.changes.statuses.push(StatusChange {
                payment_reference: done.payment_reference.clone(),
                ..StatusChange::new(id, event, ReservationStatus::Purchased)
            });
            self.shift(event, tickets, &done.lines, -1, 1)?;
            if !done.seats.is_empty() {
                if let Some(map) = self.seats.get_mut(&event) {
                    map.sell(id);
                }
                self.bump(event);
            }
        } else {
            done.status = ReservationStatus::Canceled;
            let canceled = StatusChange::new(id, event, ReservationStatus::Canceled);
            self.changes.statuses.push(canceled);
            self.shift(event, tickets, &done.lines, -1, 0)?;
            self.forget_usage(&done, tickets);
            let seats: Vec<SeatId> = done.seats.iter().map(|s| s.id).collect();
            self.free_seats(event, id, &seats);
        }
        self.reservations.insert(id, done.clone());
        Ok(Ok(done))
    }

    /// The customer of `hold` holds `tickets` fewer.
    fn forget_usage(&mut self, hold: &Reservation, tickets: i64) {
        if let Some(customer) = hold.customer.as_deref().map(Customer::parse) {
            if let Some(used) = customer
                .ok()
                .and_then(|c| self.usage.get_mut(&(hold.event_id, c)))
            {
                *used -= tickets;
            }
        }
    }

    /// Records the new state of a hold that stays reserved (the latest, if it changes twice).
    fn record_change(&mut self, hold: &Reservation) {
        let change = HoldChange {
            id: hold.id,
            event: hold.event_id,
            expires_at: hold.expires_at.unwrap_or(self.rules.now),
            quantity: hold.quantity,
            lines: hold.lines.clone(),
            seats: hold.seats.clone(),
        };
        match self
            .changes
            .hold_changes
            .iter_mut()
            .find(|c| c.id == hold.id)
        {
            Some(earlier) => *earlier = change,
            None => self.changes.hold_changes.push(change),
        }
    }

    fn extend(
        &mut self,
        request: &Extend,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let mut hold = match self.active_hold(request.id, false)? {
            Ok(hold) => hold,
            Err(refused) => return Ok(Err(refused)),
        };
        let now = self.rules.now;
        let reach = request.seconds.map_or(self.rules.hold_ttl.get(), |s| {
            TimeDelta::seconds(i64::from(s))
        });
        let until = hold
            .expires_at
            .map_or(now + reach, |at| at.max(now + reach));
        if until - hold.created_at > self.rules.max_hold {
            return Ok(Err(DomainError::HoldLifetimeExceeded));
        }
        hold.expires_at = Some(until);
        hold.updated_at = now;
        if !hold.seats.is_empty() {
            if let Some(map) = self.seats.get_mut(&hold.event_id) {
                map.extend(hold.id, until);
            }
            self.bump(hold.event_id);
        }
        self.record_change(&hold);
        self.reservations.insert(hold.id, hold.clone());
        Ok(Ok(hold))
    }

    /// What `part` leaves of `hold`, and what it gives back.
    fn remainder(hold: &Reservation, part: &ReleasePart) -> Result<Remainder, DomainError> {
        const ALL: &str = "must be fewer than the tickets held; cancel releases them all.";
        match (part, hold.lines.is_empty()) {
            (ReleasePart::Tickets(k), true) => {
                if k.tickets() >= hold.tickets() {
                    return Err(invalid("quantity", format!("The quantity {ALL}")));
                }
                Ok(Remainder {
                    tickets: k.tickets(),
                    ..Remainder::default()
                })
            }
            // A release of seats goes through `release_seats`.
            (ReleasePart::Seats(_), _) => Err(invalid("seats", "This hold has no seats.")),
            (ReleasePart::Tickets(_), false) => Err(invalid(
                "lines",
                "This hold has ticket types: release lines of it.",
            )),
            (ReleasePart::Lines(_), true) => Err(invalid(
                "quantity",
                "This hold has no ticket types: release a quantity of it.",
            )),
            (ReleasePart::Lines(asked), false) => {
                let mut left = hold.lines.clone();
                let mut given = Vec::new();
                for line in asked {
                    let Some(kept) = left.iter_mut().find(|l| l.ticket_type == line.ticket_type)
                    else {
                        return Err(invalid(
                            "lines",
                            format!(
                                "The hold has no tickets of ticket type {}.",
                                line.ticket_type
                            ),
                        ));
                    };
                    let k = i32::try_from(line.quantity.get()).unwrap_or(i32::MAX);
                    if k > kept.quantity {
                        return Err(invalid(
                            "lines",
                            format!(
                                "The hold has only {} tickets of ticket type {}.",
                                kept.quantity, line.ticket_type
                            ),
                        ));
                    }
                    kept.quantity -= k;
                    given.push(Line {
                        ticket_type: line.ticket_type,
                        quantity: k,
                    });
                }
                let total: i64 = given.iter().map(|l| i64::from(l.quantity)).sum();
                if total >= hold.tickets() {
                    return Err(invalid("lines", format!("The lines {ALL}")));
                }
                left.retain(|l| l.quantity > 0);
                Ok(Remainder {
                    left,
                    given,
                    tickets: total,
                })
            }
        }
    }

    fn release_part(
        &mut self,
        request: &Release,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let mut hold = match self.active_hold(request.id, false)? {
            Ok(hold) => hold,
            Err(refused) => return Ok(Err(refused)),
        };
        if !hold.seats.is_empty() || matches!(request.part, ReleasePart::Seats(_)) {
            return self.release_seats(hold, &request.part);
        }
        let Remainder {
            left,
            given,
            tickets,
        } = match Self::remainder(&hold, &request.part) {
            Ok(parts) => parts,
            Err(refused) => return Ok(Err(refused)),
        };
        self.shift(hold.event_id, tickets, &given, -1, 0)?;
        self.forget_usage(&hold, tickets);
        hold.quantity -= i32::try_from(tickets).unwrap_or(0);
        hold.lines = left;
        hold.updated_at = self.rules.now;
        self.record_change(&hold);
        self.reservations.insert(hold.id, hold.clone());
        Ok(Ok(hold))
    }

    /// A release of some of a seated hold's seats (by label): fewer than all of them; their
    /// tickets are freed on every pool their sections' types count in.
    fn release_seats(
        &mut self,
        mut hold: Reservation,
        part: &ReleasePart,
    ) -> Result<Result<Reservation, DomainError>, DomainError> {
        let ReleasePart::Seats(labels) = part else {
            return Ok(Err(invalid(
                "seats",
                "This hold has seats: release seats of it.",
            )));
        };
        if hold.seats.is_empty() {
            return Ok(Err(invalid(
                "seats",
                "This hold has no seats: release a quantity or lines of it.",
            )));
        }
        if let Some(stranger) = labels
            .iter()
            .find(|l| !hold.seats.iter().any(|s| &s.label == *l))
        {
            return Ok(Err(invalid(
                "seats",
                format!("The hold has no seat {stranger}."),
            )));
        }
        let (given, left): (Vec<HeldSeat>, Vec<HeldSeat>) = std::mem::take(&mut hold.seats)
            .into_iter()
            .partition(|s| labels.contains(&s.label));
        if left.is_empty() {
            return Ok(Err(invalid(
                "seats",
                "The seats must be fewer than the seats held; cancel releases them all.",
            )));
        }
        let event = hold.event_id;
        let plan = self
            .seats
            .get(&event)
            .map(|m| Arc::clone(m.plan()))
            .ok_or_else(|| broken(format!("the seat map of event {event} was not read")))?;
        let mut given_lines: Vec<Line> = Vec::new();
        for seat in &given {
            if let Some(ticket_type) = plan.ticket_type(seat.id) {
                match given_lines
                    .iter_mut()
                    .find(|l| l.ticket_type == ticket_type)
                {
                    Some(line) => line.quantity += 1,
                    None => given_lines.push(Line {
                        ticket_type,
                        quantity: 1,
                    }),
                }
            }
        }
        let tickets = i64::try_from(given.len()).unwrap_or(i64::MAX);
        self.shift(event, tickets, &given_lines, -1, 0)?;
        self.forget_usage(&hold, tickets);
        for g in &given_lines {
            if let Some(line) = hold
                .lines
                .iter_mut()
                .find(|l| l.ticket_type == g.ticket_type)
            {
                line.quantity -= g.quantity;
            }
        }
        hold.lines.retain(|l| l.quantity > 0);
        hold.quantity -= i32::try_from(given.len()).unwrap_or(0);
        hold.seats = left;
        hold.updated_at = self.rules.now;
        let freed: Vec<SeatId> = given.iter().map(|s| s.id).collect();
        self.free_seats(event, hold.id, &freed);
        self.record_change(&hold);
        self.reservations.insert(hold.id, hold.clone());
        Ok(Ok(hold))
    }
}

/// How a hold leaves `reserved` at the client's word.
#[derive(Debug, Clone, Copy)]
enum Settle<'a> {
    /// Bought, with the client's reference, if any.
    Purchase(Option<&'a PaymentReference>),
    /// Given back.
    Cancel,
}

/// What a release leaves of a hold and gives back.
#[derive(Debug, Default)]
struct Remainder {
    /// The lines that stay, with their new quantities (a typed hold).
    left: Vec<Line>,
    /// The lines given back (a typed hold).
    given: Vec<Line>,
    /// The tickets given back.
    tickets: i64,
}

/// Tickets moving on an event: `total` of them, of `lines` (an untyped hold has none); each
/// pool's and type's `held` and `purchased` counters change by `held` and `purchased` times
/// the tickets it counts.
#[derive(Debug, Clone, Copy)]
struct Move<'a> {
    event: EventId,
    total: i64,
    lines: &'a [Line],
    held: i64,
    purchased: i64,
}

/// Records a move of tickets in `changes`, on the event (the root quota), on each line's type
/// and on every quota of those types; `on_pool` is told each pool and its tickets.
fn shift(
    changes: &mut Changes,
    types: &HashMap<TicketTypeId, TicketType>,
    m: Move<'_>,
    mut on_pool: impl FnMut(Pool, i64),
) -> Result<(), DomainError> {
    let mut moves: Vec<(Pool, i64)> = vec![(Pool::Root(m.event), m.total)];
    for line in m.lines {
        let rule = types.get(&line.ticket_type).ok_or_else(|| {
            broken(format!(
                "ticket type {} of a hold was not read",
                line.ticket_type
            ))
        })?;
        let tickets = i64::from(line.quantity);
        moves.extend(rule.quotas.iter().map(|q| (Pool::Quota(*q), tickets)));
        let delta = &mut changes
            .type_counters
            .entry(line.ticket_type)
            .or_insert((m.event, CounterDelta::default()))
            .1;
        delta.held += m.held * tickets;
        delta.purchased += m.purchased * tickets;
    }
    for (pool, tickets) in moves {
        on_pool(pool, tickets);
        let delta = match pool {
            Pool::Root(e) => changes.counters.entry(e).or_default(),
            Pool::Quota(q) => {
                &mut changes
                    .quota_counters
                    .entry(q)
                    .or_insert((m.event, CounterDelta::default()))
                    .1
            }
        };
        delta.held += m.held * tickets;
        delta.purchased += m.purchased * tickets;
    }
    Ok(())
}

/// The counter changes that free the tickets of `holds`, which the store marked `expired`: on
/// their events, their lines' types and those types' quotas (`inventory` has the types).
///
/// # Errors
/// [`DomainError::Store`] when a line's type is not in `inventory`.
pub fn freed(holds: &[ReleasedHold], inventory: &Inventory) -> Result<Changes, DomainError> {
    let types: HashMap<TicketTypeId, TicketType> = inventory
        .types
        .iter()
        .map(|t| (t.ticket_type.id, t.ticket_type.clone()))
        .collect();
    let mut changes = Changes::default();
    for hold in holds {
        let m = Move {
            event: hold.event,
            total: i64::from(hold.quantity),
            lines: &hold.lines,
            held: -1,
            purchased: 0,
        };
        shift(&mut changes, &types, m, |_, _| {})?;
        let told = Message::of_hold(hold.event, MessageKind::ReservationExpired, hold.id);
        changes.messages.push(told);
        if !hold.seats.is_empty() {
            changes
                .seats_freed
                .extend(hold.seats.iter().map(|seat| (hold.event, *seat)));
            *changes.seat_versions.entry(hold.event).or_default() += 1;
        }
    }
    Ok(changes)
}

/// The ticket types of `holds`' lines, with their events, ascending and distinct: what
/// [`freed`] needs.
pub fn types_of(holds: &[ReleasedHold]) -> Vec<TypeOf> {
    let mut types: Vec<TypeOf> = holds
        .iter()
        .flat_map(|h| h.lines.iter().map(|l| (h.event, l.ticket_type)))
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::command::{Cancel, Purchase};
    use crate::seating::SeatPlan;
    use crate::validation::Quantity;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn rules(customer_limit: Option<u32>) -> Rules {
        Rules {
            now: at(0),
            hold_ttl: HoldTtl::from_seconds(600).unwrap_or_else(|| unreachable!()),
            max_hold: TimeDelta::seconds(1_800),
            customer_limit,
        }
    }

    fn reserve(event: i64, quantity: u32, customer: Option<&str>) -> Operation {
        Operation::Reserve(Reserve::untyped(
            EventId::new(event),
            Quantity::new(i64::from(quantity), 100).unwrap_or(Quantity::ONE),
            customer.and_then(|c| Customer::parse(c).ok()),
        ))
    }

    fn locked(id: i64, capacity: i32, purchased: i32, held: i32) -> LockedEvent {
        LockedEvent {
            id: EventId::new(id),
            capacity,
            purchased,
            held,
            typed: false,
            seats: None,
        }
    }

    fn no_release(_: EventId, _: u32) -> Result<Released, DomainError> {
        panic!("must not release")
    }

    fn released(holds: Vec<ReleasedHold>) -> Released {
        Released {
            holds,
            inventory: Inventory::default(),
        }
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
        release: &mut impl FnMut(EventId, u32) -> Result<Released, DomainError>,
    ) -> Vec<Result<Reservation, DomainError>> {
        ops.iter()
            .map(|op| ledger.decide(op, release).unwrap_or_else(|e| panic!("{e}")))
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
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 3, 0, 0)],
            Inventory::default(),
            vec![],
            vec![],
        );
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
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 1, 0, 0)],
            Inventory::default(),
            vec![],
            vec![],
        );
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
        let mut ledger = Ledger::new(
            rules(None),
            &ops,
            &[locked(1, 4, 0, 4)],
            Inventory::default(),
            vec![],
            vec![],
        );
        let mut calls = Vec::new();
        let outcomes = decide_all(&mut ledger, &ops, &mut |event, limit| {
            calls.push((event, limit));
            Ok(released(vec![
                ReleasedHold {
                    id: ReservationId::generate(at(-700), event),
                    event,
                    quantity: 2,
                    lines: vec![],
                    seats: Vec::new(),
                },
                ReleasedHold {
                    id: ReservationId::generate(at(-700), event),
                    event,
                    quantity: 1,
                    lines: vec![],
                    seats: Vec::new(),
                },
            ]))
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
        let mut ledger = Ledger::new(
            rules(Some(3)),
            &ops,
            &[locked(1, 100, 0, 0)],
            Inventory::default(),
            vec![],
            usage,
        );
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
            lines: vec![],
            seats: Vec::new(),
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
            Inventory::default(),
            vec![hold.clone()],
            vec![],
        );
        let outcomes = decide_all(&mut ledger, &ops, &mut |_, _| Ok(Released::default()));
        assert_eq!(
            kinds(&outcomes),
            vec![Err(DomainError::SoldOut), Ok(2), Ok(2)]
        );
        let changes = ledger.into_changes();
        assert_eq!(
            changes.statuses,
            vec![StatusChange::new(
                hold.id,
                EventId::new(1),
                ReservationStatus::Canceled
            )]
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
            Inventory::default(),
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
            Inventory::default(),
            vec![due.clone()],
            vec![],
        );
        let hold = ReleasedHold {
            id: due.id,
            event: EventId::new(1),
            quantity: 2,
            lines: vec![],
            seats: Vec::new(),
        };
        let outcomes = decide_all(&mut ledger, &ops, &mut |_, _| {
            Ok(released(vec![hold.clone()]))
        });
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
    // model that knows nothing of counters or lazy release: it counts rows, per pool (each
    // event's root and each named quota, summing the lines of the types that draw from it), as
    // the availability rule is written (`crate::inventory`).

    /// Event 0 is typed: quota 1 (Saturday) and quota 2 (Sunday); type 1 draws from 1, type 2
    /// (a weekend pass) from both, type 3 from the root only (at most 2 a hold), type 4 from 2.
    /// Event 1 has no types.
    const TYPES: [(i64, &[i64], Option<u32>); 4] = [
        (1, &[1], None),
        (2, &[1, 2], None),
        (3, &[], Some(2)),
        (4, &[2], None),
    ];
    const UNKNOWN_TYPE: i64 = 9;
    const CUSTOMERS: [Option<&str>; 3] = [None, Some("a"), Some("b")];

    #[derive(Debug, Clone)]
    struct ModelRow {
        id: ReservationId,
        event: i64,
        status: ReservationStatus,
        quantity: i64,
        lines: Vec<(i64, i64)>,
        customer: Option<&'static str>,
        expires: i64,
        created: i64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum ModelPool {
        Root(i64),
        Quota(i64),
    }

    struct Model {
        rows: Vec<ModelRow>,
        capacities: [i64; 2],
        quotas: [i64; 2],
        limit: Option<u32>,
    }

    fn quotas_of(ticket_type: i64) -> &'static [i64] {
        TYPES
            .iter()
            .find(|t| t.0 == ticket_type)
            .map_or(&[], |t| t.1)
    }

    impl Model {
        fn capacity(&self, pool: ModelPool) -> i64 {
            match pool {
                ModelPool::Root(e) => self.capacities[usize::try_from(e).unwrap_or(0)],
                ModelPool::Quota(q) => self.quotas[usize::try_from(q - 1).unwrap_or(0)],
            }
        }

        /// The tickets `row` takes from `pool` (whatever its status).
        fn takes(row: &ModelRow, pool: ModelPool) -> i64 {
            match pool {
                ModelPool::Root(e) => {
                    if row.event == e {
                        row.quantity
                    } else {
                        0
                    }
                }
                ModelPool::Quota(q) => row
                    .lines
                    .iter()
                    .filter(|(t, _)| quotas_of(*t).contains(&q))
                    .map(|(_, n)| n)
                    .sum(),
            }
        }

        fn counts(row: &ModelRow) -> bool {
            row.status == ReservationStatus::Purchased
                || (row.status == ReservationStatus::Reserved && row.expires > 0)
        }

        fn available(&self, pool: ModelPool) -> i64 {
            let taken: i64 = self
                .rows
                .iter()
                .filter(|r| Self::counts(r))
                .map(|r| Self::takes(r, pool))
                .sum();
            self.capacity(pool) - taken
        }

        fn pools_of(event: i64, ticket_type: i64) -> Vec<ModelPool> {
            std::iter::once(ModelPool::Root(event))
                .chain(quotas_of(ticket_type).iter().map(|q| ModelPool::Quota(*q)))
                .collect()
        }

        fn reserve(&mut self, r: &Reserve) -> Result<(i64, Vec<(i64, i64)>), String> {
            let e = r.event.get();
            if !(0..2).contains(&e) {
                return Err("EventNotFound".into());
            }
            let lines: Vec<(i64, i64)> = r
                .lines
                .iter()
                .map(|l| (l.ticket_type.get(), l.quantity.tickets()))
                .collect();
            if lines.is_empty() && e == 0 {
                return Err("422 ticket_type".into());
            }
            for (t, n) in &lines {
                let Some(rule) = TYPES.iter().find(|k| k.0 == *t).filter(|_| e == 0) else {
                    return Err(format!("422 {}", r.lines_field));
                };
                if rule.2.is_some_and(|max| *n > i64::from(max)) {
                    return Err(format!("422 {}", r.lines_field));
                }
            }
            let q = r.quantity.tickets();
            if let (Some(limit), Some(c)) = (self.limit, &r.customer) {
                let used: i64 = self
                    .rows
                    .iter()
                    .filter(|x| x.event == e && x.customer == Some(c.as_str()))
                    .filter(|x| Self::counts(x))
                    .map(|x| x.quantity)
                    .sum();
                if used + q > i64::from(limit) {
                    return Err("CustomerLimitReached".into());
                }
            }
            let candidate = ModelRow {
                id: ReservationId::generate(at(0), r.event),
                event: e,
                status: ReservationStatus::Reserved,
                quantity: q,
                lines: lines.clone(),
                customer: CUSTOMERS
                    .iter()
                    .flatten()
                    .find(|c| Some(**c) == r.customer.as_ref().map(Customer::as_str))
                    .copied(),
                expires: 600,
                created: 0,
            };
            let mut pools: Vec<ModelPool> = lines
                .iter()
                .flat_map(|(t, _)| Self::pools_of(e, *t))
                .collect();
            pools.push(ModelPool::Root(e));
            let over = |pool: ModelPool| Self::takes(&candidate, pool) > self.available(pool);
            if pools.iter().any(|p| over(*p)) {
                if lines.is_empty() {
                    return Err("SoldOut".into());
                }
                let short: Vec<Shortfall> = lines
                    .iter()
                    .filter(|(t, _)| Self::pools_of(e, *t).into_iter().any(over))
                    .map(|(t, _)| Shortfall {
                        ticket_type: TicketTypeId::new(*t),
                        available: Self::pools_of(e, *t)
                            .into_iter()
                            .map(|p| self.available(p))
                            .min()
                            .unwrap_or(0)
                            .max(0),
                    })
                    .collect();
                return Err(format!("{:?}", DomainError::TypesSoldOut(short)));
            }
            let mut sorted = lines;
            sorted.sort_unstable();
            self.rows.push(ModelRow {
                lines: sorted.clone(),
                ..candidate
            });
            Ok((q, sorted))
        }

        /// The row of an operation on a hold, if it may change; the refusals of every one.
        fn active(&mut self, id: ReservationId) -> Result<usize, String> {
            let Some(i) = self.rows.iter().position(|x| x.id == id) else {
                return Err("ReservationNotFound".into());
            };
            let row = &mut self.rows[i];
            match row.status {
                ReservationStatus::Purchased => Err("AlreadyPurchased".into()),
                ReservationStatus::Reserved if row.expires > 0 => Ok(i),
                ReservationStatus::Reserved => {
                    row.status = ReservationStatus::Expired;
                    Err("InvalidOrExpired".into())
                }
                _ => Err("InvalidOrExpired".into()),
            }
        }

        fn serve(&mut self, op: &Operation) -> Result<(i64, Vec<(i64, i64)>), String> {
            let done = |row: &ModelRow| (row.quantity, row.lines.clone());
            match op {
                Operation::Reserve(r) => self.reserve(r),
                Operation::Purchase(Purchase { id, .. }) | Operation::Cancel(Cancel { id }) => {
                    let i = self.active(*id)?;
                    self.rows[i].status = if matches!(op, Operation::Purchase(_)) {
                        ReservationStatus::Purchased
                    } else {
                        ReservationStatus::Canceled
                    };
                    Ok(done(&self.rows[i]))
                }
                Operation::Extend(Extend { id, seconds }) => {
                    let i = self.active(*id)?;
                    let row = &mut self.rows[i];
                    let until = row.expires.max(seconds.map_or(600, i64::from));
                    if until - row.created > 1_800 {
                        return Err("HoldLifetimeExceeded".into());
                    }
                    row.expires = until;
                    Ok(done(row))
                }
                Operation::Release(Release { id, part }) => {
                    let i = self.active(*id)?;
                    let row = &mut self.rows[i];
                    match (part, row.lines.is_empty()) {
                        (ReleasePart::Tickets(k), true) if k.tickets() < row.quantity => {
                            row.quantity -= k.tickets();
                        }
                        (ReleasePart::Tickets(_) | ReleasePart::Lines(_), true) => {
                            return Err("422 quantity".into())
                        }
                        (ReleasePart::Tickets(_), false) => return Err("422 lines".into()),
                        (ReleasePart::Seats(_), _) => return Err("422 seats".into()),
                        (ReleasePart::Lines(asked), false) => {
                            let mut left = row.lines.clone();
                            let mut total = 0;
                            for l in asked {
                                let k = l.quantity.tickets();
                                match left.iter_mut().find(|(t, _)| *t == l.ticket_type.get()) {
                                    Some((_, n)) if k <= *n => *n -= k,
                                    _ => return Err("422 lines".into()),
                                }
                                total += k;
                            }
                            if total >= row.quantity {
                                return Err("422 lines".into());
                            }
                            left.retain(|(_, n)| *n > 0);
                            row.lines = left;
                            row.quantity -= total;
                        }
                    }
                    Ok(done(row))
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
            created_at: at(r.created),
            updated_at: at(-1),
            lines: lines_of(&r.lines),
            seats: Vec::new(),
        }
    }

    fn lines_of(lines: &[(i64, i64)]) -> Vec<Line> {
        lines
            .iter()
            .map(|(t, n)| Line {
                ticket_type: TicketTypeId::new(*t),
                quantity: i32::try_from(*n).unwrap_or(1),
            })
            .collect()
    }

    fn request(quantity: i64) -> Quantity {
        Quantity::new(quantity, 100).unwrap_or(Quantity::ONE)
    }

    /// The counters a store keeps of `rows` (past-due holds still held): per event, quota and
    /// type, `(purchased, held)`.
    fn store_counters(rows: &[ModelRow]) -> BTreeMap<(u8, i64), (i64, i64)> {
        let mut counters: BTreeMap<(u8, i64), (i64, i64)> = BTreeMap::new();
        for r in rows {
            let slot = match r.status {
                ReservationStatus::Purchased => 0,
                ReservationStatus::Reserved => 1,
                _ => continue,
            };
            let mut add = |key, n| {
                let c = counters.entry(key).or_default();
                if slot == 0 {
                    c.0 += n;
                } else {
                    c.1 += n;
                }
            };
            add((0, r.event), r.quantity);
            for (t, n) in &r.lines {
                add((2, *t), *n);
                for q in quotas_of(*t) {
                    add((1, *q), *n);
                }
            }
        }
        counters
    }

    /// The types among `types` with their counters, and their quotas with theirs, as a store
    /// reads them before the batch.
    fn inventory_of(
        types: &BTreeSet<i64>,
        counters: &BTreeMap<(u8, i64), (i64, i64)>,
        quota_capacities: [i64; 2],
    ) -> Inventory {
        let c = |key| {
            let (purchased, held) = counters.get(&key).copied().unwrap_or_default();
            crate::inventory::Counters {
                purchased: i32::try_from(purchased).unwrap_or(0),
                held: i32::try_from(held).unwrap_or(0),
            }
        };
        let mut inventory = Inventory::default();
        for &(id, quotas, max) in TYPES.iter().filter(|t| types.contains(&t.0)) {
            inventory.types.push(crate::inventory::LockedType {
                ticket_type: TicketType {
                    id: TicketTypeId::new(id),
                    event_id: EventId::new(0),
                    name: format!("t{id}"),
                    quotas: quotas.iter().copied().map(QuotaId::new).collect(),
                    max_per_reservation: max,
                },
                counters: c((2, id)),
            });
            for q in quotas {
                if !inventory.quotas.iter().any(|k| k.id == QuotaId::new(*q)) {
                    inventory.quotas.push(crate::inventory::LockedQuota {
                        id: QuotaId::new(*q),
                        event_id: EventId::new(0),
                        capacity: i32::try_from(
                            quota_capacities[usize::try_from(q - 1).unwrap_or(0)],
                        )
                        .unwrap_or(1),
                        counters: c((1, *q)),
                    });
                }
            }
        }
        inventory
    }

    /// A request of the generated kind.
    fn operation(
        rows: &[ModelRow],
        (kind, a, b, customer, pick, seconds): (usize, usize, i64, usize, usize, usize),
    ) -> Operation {
        let unknown = ReservationId::generate(at(0), EventId::new(0));
        let target = rows.get(pick).map_or(unknown, |r| r.id);
        let typed = |event: i64, lines: Vec<(i64, i64)>, field: &'static str| {
            Operation::Reserve(Reserve {
                event: EventId::new(event),
                quantity: request(lines.iter().map(|l| l.1).sum()),
                customer: CUSTOMERS[customer].and_then(|c| Customer::parse(c).ok()),
                lines: lines
                    .into_iter()
                    .map(|(t, n)| LineRequest {
                        ticket_type: TicketTypeId::new(t),
                        quantity: request(n),
                    })
                    .collect(),
                lines_field: field,
                seats: None,
            })
        };
        let type_ids = [1, 2, 3, 4, UNKNOWN_TYPE];
        match kind {
            0 => Operation::Reserve(Reserve::untyped(
                EventId::new(1 + i64::from(a == 4)),
                request(b),
                CUSTOMERS[customer].and_then(|c| Customer::parse(c).ok()),
            )),
            1 => Operation::Reserve(Reserve::untyped(EventId::new(0), request(b), None)),
            2 => typed(0, vec![(type_ids[a % 5], b)], "ticket_type"),
            3 => {
                let first = 1 + i64::try_from(a % 4).unwrap_or(0);
                let second = 1 + (first % 4);
                let mut lines = vec![(first, b), (second, 1 + b % 2)];
                if seconds % 2 == 0 {
                    lines.push((1 + (second % 4), 1));
                }
                typed(0, lines, "lines")
            }
            4 => typed(1, vec![(type_ids[a % 4], b)], "ticket_type"),
            5 => Operation::Purchase(Purchase {
                id: target,
                payment_reference: None,
            }),
            6 => Operation::Cancel(Cancel { id: target }),
            7 => Operation::Extend(Extend {
                id: target,
                seconds: [None, Some(100), Some(1_700), Some(2_000)][seconds % 4],
            }),
            _ => {
                let held = rows.get(pick).map(|r| r.lines.clone()).unwrap_or_default();
                let part = if held.is_empty() || a % 5 == 0 {
                    ReleasePart::Tickets(request(b))
                } else {
                    ReleasePart::Lines(
                        held.iter()
                            .take(1 + a % 2)
                            .map(|(t, n)| LineRequest {
                                ticket_type: TicketTypeId::new(*t),
                                quantity: request((*n).min(b)),
                            })
                            .collect(),
                    )
                };
                Operation::Release(Release { id: target, part })
            }
        }
    }

    fn outcome_of(
        outcome: &Result<Reservation, DomainError>,
    ) -> Result<(i64, Vec<(i64, i64)>), String> {
        match outcome {
            Ok(r) => Ok((
                r.tickets(),
                r.lines
                    .iter()
                    .map(|l| (l.ticket_type.get(), i64::from(l.quantity)))
                    .collect(),
            )),
            Err(DomainError::Validation { field, .. }) => Err(format!("422 {field}")),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(768))]
        #[test]
        fn a_batch_decides_exactly_as_serving_its_requests_one_at_a_time(
            capacities in (1..14i64, 1..8i64),
            quota_capacities in (1..8i64, 1..8i64),
            existing in proptest::collection::vec(
                (0..2i64, 0..4usize, 1..4i64, 0..5usize, 0..3usize, prop_oneof![Just(-30i64), Just(60i64), Just(1_500i64)]),
                0..12),
            requests in proptest::collection::vec(
                (0..9usize, 0..5usize, 1..4i64, 0..3usize, 0..14usize, 0..4usize), 0..25),
            limit in prop_oneof![Just(None), (1..7u32).prop_map(Some)],
        ) {
            let mut model = Model {
                rows: Vec::new(),
                capacities: [capacities.0, capacities.1],
                quotas: [quota_capacities.0, quota_capacities.1],
                limit,
            };
            // The store before the batch: rows whose counted tickets (past-due holds included,
            // as the counters count them) fit every pool.
            for (event, status, quantity, kind, customer, expires) in existing {
                let status = ReservationStatus::ALL[status];
                let lines = if event == 0 {
                    match kind {
                        0..=3 => vec![(TYPES[kind].0, quantity.min(TYPES[kind].2.map_or(9, i64::from)))],
                        _ => vec![(1, 1), (2, quantity)],
                    }
                } else {
                    Vec::new()
                };
                let row = ModelRow {
                    id: ReservationId::generate(at(-200), EventId::new(event)),
                    event,
                    status,
                    quantity: if lines.is_empty() { quantity } else { lines.iter().map(|l| l.1).sum() },
                    lines,
                    customer: CUSTOMERS[customer],
                    expires,
                    created: -200,
                };
                let held = |r: &ModelRow| matches!(r.status, ReservationStatus::Purchased | ReservationStatus::Reserved);
                let pools = [ModelPool::Root(0), ModelPool::Root(1), ModelPool::Quota(1), ModelPool::Quota(2)];
                let fits = !held(&row) || pools.iter().all(|p| {
                    let taken: i64 = model.rows.iter().filter(|r| held(r)).map(|r| Model::takes(r, *p)).sum();
                    taken + Model::takes(&row, *p) <= model.capacity(*p)
                });
                if fits {
                    model.rows.push(row);
                }
            }
            let rows = model.rows.clone();
            let ops: Vec<Operation> = requests.into_iter().map(|r| operation(&rows, r)).collect();

            // What the batch locks and reads, as `batch::run` gathers it.
            let before = store_counters(&rows);
            let counter = |key| before.get(&key).copied().unwrap_or_default();
            let events: Vec<LockedEvent> = (0..2).map(|e| {
                let (purchased, held) = counter((0, e));
                LockedEvent {
                    id: EventId::new(e),
                    capacity: i32::try_from(model.capacities[usize::try_from(e).unwrap_or(0)]).unwrap_or(1),
                    purchased: i32::try_from(purchased).unwrap_or(0),
                    held: i32::try_from(held).unwrap_or(0),
                    typed: e == 0,
                    seats: None,
                }
            }).collect();
            let mut named: BTreeSet<i64> = BTreeSet::new();
            for op in &ops {
                match op {
                    Operation::Reserve(r) => named.extend(r.lines.iter().map(|l| l.ticket_type.get())),
                    other => if let Some(row) = other.reservation().and_then(|id| rows.iter().find(|r| r.id == id)) {
                        named.extend(row.lines.iter().map(|l| l.0));
                    },
                }
            }
            let usage: Vec<(EventId, Customer, i64)> = (0..2).flat_map(|e| {
                let rows = &rows;
                CUSTOMERS.iter().flatten().filter_map(move |c| {
                    let used: i64 = rows.iter()
                        .filter(|r| r.event == e && r.customer == Some(*c) && Model::counts(r))
                        .map(|r| r.quantity).sum();
                    Some((EventId::new(e), Customer::parse(c).ok()?, used))
                })
            }).collect();
            let mut store_rows = rows.clone();
            let mut ledger = Ledger::new(
                rules(limit), &ops, &events, inventory_of(&named, &before, model.quotas),
                rows.iter().map(to_reservation).collect(), usage,
            );
            let outcomes: Vec<_> = ops.iter().map(|op| {
                ledger.decide(op, &mut |event: EventId, limit: u32| {
                    let mut due: Vec<&mut ModelRow> = store_rows.iter_mut()
                        .filter(|r| r.event == event.get() && r.status == ReservationStatus::Reserved && r.expires <= 0)
                        .collect();
                    due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    let holds: Vec<ReleasedHold> = due.into_iter().map(|r| {
                        r.status = ReservationStatus::Expired;
                        ReleasedHold {
                            id: r.id,
                            event,
                            quantity: i32::try_from(r.quantity).unwrap_or(1),
                            lines: lines_of(&r.lines),
                            seats: Vec::new(),
                        }
                    }).collect();
                    let types: BTreeSet<i64> = holds.iter().flat_map(|h| h.lines.iter().map(|l| l.ticket_type.get())).collect();
                    Ok(Released { holds, inventory: inventory_of(&types, &before, model.quotas) })
                }).unwrap_or_else(|e| panic!("{e}"))
            }).collect();

            // Serve the same requests one at a time on the model.
            for (op, outcome) in ops.iter().zip(&outcomes) {
                let expected = model.serve(op);
                prop_assert_eq!(outcome_of(outcome), expected, "{:?}", op);
            }

            // Applied to the store, the changes leave every counter equal to a recount of the
            // rows, and the invariant holds in every pool.
            let changes = ledger.into_changes();
            let mut after = store_rows;
            for hold in &changes.holds {
                after.push(ModelRow {
                    id: hold.id, event: hold.event_id.get(), status: ReservationStatus::Reserved,
                    quantity: hold.tickets(),
                    lines: hold.lines.iter().map(|l| (l.ticket_type.get(), i64::from(l.quantity))).collect(),
                    customer: None, expires: 600, created: 0,
                });
            }
            for change in &changes.hold_changes {
                let row = after.iter_mut().find(|r| r.id == change.id);
                prop_assert!(row.as_ref().is_some_and(|r| r.status == ReservationStatus::Reserved), "{:?}", change);
                if let Some(row) = row {
                    row.quantity = i64::from(change.quantity);
                    row.lines = change.lines.iter().map(|l| (l.ticket_type.get(), i64::from(l.quantity))).collect();
                    row.expires = (change.expires_at - at(0)).num_seconds();
                }
            }
            for change in &changes.statuses {
                let row = after.iter_mut().find(|r| r.id == change.id());
                prop_assert!(row.as_ref().is_some_and(|r| r.status == ReservationStatus::Reserved), "{:?}", change);
                if let Some(row) = row {
                    row.status = change.status();
                }
            }
            let recount = store_counters(&after);
            let mut keys: BTreeSet<(u8, i64)> = before.keys().chain(recount.keys()).copied().collect();
            keys.extend([(0, 0), (0, 1)]);
            for key in keys {
                let (p0, h0) = before.get(&key).copied().unwrap_or_default();
                let delta = match key.0 {
                    0 => changes.counters.get(&EventId::new(key.1)).copied().unwrap_or_default(),
                    1 => changes.quota_counters.get(&QuotaId::new(key.1)).map(|c| c.1).unwrap_or_default(),
                    _ => changes.type_counters.get(&TicketTypeId::new(key.1)).map(|c| c.1).unwrap_or_default(),
                };
                prop_assert_eq!((p0 + delta.purchased, h0 + delta.held), recount.get(&key).copied().unwrap_or_default(), "{:?}", key);
            }
            let model_after = Model { rows: after, ..model };
            for pool in [ModelPool::Root(0), ModelPool::Root(1), ModelPool::Quota(1), ModelPool::Quota(2)] {
                prop_assert!(model_after.available(pool) >= 0, "{:?} oversold", pool);
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
            Inventory::default(),
            vec![],
            vec![],
        );
        let mut asked = Vec::new();
        let _ = decide_all(&mut ledger, &ops, &mut |_, limit| {
            asked.push(limit);
            Ok(Released::default())
        });
        assert_eq!(asked, vec![3_000]);
    }

    // ---- the seats' property test: a batch of seat reserves, purchases, cancels and releases
    // decides as serving them one at a time on a model of seat ownership that knows nothing of
    // seat maps: a seat is taken while a counting row (purchased, or held and not past due)
    // names it. Best-available choices are the ledger's; the model checks each is free, of the
    // right size and adjacent in one row, and that no better-ranked row had such a block.

    const SEATED: i64 = 7;

    #[derive(Debug, Clone)]
    struct SeatRowModel {
        id: ReservationId,
        status: ReservationStatus,
        expires: i64,
        seats: Vec<i64>,
    }

    struct SeatModel {
        rows: Vec<SeatRowModel>,
        /// Row lengths, in plan order (rank = place).
        plan: Vec<i64>,
    }

    impl SeatModel {
        fn counts(row: &SeatRowModel) -> bool {
            row.status == ReservationStatus::Purchased
                || (row.status == ReservationStatus::Reserved && row.expires > 0)
        }

        fn taken(&self, seat: i64) -> bool {
            self.rows
                .iter()
                .any(|r| Self::counts(r) && r.seats.contains(&seat))
        }

        /// The seat numbers of plan row `r`.
        fn row_seats(&self, r: usize) -> std::ops::Range<i64> {
            let first: i64 = self.plan[..r].iter().sum::<i64>() + 1;
            first..first + self.plan[r]
        }

        fn label(&self, seat: i64) -> String {
            let mut r = 0;
            while !self.row_seats(r).contains(&seat) {
                r += 1;
            }
            format!("A-{}-{}", r + 1, seat - self.row_seats(r).start + 1)
        }

        fn has_block(&self, r: usize, n: i64) -> bool {
            let mut run = 0;
            for seat in self.row_seats(r) {
                run = if self.taken(seat) { 0 } else { run + 1 };
                if run >= n {
                    return true;
                }
            }
            false
        }

        fn active(&mut self, id: ReservationId) -> Result<usize, String> {
            let i = self
                .rows
                .iter()
                .position(|r| r.id == id)
                .ok_or("ReservationNotFound")?;
            let row = &mut self.rows[i];
            match row.status {
                ReservationStatus::Purchased => Err("AlreadyPurchased".into()),
                ReservationStatus::Reserved if row.expires > 0 => Ok(i),
                ReservationStatus::Reserved => {
                    row.status = ReservationStatus::Expired;
                    Err("InvalidOrExpired".into())
                }
                _ => Err("InvalidOrExpired".into()),
            }
        }

        /// Serves `op` as one request would be, given the ledger's answer for a best-available
        /// reserve (which the model checks rather than recomputes).
        fn serve(
            &mut self,
            op: &Operation,
            got: &Result<Reservation, DomainError>,
        ) -> Result<Vec<i64>, String> {
            match op {
                Operation::Reserve(r) => match r.seats.as_ref() {
                    Some(SeatRequest::Labels(labels)) => {
                        let seats: Vec<Option<i64>> = labels
                            .iter()
                            .map(|l| {
                                let total: i64 = self.plan.iter().sum();
                                (1..=total).find(|s| self.label(*s) == *l)
                            })
                            .collect();
                        if seats.iter().any(Option::is_none) {
                            return Err("422 seats".into());
                        }
                        let seats: Vec<i64> = seats.into_iter().flatten().collect();
                        let taken: Vec<String> = seats
                            .iter()
                            .filter(|s| self.taken(**s))
                            .map(|s| self.label(*s))
                            .collect();
                        if !taken.is_empty() {
                            return Err(format!("{:?}", DomainError::SeatUnavailable(taken)));
                        }
                        Ok(self.grant(seats, got))
                    }
                    Some(SeatRequest::Best {
                        quantity, together, ..
                    }) => {
                        let n = i64::from(*quantity);
                        let Ok(hold) = got else {
                            // Refused: only when no row has such a block (or not enough seats).
                            let possible = if *together {
                                (0..self.plan.len()).any(|r| self.has_block(r, n))
                            } else {
                                let total: i64 = self.plan.iter().sum();
                                (1..=total).filter(|s| !self.taken(*s)).count()
                                    >= usize::try_from(n).unwrap_or(0)
                            };
                            return if possible {
                                Err("a block existed".into())
                            } else {
                                Err(format!("{:?}", DomainError::SoldOut))
                            };
                        };
                        let seats: Vec<i64> = hold.seats.iter().map(|s| s.id.get()).collect();
                        if i64::try_from(seats.len()).ok() != Some(n)
                            || seats.iter().any(|s| self.taken(*s))
                        {
                            return Err(format!("not {n} free seats: {seats:?}"));
                        }
                        if *together {
                            let row = (0..self.plan.len())
                                .find(|r| self.row_seats(*r).contains(&seats[0]))
                                .unwrap_or(0);
                            let adjacent = seats.windows(2).all(|w| w[1] == w[0] + 1)
                                && seats.iter().all(|s| self.row_seats(row).contains(s));
                            if !adjacent || (0..row).any(|better| self.has_block(better, n)) {
                                return Err(format!("not the best adjacent block: {seats:?}"));
                            }
                        }
                        Ok(self.grant(seats, got))
                    }
                    None => Err("422 seats".into()),
                },
                Operation::Purchase(p) => {
                    let i = self.active(p.id)?;
                    self.rows[i].status = ReservationStatus::Purchased;
                    Ok(self.rows[i].seats.clone())
                }
                Operation::Cancel(c) => {
                    let i = self.active(c.id)?;
                    self.rows[i].status = ReservationStatus::Canceled;
                    Ok(self.rows[i].seats.clone())
                }
                Operation::Release(Release {
                    id,
                    part: ReleasePart::Seats(labels),
                }) => {
                    let i = self.active(*id)?;
                    let held: Vec<(i64, String)> = self.rows[i]
                        .seats
                        .iter()
                        .map(|s| (*s, self.label(*s)))
                        .collect();
                    if labels.iter().any(|l| !held.iter().any(|(_, h)| h == l))
                        || labels.len() >= held.len()
                    {
                        return Err("422 seats".into());
                    }
                    self.rows[i]
                        .seats
                        .retain(|s| !labels.contains(&self_label(&held, *s)));
                    Ok(self.rows[i].seats.clone())
                }
                other => Err(format!("not generated: {other:?}")),
            }
        }

        /// A new hold of `seats`, under the id the ledger gave it (if it granted one).
        fn grant(
            &mut self,
            mut seats: Vec<i64>,
            got: &Result<Reservation, DomainError>,
        ) -> Vec<i64> {
            seats.sort_unstable();
            self.rows.push(SeatRowModel {
                id: got.as_ref().map_or_else(
                    |_| ReservationId::generate(at(0), EventId::new(SEATED)),
                    |hold| hold.id,
                ),
                status: ReservationStatus::Reserved,
                expires: 600,
                seats: seats.clone(),
            });
            seats
        }
    }

    fn self_label(held: &[(i64, String)], seat: i64) -> String {
        held.iter()
            .find(|(s, _)| *s == seat)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }

    fn seat_plan(plan: &[i64]) -> Arc<SeatPlan> {
        let new = crate::seating::NewPlan {
            sections: vec![crate::seating::NewSection {
                name: "A".into(),
                ticket_type: None,
                rows: plan
                    .iter()
                    .enumerate()
                    .map(|(i, n)| crate::seating::NewRow {
                        name: (i + 1).to_string(),
                        seats: (1..=*n).map(|s| s.to_string()).collect(),
                        rank: None,
                    })
                    .collect(),
            }],
        };
        Arc::new(new.check().unwrap_or_else(|e| panic!("{e}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn a_batch_of_seat_requests_decides_as_one_at_a_time_and_never_gives_a_seat_twice(
            plan in proptest::collection::vec(1..6i64, 1..4),
            existing in proptest::collection::vec(
                (0..4usize, prop_oneof![Just(-30i64), Just(300i64)], 0..30usize, 1..3usize), 0..6),
            requests in proptest::collection::vec(
                (0..5usize, 0..30usize, 1..4usize, any::<bool>(), 0..8usize), 0..16),
        ) {
            let total: i64 = plan.iter().sum();
            let seat_plan = seat_plan(&plan);
            let mut model = SeatModel { rows: Vec::new(), plan: plan.clone() };
            // The store before the batch: rows holding free seats (past-due ones included).
            for (status, expires, first, n) in existing {
                let status = [ReservationStatus::Reserved, ReservationStatus::Purchased,
                    ReservationStatus::Canceled, ReservationStatus::Reserved][status];
                let seats: Vec<i64> = (0..i64::try_from(n).unwrap_or(1))
                    .map(|k| 1 + (i64::try_from(first).unwrap_or(0) + k) % total)
                    .collect();
                let mut seats = seats;
                seats.sort_unstable();
                seats.dedup();
                let stored = |r: &SeatRowModel| matches!(r.status, ReservationStatus::Reserved | ReservationStatus::Purchased);
                let clash = model.rows.iter().any(|r| stored(r) && r.seats.iter().any(|s| seats.contains(s)));
                if !clash {
                    model.rows.push(SeatRowModel {
                        id: ReservationId::generate(at(-100), EventId::new(SEATED)),
                        status,
                        expires: if status == ReservationStatus::Reserved { expires } else { 300 },
                        seats,
                    });
                }
            }
            let rows = model.rows.clone();
            let label = |seat: i64| model.label(seat);
            let ops: Vec<Operation> = requests.iter().map(|&(kind, a, n, together, pick)| {
                let quantity = Quantity::new(i64::try_from(n).unwrap_or(1), 10).unwrap_or(Quantity::ONE);
                let target = rows.get(pick).map_or_else(|| ReservationId::generate(at(0), EventId::new(SEATED)), |r| r.id);
                match kind {
                    0 => {
                        let mut labels: Vec<String> = (0..n)
                            .map(|k| {
                                let seat = 1 + (i64::try_from(a + k * 3).unwrap_or(0)) % (total + 1);
                                if seat > total { "A-9-9".into() } else { label(seat) }
                            })
                            .collect();
                        labels.dedup();
                        labels.sort();
                        labels.dedup();
                        let q = Quantity::new(i64::try_from(labels.len()).unwrap_or(1), 10).unwrap_or(Quantity::ONE);
                        Operation::Reserve(Reserve::seated(EventId::new(SEATED), q, None, SeatRequest::Labels(labels)))
                    }
                    1 => Operation::Reserve(Reserve::seated(EventId::new(SEATED), quantity, None,
                        SeatRequest::Best { quantity: quantity.get(), ticket_type: None, together })),
                    2 => Operation::Purchase(Purchase { id: target, payment_reference: None }),
                    3 => Operation::Cancel(Cancel { id: target }),
                    _ => {
                        let held = rows.get(pick).map(|r| r.seats.clone()).unwrap_or_default();
                        let labels = held.iter().take(1 + a % 2).map(|s| label(*s)).collect();
                        Operation::Release(Release { id: target, part: ReleasePart::Seats(labels) })
                    }
                }
            }).collect();

            // What the batch locks and reads.
            let stored = |r: &SeatRowModel| matches!(r.status, ReservationStatus::Reserved | ReservationStatus::Purchased);
            let held_before: i64 = rows.iter().filter(|r| r.status == ReservationStatus::Reserved).map(|r| i64::try_from(r.seats.len()).unwrap_or(0)).sum();
            let sold_before: i64 = rows.iter().filter(|r| r.status == ReservationStatus::Purchased).map(|r| i64::try_from(r.seats.len()).unwrap_or(0)).sum();
            let events = vec![LockedEvent {
                id: EventId::new(SEATED),
                capacity: i32::try_from(total).unwrap_or(1),
                purchased: i32::try_from(sold_before).unwrap_or(0),
                held: i32::try_from(held_before).unwrap_or(0),
                typed: false,
                seats: Some(5),
            }];
            let holders: Vec<(SeatId, Holder)> = rows.iter().filter(|r| stored(r)).flat_map(|r| {
                r.seats.iter().map(move |s| (SeatId::new(*s), if r.status == ReservationStatus::Purchased {
                    Holder::Sold { reservation: r.id }
                } else {
                    Holder::Held { reservation: r.id, until: at(r.expires) }
                }))
            }).collect();
            let map = SeatMap::new(EventId::new(SEATED), 5, Arc::clone(&seat_plan), holders.clone()).unwrap_or_else(|e| panic!("{e}"));
            let reservations: Vec<Reservation> = rows.iter().map(|r| Reservation {
                id: r.id,
                event_id: EventId::new(SEATED),
                status: r.status,
                quantity: i32::try_from(r.seats.len()).unwrap_or(1),
                customer: None,
                purchased_at: (r.status == ReservationStatus::Purchased).then(|| at(-1)),
                expires_at: Some(at(r.expires)),
                payment_reference: None,
                created_at: at(-100),
                updated_at: at(-100),
                lines: Vec::new(),
                seats: r.seats.iter().map(|s| HeldSeat { id: SeatId::new(*s), label: label(*s) }).collect(),
            }).collect();
            let mut store_rows = rows.clone();
            let mut ledger = Ledger::new(rules(None), &ops, &events, Inventory::default(), reservations, Vec::new())
                .with_seats(vec![map]);
            let outcomes: Vec<_> = ops.iter().map(|op| {
                ledger.decide(op, &mut |event: EventId, _| {
                    let holds = store_rows.iter_mut()
                        .filter(|r| r.status == ReservationStatus::Reserved && r.expires <= 0)
                        .map(|r| {
                            r.status = ReservationStatus::Expired;
                            ReleasedHold {
                                id: r.id, event, quantity: i32::try_from(r.seats.len()).unwrap_or(1),
                                lines: Vec::new(), seats: r.seats.iter().map(|s| SeatId::new(*s)).collect(),
                            }
                        })
                        .collect();
                    Ok(released(holds))
                }).unwrap_or_else(|e| panic!("{e}"))
            }).collect();

            for (op, outcome) in ops.iter().zip(&outcomes) {
                let expected = model.serve(op, outcome);
                let got = outcome.as_ref()
                    .map(|r| r.seats.iter().map(|s| s.id.get()).collect::<Vec<_>>())
                    .map_err(|e| match e {
                        DomainError::Validation { field, .. } => format!("422 {field}"),
                        other => format!("{other:?}"),
                    });
                prop_assert_eq!(got, expected, "{:?}", op);
            }

            // The batch's seat writes, applied to the holder rows the store had, give each
            // seat to at most one hold: the ones the model says own it.
            let (changes, maps) = ledger.into_parts();
            let mut table: BTreeMap<i64, ReservationId> = holders.iter().map(|(s, h)| (s.get(), h.reservation())).collect();
            for (_, seat) in &changes.seats_freed {
                prop_assert!(table.remove(&seat.get()).is_some(), "freed a free seat {}", seat);
            }
            for (to, from) in &changes.seats_moved {
                let holder = table.get_mut(&to.seat.get());
                prop_assert!(holder.as_ref().is_some_and(|h| **h == *from), "moved {:?}", to);
                if let Some(h) = holder { *h = to.reservation; }
            }
            for taken in &changes.seats_taken {
                prop_assert!(table.insert(taken.seat.get(), taken.reservation).is_none(), "seat {} twice", taken.seat);
            }
            let mut owners: BTreeMap<i64, usize> = BTreeMap::new();
            for (i, row) in model.rows.iter().enumerate() {
                if SeatModel::counts(row) {
                    for s in &row.seats {
                        prop_assert!(owners.insert(*s, i).is_none(), "the model gave seat {} twice", s);
                    }
                }
            }
            let live: BTreeSet<i64> = model.rows.iter()
                .filter(|r| SeatModel::counts(r))
                .flat_map(|r| r.seats.clone())
                .collect();
            let stored_live: BTreeSet<i64> = table.iter()
                .filter(|(_, id)| model.rows.iter().any(|r| r.id == **id && SeatModel::counts(r)))
                .map(|(s, _)| *s)
                .collect();
            prop_assert_eq!(&live, &stored_live);
            // Only rows of past-due holds no reserve needed stay behind, for the sweep.
            for (seat, id) in &table {
                let row = model.rows.iter().find(|r| r.id == *id);
                prop_assert!(row.is_some_and(|r| SeatModel::counts(r) || (r.status == ReservationStatus::Reserved && r.expires <= 0)), "seat {} left to {}", seat, id);
            }
            // The map the batch gives back shows the same.
            let now_map = &maps[0];
            for seat in 1..=total {
                let shown = now_map.holder(SeatId::new(seat)).map(Holder::reservation);
                prop_assert_eq!(shown, table.get(&seat).copied(), "seat {}", seat);
            }
            prop_assert_eq!(now_map.version, 5 + changes.seat_versions.get(&EventId::new(SEATED)).copied().unwrap_or(0));
        }
    }
}
