//! The ports the stores implement.
//!
//! Writes go through [`WriteStore::write`]: one transaction, inside which the domain drives a
//! [`UnitOfWork`] of primitive operations (lock these events, release past-due holds, apply
//! these changes) and takes every decision itself with pure functions ([`crate::ledger`]).
//! Adapters implement the primitives only; no rule is written twice.
//!
//! The lock order, which every write follows so that no two transactions deadlock, on any
//! number of server processes: idempotency keys (ascending), then event rows (ascending id),
//! then reservation rows. Adapters lock what the primitives say, in the order given.
//!
//! Every call may fail with [`DomainError::Store`]: [`crate::StoreErrorKind::Unavailable`]
//! when the database cannot be reached or dropped the connection before the commit (nothing
//! was changed), [`crate::StoreErrorKind::OutcomeUnknown`] when the connection broke during the
//! commit itself, [`crate::StoreErrorKind::Internal`] otherwise. Adapters never let their own
//! error types through.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::event::{Event, EventAudit, EventSnapshot, NewEvent};
use crate::idempotency::{ClaimOutcome, IdempotencyClaim, IdempotencyKey, StoredAnswer};
use crate::ids::{EventId, QuotaId, ReservationId, SeatId, TicketTypeId};
use crate::inventory::{
    Counters, Inventory, InventorySnapshot, Line, NewQuota, NewTicketType, Quota, TicketType,
};
use crate::outbox::{Message, StoredMessage};
use crate::reservation::{Reservation, ReservationStatus};
use crate::seating::{HeldSeat, Holder, SeatPlan};
use crate::validation::Customer;
use crate::webhook::{Attempt, Delivery, DeliveryRecord, Endpoint, EndpointId, NewEndpoint};

/// An instant as the stores keep it: UTC, to the microsecond.
pub type Timestamp = DateTime<Utc>;

/// What a store call answers: its result, or a [`DomainError::Store`].
pub type Stored<T> = Result<T, DomainError>;

/// An event's counters, read under its row lock. Counts are in tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedEvent {
    /// The event.
    pub id: EventId,
    /// Its capacity.
    pub capacity: i32,
    /// Tickets purchased.
    pub purchased: i32,
    /// Tickets of holds with status `reserved`, past-due ones included.
    pub held: i32,
    /// Whether it has ticket types: then every reserve must name them.
    pub typed: bool,
    /// Its seat version, if it has a seating plan: then every reserve must name seats.
    pub seats: Option<i64>,
}

/// A past-due hold a store marked `expired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedHold {
    /// The hold.
    pub id: ReservationId,
    /// Its event.
    pub event: EventId,
    /// Its tickets.
    pub quantity: i32,
    /// Its lines, for a typed hold (empty otherwise).
    pub lines: Vec<Line>,
    /// Its seats, on a seated event (empty otherwise).
    pub seats: Vec<SeatId>,
}

/// The new state of a hold that stays `reserved`: extended, or partly released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldChange {
    /// The hold.
    pub id: ReservationId,
    /// Its event.
    pub event: EventId,
    /// When it now ends.
    pub expires_at: Timestamp,
    /// Its tickets now.
    pub quantity: i32,
    /// Its lines now, for a typed hold, with their new quantities (a line released whole is
    /// gone).
    pub lines: Vec<Line>,
    /// Its seats now, for a seated hold.
    pub seats: Vec<HeldSeat>,
}

/// A reservation leaving `reserved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The hold.
    pub id: ReservationId,
    /// Its event.
    pub event: EventId,
    /// Where it goes: `purchased`, `canceled` or `expired`.
    pub status: ReservationStatus,
    /// What the client recorded with a purchase.
    pub payment_reference: Option<String>,
}

impl StatusChange {
    /// The hold `id` of `event` goes to `status` (a final one), with no payment reference.
    pub fn new(id: ReservationId, event: EventId, status: ReservationStatus) -> Self {
        Self {
            id,
            event,
            status,
            payment_reference: None,
        }
    }

