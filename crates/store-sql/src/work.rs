//! The domain's unit of work on a relational store, written once: [`SqlWork`] serves
//! [`UnitOfWork`] with the primitives each store writes its own way ([`Primitives`]: its
//! locks, its batch writes, its idempotency keys) and the ones that read and write alike on
//! both (the inventory, the reservations, a snapshot), run through the store's [`Runner`].

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::QueryableByName;
use domain::store::{
    Changes, Claims, CustomerOf, KeyTerm, Locked, PastDue, ReleasedHold, Seating, Stored,
    Timestamp, TypeOf, UnitOfWork, Usage,
};
use domain::{
    Counters, Event, EventId, EventSnapshot, IdempotencyClaim, Inventory, NewEvent, NewQuota,
    NewTicketType, Quota, QuotaId, Reservation, ReservationId, SeatPlan, StoreError, TicketType,
};

use crate::run::{Bind, Runner};
use crate::{IdRow, InventoryRow, SeatingRow, SnapshotRow};

/// A hold [`crate::release_statement`] marked `expired`: `id` (as text), `event_id`, `quantity`, and
/// its `lines` as [`crate::lines_column`] reads them.
#[derive(Debug, QueryableByName)]
pub struct ReleasedRow {
    /// The hold.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Its event.
    #[diesel(sql_type = BigInt)]
    pub event_id: i64,
    /// Its tickets.
    #[diesel(sql_type = Integer)]
    pub quantity: i32,
    /// Its lines.
    #[diesel(sql_type = Text)]
    pub lines: String,
    /// Its seats.
    #[diesel(sql_type = Text)]
    pub seats: String,
}

/// The primitives of a write transaction that a store writes in its own dialect and locking
/// model. Each method is the [`UnitOfWork`] method of the same name, with the same contract.
#[allow(missing_docs, clippy::missing_errors_doc)]
pub trait Primitives: Runner {
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event>;
    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked>;
    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event>;
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
    InventoryRow: QueryableByName<P::Backend>,
    IdRow: QueryableByName<P::Backend>,
    ReleasedRow: QueryableByName<P::Backend>,
    SeatingRow: QueryableByName<P::Backend>,
    crate::EndpointRow: QueryableByName<P::Backend>,
    crate::ClaimRow: QueryableByName<P::Backend>,
    crate::TargetRow: QueryableByName<P::Backend>,
{
    fn prune_messages(&mut self, before: Timestamp, limit: u32) -> Stored<u32> {
        crate::outbox::prune(self.0, before, limit)
    }

    fn create_endpoint(
        &mut self,
        new: &domain::webhook::NewEndpoint,
        secret: &str,
        now: Timestamp,
    ) -> Stored<domain::webhook::Endpoint> {
        crate::webhook::create_endpoint(self.0, new, secret, now)
    }

    fn remove_endpoint(&mut self, id: domain::webhook::EndpointId) -> Stored<bool> {
        crate::webhook::remove_endpoint(self.0, id)
    }

    fn claim_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Stored<Vec<domain::webhook::Delivery>> {
        crate::webhook::claim(self.0, now, lease_until, limit)
    }

    fn record_attempt(&mut self, attempt: &domain::webhook::Attempt) -> Stored<bool> {
        crate::webhook::record_attempt(self.0, attempt)
    }

    fn retry_delivery(
        &mut self,
        endpoint: domain::webhook::EndpointId,
        delivery: i64,
        now: Timestamp,
    ) -> Stored<bool> {
        crate::webhook::retry(self.0, endpoint, delivery, now)
    }

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
        crate::run::reservations(self.0, ids)
    }

    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>> {
        let binds = vec![
            Bind::events(&due.events),
            Bind::At(due.now),
            Bind::Int8(i64::from(due.limit)),
        ];
        let rows: Vec<ReleasedRow> = self.0.load(&crate::statements(P::DIALECT).release, binds)?;
        rows.into_iter()
            .map(|r| {
                Ok(ReleasedHold {
                    id: r.id.parse().map_err(|_| {
                        StoreError::internal(format!("corrupt row: reservation id {:?}", r.id))
                    })?,
                    event: EventId::new(r.event_id),
                    quantity: r.quantity,
                    lines: crate::parse_lines(&r.lines)?,
                    seats: crate::parse_seats(&r.seats)?
                        .into_iter()
                        .map(|s| s.id)
                        .collect(),
                })
            })
            .collect()
    }

    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>> {
        let binds = vec![Bind::At(now), Bind::Int8(i64::from(limit))];
        let rows: Vec<IdRow> = self
            .0
            .load(&crate::statements(P::DIALECT).due_events, binds)?;
        Ok(rows.into_iter().map(|r| EventId::new(r.id)).collect())
    }

    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>> {
        self.0.customer_usage(pairs, now)
    }

    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims> {
        self.0.claim_keys(claims, term)
    }

    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()> {
        self.0.apply(changes, now)?;
        crate::outbox::write(self.0, &changes.messages, now)
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
        Ok(crate::run::event_snapshots(self.0, &[id], now)?.pop())
    }

    fn read_seating(&mut self, event: EventId) -> Stored<Option<Seating>> {
        crate::seating::seating(self.0, event)
    }

    fn save_seating(&mut self, event: EventId, plan: &SeatPlan, now: Timestamp) -> Stored<()> {
        crate::seating::save_seating(self.0, event, plan, now)
    }
}
