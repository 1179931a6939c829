//! The domain's unit of work on a relational store, written once: [`SqlWork`] serves
//! [`UnitOfWork`] with the primitives each store writes its own way ([`Primitives`]: its
//! locks, its batch writes, its idempotency keys) and the ones that read and write alike on
//! both (the inventory, the reservations, a snapshot), run through the store's [`Runner`].

use diesel::QueryableByName;
use domain::store::{
    Changes, Claims, CustomerOf, KeyTerm, Locked, PastDue, Reads, ReleasedHold, Stored, Timestamp,
    TypeOf, UnitOfWork, Usage,
};
use domain::{
    Counters, Event, EventId, EventSnapshot, IdempotencyClaim, Inventory, NewEvent, NewQuota,
    NewTicketType, Quota, QuotaId, Reservation, ReservationId, TicketType,
};

use crate::run::{Runner, SqlReads};
use crate::{AuditRow, IdRow, InventoryAuditRow, InventoryRow, SnapshotRow};

/// The primitives of a write transaction that a store writes in its own dialect and locking
/// model. Each is the [`UnitOfWork`] method of the same name, with the same contract.
#[allow(missing_docs, clippy::missing_errors_doc)]
pub trait Primitives: Runner {
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event>;
    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked>;
    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event>;
    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>>;
    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>>;
    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>>;
    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims>;
    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()>;
    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32>;
}

/// A store's connection inside a write transaction, seen as the domain's unit of work.
#[derive(Debug)]
pub struct SqlWork<'w, P>(pub &'w mut P);

impl<P: Primitives> UnitOfWork for SqlWork<'_, P>
where
    SnapshotRow<P::EventRow>: QueryableByName<P::Backend>,
    AuditRow: QueryableByName<P::Backend>,
    InventoryAuditRow: QueryableByName<P::Backend>,
    InventoryRow: QueryableByName<P::Backend>,
    IdRow: QueryableByName<P::Backend>,
{
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event> {
        self.0.create_event(new, now)
    }

    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked> {
        self.0.lock_events(ids, of_holds)
    }

    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event> {
        self.0.update_event(id, set, now)
    }

    fn read_reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        SqlReads(&mut *self.0).reservations(ids)
    }

    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>> {
        self.0.release_past_due(due)
    }

    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>> {
        self.0.due_events(now, limit)
    }

    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>> {
        self.0.customer_usage(pairs, now)
    }

    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims> {
        self.0.claim_keys(claims, term)
    }

    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()> {
        self.0.apply(changes, now)
    }

    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32> {
        self.0.purge_keys(now, limit)
    }

    fn read_inventory(&mut self, types: &[TypeOf]) -> Stored<Inventory> {
        crate::read_inventory(self.0, types)
    }

    fn read_quotas(&mut self, event: EventId, ids: &[QuotaId]) -> Stored<Vec<(Quota, Counters)>> {
        crate::read_quotas(self.0, event, ids)
    }

    fn create_quota(&mut self, event: EventId, new: &NewQuota, now: Timestamp) -> Stored<Quota> {
        crate::create_quota(self.0, event, new, now)
    }

    fn update_quota(&mut self, quota: &Quota, set: &NewQuota, now: Timestamp) -> Stored<Quota> {
        crate::update_quota(self.0, quota, set, now)
    }

    fn create_ticket_type(
        &mut self,
        event: EventId,
        new: &NewTicketType,
        now: Timestamp,
    ) -> Stored<TicketType> {
        crate::create_ticket_type(self.0, event, new, now)
    }

    fn event_snapshot(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventSnapshot>> {
        Ok(SqlReads(&mut *self.0).event_snapshots(&[id], now)?.pop())
    }
}