    /// The reservation it changes.
    pub fn id(&self) -> ReservationId {
        self.id
    }

    /// The status it writes.
    pub fn status(&self) -> ReservationStatus {
        self.status
    }

    /// The payment reference it records: a purchase's, if the client sent one.
    pub fn payment_reference(&self) -> Option<&str> {
        self.payment_reference.as_deref()
    }
}

/// How an event's counters change, in tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterDelta {
    /// Added to the `held` counter.
    pub held: i64,
    /// Added to the `purchased` counter.
    pub purchased: i64,
}

impl CounterDelta {
    /// Whether it changes nothing.
    pub fn is_zero(self) -> bool {
        self.held == 0 && self.purchased == 0
    }
}

/// Everything a transaction writes, decided by the domain. Stores apply it as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// New holds to insert (status `reserved`).
    pub holds: Vec<Reservation>,
    /// Reservations leaving `reserved`; a store writes each only while the row is still
    /// `reserved`, and fails the transaction if one is not.
    pub statuses: Vec<StatusChange>,
    /// Counter changes per event (the root quota), in id order (the lock order).
    pub counters: BTreeMap<EventId, CounterDelta>,
    /// Counter changes per named quota, with the quota's event.
    pub quota_counters: BTreeMap<QuotaId, (EventId, CounterDelta)>,
    /// Counter changes per ticket type, with the type's event.
    pub type_counters: BTreeMap<TicketTypeId, (EventId, CounterDelta)>,
    /// Holds that stay `reserved` with a new expiry or fewer tickets; a store writes each
    /// only while the row is still `reserved`, and fails the transaction if one is not.
    pub hold_changes: Vec<HoldChange>,
    /// First answers to store under their idempotency keys (claimed earlier in the
    /// transaction).
    pub answers: Vec<(IdempotencyKey, StoredAnswer)>,
    /// Seats given to holds: a store's unique key on the seat refuses one that is not free.
    pub seats_taken: Vec<SeatTaken>,
    /// Seats no hold has any more (their holds were canceled, expired or released them).
    pub seats_freed: Vec<(EventId, SeatId)>,
    /// Seats that went from one hold (the second of the pair) to another in this batch.
    pub seats_moved: Vec<(SeatTaken, ReservationId)>,
    /// How much each event's seat version goes up: one per hold whose seats changed hands or
    /// whose status changed.
    pub seat_versions: BTreeMap<EventId, i64>,
    /// What happened, for the outbox, in the order it happened; a store numbers each event's
    /// messages on from the last one it wrote.
    pub messages: Vec<Message>,
}

/// A seat given to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatTaken {
    /// The seat's event.
    pub event: EventId,
    /// The seat.
    pub seat: SeatId,
    /// The hold.
    pub reservation: ReservationId,
}

impl Changes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
            && self.statuses.is_empty()
            && self.counters.values().all(|d| d.is_zero())
            && self.quota_counters.values().all(|(_, d)| d.is_zero())
            && self.type_counters.values().all(|(_, d)| d.is_zero())
            && self.hold_changes.is_empty()
            && self.answers.is_empty()
            && self.seats_taken.is_empty()
            && self.seats_freed.is_empty()
            && self.seats_moved.is_empty()
            && self.seat_versions.is_empty()
            && self.messages.is_empty()
    }
}

/// The primitive operations of one write transaction. Each runs inside the transaction
/// [`WriteStore::write`] opened; none decides anything.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UnitOfWork {
    /// Inserts an event with nothing reserved, stamped `now`.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event>;

    /// Locks the rows of the events among `ids`, and of the events of the reservations among
    /// `of_holds`, that exist, in ascending id order (the lock order), and returns their
    /// counters in id order. Unknown ids are left out. A reservation's event is read without a
    /// lock: it never changes.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked>;

    /// Sets a locked event's name and capacity to those of `set`, stamping `updated_at` with
    /// `now`.
    ///
    /// # Errors
    /// Only [`DomainError::Store`] (a capacity below the counters breaks the store's own check:
    /// [`crate::StoreErrorKind::Internal`]).
    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event>;

    /// Reads the reservations among `ids` that exist, in id order, after their events were
    /// locked by this transaction (every writer of a reservation holds its event's lock, so
    /// the rows cannot change before the commit; a store may lock them too).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn read_reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>>;

    /// Marks up to `due.limit` holds of `due.events` (all locked by this transaction) that are
    /// `reserved` and past due at `due.now` as `expired`, oldest `expires_at` first, and
    /// returns them. Counters are not touched: the domain adjusts them through
    /// [`UnitOfWork::apply`].
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>>;

    /// The events of the (up to) `limit` holds that have been past due longest at `now`, in
    /// any order and with repeats, read without locking: what an expiry sweep locks next.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>>;

    /// For each (event, customer) pair, the tickets of that customer's reservations of that
    /// event that are purchased or active at `now`. Pairs with none may be left out.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>>;

    /// Claims each key for this transaction (in the order given: ascending, the lock order),
    /// keeping it until `term.until`. A key whose record expired at or before `term.now`
    /// counts as free. A key claimed by a concurrent transaction is waited for (it either
    /// commits, and the key is then [`ClaimOutcome::Existing`], or rolls back, and the key is
    /// free). Returns one outcome per claim, in order.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims>;

    /// Writes `changes`, stamping changed reservations with `now`. A status change finds the
    /// row `reserved` (the domain decided under its lock); if one does not, the store fails
    /// with [`crate::StoreErrorKind::Internal`] and the transaction rolls back.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()>;

    /// Deletes up to `limit` idempotency records that expired at or before `now`, and returns
    /// how many.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32>;

    /// The ticket types among `types` (each named with its event) that exist, with their
    /// counters, and every named quota they draw from, with its counters. The caller has
    /// locked those events (every writer of a type's or a quota's counters holds its event's
    /// lock).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn read_inventory(&mut self, types: &[TypeOf]) -> Stored<Inventory>;

    /// The named quotas of `event` among `ids` that exist, with their counters.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn read_quotas(&mut self, event: EventId, ids: &[QuotaId]) -> Stored<Vec<(Quota, Counters)>>;

    /// Inserts a quota of the locked `event` with nothing held, stamped `now`, and counts it on
    /// the event.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn create_quota(&mut self, event: EventId, new: &NewQuota, now: Timestamp) -> Stored<Quota>;

    /// Sets a quota's name and capacity (its event locked), stamping `updated_at`.
    ///
    /// # Errors
    /// Only [`DomainError::Store`] (a capacity below the counters breaks the store's check).
    fn update_quota(&mut self, quota: &Quota, set: &NewQuota, now: Timestamp) -> Stored<Quota>;

    /// Inserts a ticket type of the locked `event` drawing from its quotas `new.quotas` (all of
    /// that event), with nothing held, stamped `now`, and counts it on the event.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn create_ticket_type(
        &mut self,
        event: EventId,
        new: &NewTicketType,
        now: Timestamp,
    ) -> Stored<TicketType>;

    /// Reads an event's snapshot inside the transaction (see [`Reads::event_snapshots`]).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn event_snapshot(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventSnapshot>>;

    /// The seating plan of the locked `event` and every seat's holder (see
    /// [`Reads::seating`]).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn read_seating(&mut self, event: EventId) -> Stored<Option<Seating>>;

    /// Replaces the seating plan of the locked `event` with `plan` (no seat of the event is
    /// held or sold), sets the event's capacity to its seat count, and adds one to its seat
    /// version, stamped `now`.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn save_seating(&mut self, event: EventId, plan: &SeatPlan, now: Timestamp) -> Stored<()>;

    /// Deletes up to `limit` outbox messages written before `before`, and as many webhook
    /// deliveries that are done (delivered or failed) of messages that old, with their attempts;
    /// returns the messages deleted. Events keep their numbers: the next message goes on from
    /// the last one.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn prune_messages(&mut self, before: Timestamp, limit: u32) -> Stored<u32>;

    /// Adds a webhook endpoint with its signing `secret`; from this transaction's commit on,
    /// every message it wants gets a delivery to it.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn create_endpoint(
        &mut self,
        new: &NewEndpoint,
        secret: &str,
        now: Timestamp,
    ) -> Stored<Endpoint>;

    /// Removes the endpoint `id` (its deliveries and attempts stay, for the record; the pending
    /// ones fail); `false` when there is no such endpoint.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn remove_endpoint(&mut self, id: EndpointId) -> Stored<bool>;

    /// Up to `limit` pending deliveries of enabled endpoints due at `now`, oldest first, each
    /// leased until `lease_until` (no other claim takes it before then); servers claiming at
    /// once get different ones.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn claim_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Stored<Vec<Delivery>>;

    /// Records an attempt and what follows it (a 410 turns the endpoint off and fails its
    /// pending deliveries); `false`, changing nothing, when that attempt was recorded already.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn record_attempt(&mut self, attempt: &Attempt) -> Stored<bool>;

    /// Makes the delivery `delivery` of `endpoint` pending again, due at `now`; `false` when
    /// the endpoint has no such delivery.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn retry_delivery(
        &mut self,
        endpoint: EndpointId,
        delivery: i64,
        now: Timestamp,
    ) -> Stored<bool>;
}

/// The past-due holds [`UnitOfWork::release_past_due`] marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastDue {
    /// Of these events (locked by the transaction).
    pub events: Vec<EventId>,
    /// Past due at this instant.
    pub now: Timestamp,
    /// At most this many, oldest first.
    pub limit: u32,
}

/// A ticket type, named with its event.
pub type TypeOf = (EventId, TicketTypeId);

/// An (event, customer) pair whose tickets the per-customer limit counts.
pub type CustomerOf = (EventId, Customer);

/// A customer's purchased and active tickets of an event, as [`UnitOfWork::customer_usage`]
/// reads them.
pub type Usage = (EventId, Customer, i64);

/// What [`UnitOfWork::lock_events`] returns: the locked events' counters, in id order.
pub type Locked = Vec<LockedEvent>;

/// What [`UnitOfWork::claim_keys`] returns: one outcome per claim, in order.
pub type Claims = Vec<ClaimOutcome>;

/// When idempotency keys are claimed, and until when they are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTerm {
    /// The claim's instant: records that expired at or before it are free.
    pub now: Timestamp,
    /// How long a claimed key and its answer are kept.
    pub until: Timestamp,
}

/// The work a write transaction runs.
pub type Work<'a> = dyn FnMut(&mut dyn UnitOfWork) -> Result<(), DomainError> + 'a;

/// Write transactions.
pub trait WriteStore: Send + Sync {
    /// Runs `work` in one transaction: commits when it returns `Ok`, rolls back (and returns
    /// its error) when it returns `Err`.
    ///
    /// # Errors
    /// The error of `work`; [`DomainError::Store`] when the store fails, with
    /// [`crate::StoreErrorKind::OutcomeUnknown`] when the connection broke during the commit.
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError>;
}

/// An event's seating plan and its seats' holders, as of one seat version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seating {
    /// The event's seat version.
    pub version: i64,
    /// The plan.
    pub plan: SeatPlan,
    /// The seats held or sold, with their holders (a past-due hold's seats included).
    pub holders: Vec<(SeatId, Holder)>,
}

/// The reads of one connection. Each call is one statement: it sees everything committed
/// before it started, takes no lock, and waits for no writer.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Reads {
    /// The events among `ids` that exist, with their counters and the tickets of their
    /// past-due holds at `now`, each in one consistent snapshot. Unknown ids are left out.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>>;

    /// The quotas and ticket types of the `events` that have any, with the event's own
    /// counters and every past-due ticket by type at `now`, each event in one consistent
    /// snapshot. Events without quotas or types may be left out.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn inventories(&mut self, events: &[EventId], now: Timestamp)
        -> Stored<Vec<InventorySnapshot>>;

    /// Up to `page.limit` events with ids below `page.before` (all when `None`), newest
    /// (highest id) first, as in [`Reads::event_snapshots`].
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>>;

    /// The reservations among `ids` that exist, as stored, in id order.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>>;

    /// The event's counters next to a recount of its rows, and each of its quotas' and types'
    /// counters next to a recount of the lines that draw from them, in one consistent
    /// snapshot; `None` for an unknown event.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>>;

    /// The seat versions of the events among `ids` that have a seating plan, in id order
    /// (one statement: the seat map's cheap question, "has anything changed?").
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn seat_versions(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>>;

    /// The seating plan of `event`, if it has one, and every seat's holder, with the seat
    /// version they are at: one snapshot (a past-due hold's seats are returned as held; the
    /// domain shows them free).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn seating(&mut self, event: EventId) -> Stored<Option<Seating>>;

    /// The number of the last message of each event among `ids` that exists (0 before its
    /// first), in id order: the outbox's cheap question, "has anything happened?".
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn message_heads(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>>;

    /// Up to `limit` messages of `event` numbered above `after`, in number order.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn messages(&mut self, event: EventId, after: i64, limit: u32) -> Stored<Vec<StoredMessage>>;

    /// The webhook endpoints (removed ones left out), by id.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn endpoints(&mut self) -> Stored<Vec<Endpoint>>;

    /// The latest `limit` deliveries of `endpoint`, newest first.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn deliveries(&mut self, endpoint: EndpointId, limit: u32) -> Stored<Vec<DeliveryRecord>>;

    /// How many deliveries are pending.
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn delivery_backlog(&mut self) -> Stored<i64>;

    /// Whether any delivery of an enabled endpoint is due at `now`: the dispatcher's cheap
    /// question before it claims (a claim is a write).
    ///
    /// # Errors
    /// Only [`DomainError::Store`].
    fn deliveries_due(&mut self, now: Timestamp) -> Stored<bool>;

    /// Whether the store can serve: one round trip to the database, and whether its schema
    /// lacks migrations this build brings.
    ///
    /// # Errors
    /// Only [`DomainError::Store`]: [`crate::StoreErrorKind::Unavailable`] when the database
    /// cannot be reached.
    fn readiness(&mut self) -> Stored<Readiness>;
}

/// Which page of events [`Reads::list_events`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Only events with lower ids (`None`: from the newest).
    pub before: Option<EventId>,
    /// At most this many.
    pub limit: u32,
}

/// The work a read runs.
pub type ReadWork<'a> = dyn FnMut(&mut dyn Reads) -> Result<(), DomainError> + 'a;

/// Reads, on a connection of their own (never inside a write transaction).
pub trait ReadStore: Send + Sync {
    /// Runs `work` on one connection, outside any write transaction.
    ///
    /// # Errors
    /// The error of `work`; [`DomainError::Store`] when no connection can be had.
    fn read(&self, work: &mut ReadWork<'_>) -> Result<(), DomainError>;
}

/// What [`Reads::readiness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Migrations of this build not yet applied to the database (0: the schema is current).
    pub pending_migrations: usize,
    /// Webhook deliveries pending (a store's `readiness` leaves it 0; the use case reads it).
    pub webhook_backlog: i64,
}

/// A complete store: reads and write transactions.
pub trait Store: ReadStore + WriteStore {}

impl<T: ReadStore + WriteStore> Store for T {}
