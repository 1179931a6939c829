//! A store that keeps everything in memory, for tests and simulations of the domain (feature
//! `memory`). It implements the primitives as plainly as possible and checks what the
//! databases' constraints check (counters within capacity, status changes only from
//! `reserved`), so a rule broken by the domain fails here as it would there.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use crate::error::{DomainError, StoreError};
use crate::event::{Event, EventAudit, EventSnapshot, NewEvent, TypeAudit};
use crate::idempotency::{ClaimOutcome, IdempotencyClaim, IdempotencyKey, StoredAnswer};
use crate::ids::{EventId, QuotaId, ReservationId, SeatId, TicketTypeId};
use crate::inventory::{
    Counters, Inventory, InventorySnapshot, Line, LockedQuota, LockedType, NewQuota, NewTicketType,
    Quota, QuotaAudit, TicketType,
};
use crate::outbox::{Message, StoredMessage};
use crate::reservation::{Reservation, ReservationStatus};
use crate::seating::{Holder, SeatPlan};
use crate::store::{
    Changes, Claims, CounterDelta, CustomerOf, KeyTerm, Locked, LockedEvent, PageRequest, PastDue,
    ReadStore, ReadWork, Readiness, Reads, ReleasedHold, Seating, Stored, Timestamp, TypeOf,
    UnitOfWork, Usage, Work, WriteStore,
};
use crate::webhook::{
    Attempt, AttemptOutcome, Delivery, DeliveryRecord, DeliveryStatus, Endpoint, EndpointId,
    NewEndpoint, Next,
};

#[derive(Debug, Clone)]
struct EventRow {
    event: Event,
    purchased: i32,
    held: i32,
    quotas: u32,
    types: u32,
    /// Its seating plan, if it has one, and its seat version.
    plan: Option<SeatPlan>,
    seat_version: i64,
    /// The number of its last message.
    message_seq: i64,
}

#[derive(Debug, Clone)]
struct KeyRecord {
    fingerprint: crate::idempotency::Fingerprint,
    answer: Option<StoredAnswer>,
    expires_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
struct State {
    last_event: i64,
    events: BTreeMap<EventId, EventRow>,
    reservations: HashMap<ReservationId, Reservation>,
    keys: BTreeMap<IdempotencyKey, KeyRecord>,
    last_quota: i64,
    quotas: BTreeMap<QuotaId, (Quota, Counters)>,
    last_type: i64,
    types: BTreeMap<TicketTypeId, (TicketType, Counters)>,
    /// Which hold or sale has each seat: one entry per seat at most, as a unique key.
    seat_holds: BTreeMap<(EventId, SeatId), ReservationId>,
    /// The outbox, by event and number: one entry per number, as a primary key.
    messages: BTreeMap<(EventId, i64), StoredMessage>,
    /// Webhook endpoints with their secrets and whether they were removed.
    endpoints: BTreeMap<EndpointId, (Endpoint, String, bool)>,
    /// Deliveries by id, with when each is next due.
    deliveries: BTreeMap<i64, (Delivery, DeliveryRecord)>,
}

/// An event's quotas and ticket types with their counters, as [`MemoryStore::inventory_rows`]
/// reads them.
pub type InventoryRows = (Vec<(Quota, Counters)>, Vec<(TicketType, Counters)>);

/// The in-memory store: one transaction at a time, each on a copy of the state that replaces
/// it on commit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The event's quotas and ticket types with their counters, as stored: for tests that
    /// recount them.
    pub fn inventory_rows(&self, id: EventId) -> InventoryRows {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let quotas = state
            .quotas
            .values()
            .filter(|(q, _)| q.event_id == id)
            .cloned()
            .collect();
        let types = state
            .types
            .values()
            .filter(|(t, _)| t.event_id == id)
            .cloned()
            .collect();
        (quotas, types)
    }

    /// The event, its `purchased` and `held` counters and its reservations, as stored: for
    /// tests that recount them.
    pub fn event_rows(&self, id: EventId) -> Option<(Event, i32, i32, Vec<Reservation>)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let row = state.events.get(&id)?;
        let holds = state
            .reservations
            .values()
            .filter(|r| r.event_id == id)
            .cloned()
            .collect();
        Some((row.event.clone(), row.purchased, row.held, holds))
    }
}

fn broken(message: impl Into<String>) -> DomainError {
    StoreError::internal(message).into()
}

impl WriteStore for MemoryStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let mut committed = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = committed.clone();
        work(&mut state)?;
        if let Some((key, _)) = state.keys.iter().find(|(_, r)| r.answer.is_none()) {
            return Err(broken(format!("{key:?} was claimed but got no answer")));
        }
        *committed = state;
        Ok(())
    }
}

fn snapshot(
    row: &EventRow,
    reservations: &HashMap<ReservationId, Reservation>,
    now: Timestamp,
) -> EventSnapshot {
    let past_due: i32 = reservations
        .values()
        .filter(|r| r.event_id == row.event.id)
        .filter(|r| r.status == ReservationStatus::Reserved && !r.is_active(now))
        .map(|r| r.quantity)
        .sum();
    EventSnapshot {
        event: row.event.clone(),
        purchased: row.purchased,
        held: row.held,
        past_due,
        has_inventory: row.quotas + row.types > 0,
    }
}

/// Tickets of `lines` that count in `quota`, of the types in `types`.
fn in_quota(
    lines: &[Line],
    quota: QuotaId,
    types: &BTreeMap<TicketTypeId, (TicketType, Counters)>,
) -> i64 {
    lines
        .iter()
        .filter(|l| {
            types
                .get(&l.ticket_type)
                .is_some_and(|(t, _)| t.quotas.contains(&quota))
        })
        .map(|l| i64::from(l.quantity))
        .sum()
}

/// Adds `by` to a counter, refusing what a database's CHECK would refuse.
fn bump(counters: &mut Counters, by: CounterDelta, capacity: Option<i32>) -> Stored<()> {
    let held = i64::from(counters.held) + by.held;
    let purchased = i64::from(counters.purchased) + by.purchased;
    if held < 0 || purchased < 0 || capacity.is_some_and(|c| held + purchased > i64::from(c)) {
        return Err(broken("counters out of range"));
    }
    counters.held = i32::try_from(held).map_err(|e| broken(e.to_string()))?;
    counters.purchased = i32::try_from(purchased).map_err(|e| broken(e.to_string()))?;
    Ok(())
}

impl ReadStore for MemoryStore {
    fn read(&self, work: &mut ReadWork<'_>) -> Result<(), DomainError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut *state)
    }
}

impl Reads for State {
    fn seat_versions(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>> {
        let mut found: Vec<(EventId, i64)> = ids
            .iter()
            .filter_map(|id| self.events.get(id))
            .filter(|row| row.plan.is_some())
            .map(|row| (row.event.id, row.seat_version))
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    fn seating(&mut self, event: EventId) -> Stored<Option<Seating>> {
        let Some(row) = self.events.get(&event) else {
            return Ok(None);
        };
        let Some(plan) = row.plan.clone() else {
            return Ok(None);
        };
        let mut holders = Vec::new();
        for ((of, seat), id) in self.seat_holds.range((event, SeatId::new(0))..) {
            if *of != event {
                break;
            }
            let hold = self
                .reservations
                .get(id)
                .ok_or_else(|| broken(format!("seat {seat} held by an unknown reservation")))?;
            let holder = match (hold.status, hold.expires_at) {
                (ReservationStatus::Purchased, _) => Holder::Sold { reservation: *id },
                (ReservationStatus::Reserved, Some(until)) => Holder::Held {
                    reservation: *id,
                    until,
                },
                _ => return Err(broken(format!("seat {seat} held by a final reservation"))),
            };
            holders.push((*seat, holder));
        }
        Ok(Some(Seating {
            version: row.seat_version,
            plan,
            holders,
        }))
    }

    fn message_heads(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>> {
        let mut found: Vec<(EventId, i64)> = ids
            .iter()
            .filter_map(|id| self.events.get(id))
            .map(|row| (row.event.id, row.message_seq))
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    fn messages(&mut self, event: EventId, after: i64, limit: u32) -> Stored<Vec<StoredMessage>> {
        Ok(self
            .messages
            .range((event, after.saturating_add(1))..=(event, i64::MAX))
            .take(limit as usize)
            .map(|(_, m)| *m)
            .collect())
    }

    fn endpoints(&mut self) -> Stored<Vec<Endpoint>> {
        Ok(self
            .endpoints
            .values()
            .filter(|(_, _, removed)| !removed)
            .map(|(e, _, _)| e.clone())
            .collect())
    }

    fn deliveries(&mut self, endpoint: EndpointId, limit: u32) -> Stored<Vec<DeliveryRecord>> {
        Ok(self
            .deliveries
            .values()
            .rev()
            .filter(|(d, _)| d.endpoint == endpoint)
            .take(limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn deliveries_due(&mut self, now: Timestamp) -> Stored<bool> {
        Ok(self.deliveries.values().any(|(_, r)| {
            r.status == DeliveryStatus::Pending && r.next_attempt_at.is_some_and(|at| at <= now)
        }))
    }

    fn delivery_backlog(&mut self) -> Stored<i64> {
        let pending = self
            .deliveries
            .values()
            .filter(|(_, r)| r.status == DeliveryStatus::Pending)
            .count();
        Ok(i64::try_from(pending).unwrap_or(i64::MAX))
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        // In the process itself: always reachable, and its schema is the code.
        Ok(Readiness {
            pending_migrations: 0,
            webhook_backlog: 0,
        })
    }

    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        Ok(ids
            .iter()
            .filter_map(|id| self.events.get(id))
            .map(|row| snapshot(row, &self.reservations, now))
            .collect())
    }

    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        Ok(self
            .events
            .values()
            .rev()
            .filter(|row| page.before.is_none_or(|b| row.event.id < b))
            .take(page.limit as usize)
            .map(|row| snapshot(row, &self.reservations, now))
            .collect())
    }

    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        let mut found: Vec<Reservation> = ids
            .iter()
            .filter_map(|id| self.reservations.get(id).cloned())
            .collect();
        found.sort_by_key(|r| r.id);
        Ok(found)
    }

    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>> {
        let Some(row) = self.events.get(&id) else {
            return Ok(None);
        };
        let holds: Vec<&Reservation> = self
            .reservations
            .values()
            .filter(|r| r.event_id == id)
            .collect();
        let sum = |tickets: &dyn Fn(&Reservation) -> i64, keep: &dyn Fn(&Reservation) -> bool| {
            holds
                .iter()
                .filter(|r| keep(r))
                .map(|r| tickets(r))
                .sum::<i64>()
        };
        let purchased = |r: &Reservation| r.status == ReservationStatus::Purchased;
        let reserved = |r: &Reservation| r.status == ReservationStatus::Reserved;
        let active = |r: &Reservation| r.is_active(now);
        let quotas = self
            .quotas
            .values()
            .filter(|(q, _)| q.event_id == id)
            .map(|(q, c)| {
                let tickets = |r: &Reservation| in_quota(&r.lines, q.id, &self.types);
                QuotaAudit {
                    id: q.id,
                    capacity: q.capacity,
                    counters: *c,
                    purchased_tickets: sum(&tickets, &purchased),
                    reserved_tickets: sum(&tickets, &reserved),
                    active_tickets: sum(&tickets, &active),
                }
            })
            .collect();
        let types = self
            .types
            .values()
            .filter(|(t, _)| t.event_id == id)
            .map(|(t, c)| {
                let tickets = |r: &Reservation| {
                    r.lines
                        .iter()
                        .filter(|l| l.ticket_type == t.id)
                        .map(|l| i64::from(l.quantity))
                        .sum()
                };
                TypeAudit {
                    id: t.id,
                    counters: *c,
                    purchased_tickets: sum(&tickets, &purchased),
                    reserved_tickets: sum(&tickets, &reserved),
                }
            })
            .collect();
        Ok(Some(EventAudit {
            capacity: row.event.capacity,
            purchased_counter: row.purchased,
            held_counter: row.held,
            purchased_tickets: sum(&Reservation::tickets, &purchased),
            reserved_tickets: sum(&Reservation::tickets, &reserved),
            active_tickets: sum(&Reservation::tickets, &active),
            quotas,
            types,
        }))
    }

    fn inventories(
        &mut self,
        events: &[EventId],
        now: Timestamp,
    ) -> Stored<Vec<InventorySnapshot>> {
        Ok(events
            .iter()
            .filter_map(|id| self.events.get(id))
            .filter(|row| row.quotas + row.types > 0)
            .map(|row| {
                let id = row.event.id;
                let past_due: Vec<&Reservation> = self
                    .reservations
                    .values()
                    .filter(|r| r.event_id == id)
                    .filter(|r| r.status == ReservationStatus::Reserved && !r.is_active(now))
                    .collect();
                InventorySnapshot {
                    event_id: id,
                    capacity: row.event.capacity,
                    counters: Counters {
                        purchased: row.purchased,
                        held: row.held,
                    },
                    past_due: past_due.iter().map(|r| r.quantity).sum(),
                    quotas: self
                        .quotas
                        .values()
                        .filter(|(q, _)| q.event_id == id)
                        .cloned()
                        .collect(),
                    types: self
                        .types
                        .values()
                        .filter(|(t, _)| t.event_id == id)
                        .map(|(t, c)| {
                            let due = past_due
                                .iter()
                                .flat_map(|r| r.lines.iter())
                                .filter(|l| l.ticket_type == t.id)
                                .map(|l| l.quantity)
                                .sum();
                            (t.clone(), *c, due)
                        })
                        .collect(),
                }
            })
            .collect())
    }
}

impl State {
    /// The outbox's insert: each event's messages numbered on from its last one.
    fn write_messages(&mut self, messages: &[Message], now: Timestamp) -> Stored<()> {
        for message in messages {
            let row = self
                .events
                .get_mut(&message.event)
                .ok_or_else(|| broken(format!("a message of unknown event {}", message.event)))?;
            row.message_seq += 1;
            let stored = StoredMessage {
                seq: row.message_seq,
                message: *message,
                created_at: now,
            };
            if self
                .messages
                .insert((message.event, row.message_seq), stored)
                .is_some()
            {
                return Err(broken("duplicate key: message number"));
            }
            self.fan_out(&stored);
        }
        Ok(())
    }

    /// The message's deliveries to every enabled endpoint that wants it.
    fn fan_out(&mut self, stored: &StoredMessage) {
        let wanted: Vec<(EndpointId, String, String)> = self
            .endpoints
            .values()
            .filter(|(e, _, _)| e.enabled && e.kinds.wants(stored.message.kind))
            .map(|(e, secret, _)| (e.id, e.url.clone(), secret.clone()))
            .collect();
        for (endpoint, url, secret) in wanted {
            let id = self
                .deliveries
                .keys()
                .next_back()
                .map_or(1, |last| last + 1);
            let delivery = Delivery {
                id,
                endpoint,
                url,
                secret,
                event: stored.message.event,
                seq: stored.seq,
                kind: stored.message.kind,
                reservation: stored.message.reservation,
                happened_at: stored.created_at,
                attempts: 0,
            };
            let record = DeliveryRecord {
                id,
                event: stored.message.event,
                seq: stored.seq,
                kind: stored.message.kind,
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(stored.created_at),
                last_status: None,
                last_error: None,
            };
            self.deliveries.insert(id, (delivery, record));
        }
    }

    /// Fails the pending deliveries of `endpoint`.
    fn fail_pending(&mut self, endpoint: EndpointId, why: &str) {
        for (delivery, record) in self.deliveries.values_mut() {
            if delivery.endpoint == endpoint && record.status == DeliveryStatus::Pending {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at = None;
                record.last_error = Some(why.to_owned());
            }
        }
    }

    fn due(&self, events: Option<&[EventId]>, now: Timestamp, limit: u32) -> Vec<Reservation> {
        let mut due: Vec<&Reservation> = self
            .reservations
            .values()
            .filter(|r| r.status == ReservationStatus::Reserved && !r.is_active(now))
            .filter(|r| events.is_none_or(|e| e.contains(&r.event_id)))
            .collect();
        due.sort_by_key(|r| (r.expires_at, r.id));
        due.into_iter().take(limit as usize).cloned().collect()
    }
}

impl UnitOfWork for State {
    fn create_event(&mut self, new: &NewEvent, now: Timestamp) -> Stored<Event> {
        self.last_event += 1;
        let event = Event {
            id: EventId::new(self.last_event),
            name: new.name.as_str().to_owned(),
            capacity: new.capacity.get(),
            created_at: now,
            updated_at: now,
        };
        self.events.insert(
            event.id,
            EventRow {
                event: event.clone(),
                purchased: 0,
                held: 0,
                quotas: 0,
                types: 0,
                plan: None,
                seat_version: 0,
                message_seq: 0,
            },
        );
        Ok(event)
    }

    fn lock_events(&mut self, ids: &[EventId], of_holds: &[ReservationId]) -> Stored<Locked> {
        let mut ids: Vec<EventId> = ids
            .iter()
            .copied()
            .chain(
                of_holds
                    .iter()
                    .filter_map(|r| self.reservations.get(r).map(|r| r.event_id)),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .iter()
            .filter_map(|id| self.events.get(id))
            .map(|row| LockedEvent {
                id: row.event.id,
                capacity: row.event.capacity,
                purchased: row.purchased,
                held: row.held,
                typed: row.types > 0,
                seats: row.plan.as_ref().map(|_| row.seat_version),
            })
            .collect())
    }

    fn update_event(&mut self, id: EventId, set: &NewEvent, now: Timestamp) -> Stored<Event> {
        let row = self
            .events
            .get_mut(&id)
            .ok_or_else(|| broken("update of an unknown event"))?;
        if i64::from(row.purchased) + i64::from(row.held) > i64::from(set.capacity.get()) {
            return Err(broken("counters above the new capacity"));
        }
        set.name.as_str().clone_into(&mut row.event.name);
        row.event.capacity = set.capacity.get();
        row.event.updated_at = now;
        Ok(row.event.clone())
    }

    fn read_reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        self.reservations(ids)
    }

    fn release_past_due(&mut self, due: PastDue) -> Stored<Vec<ReleasedHold>> {
        let now = due.now;
        let due = self.due(Some(&due.events), now, due.limit);
        Ok(due
            .into_iter()
            .filter_map(|r| {
                let row = self.reservations.get_mut(&r.id)?;
                row.status = ReservationStatus::Expired;
                row.updated_at = now;
                Some(ReleasedHold {
                    id: r.id,
                    event: r.event_id,
                    quantity: r.quantity,
                    lines: r.lines,
                    seats: r.seats.iter().map(|s| s.id).collect(),
                })
            })
            .collect())
    }

    fn due_events(&mut self, now: Timestamp, limit: u32) -> Stored<Vec<EventId>> {
        Ok(self
            .due(None, now, limit)
            .into_iter()
            .map(|r| r.event_id)
            .collect())
    }

    fn customer_usage(&mut self, pairs: &[CustomerOf], now: Timestamp) -> Stored<Vec<Usage>> {
        Ok(pairs
            .iter()
            .map(|(event, customer)| {
                let used = self
                    .reservations
                    .values()
                    .filter(|r| r.event_id == *event)
                    .filter(|r| r.customer.as_deref() == Some(customer.as_str()))
                    .filter(|r| r.status == ReservationStatus::Purchased || r.is_active(now))
                    .map(Reservation::tickets)
                    .sum();
                (*event, customer.clone(), used)
            })
            .collect())
    }

    fn claim_keys(&mut self, claims: &[IdempotencyClaim], term: KeyTerm) -> Stored<Claims> {
        let mut outcomes = Vec::with_capacity(claims.len());
        for claim in claims {
            match self.keys.get(&claim.key) {
                Some(record) if record.expires_at > term.now => {
                    let answer = record
                        .answer
                        .clone()
                        .ok_or_else(|| broken("a key claimed twice in one transaction"))?;
                    outcomes.push(ClaimOutcome::Existing {
                        fingerprint: record.fingerprint.clone(),
                        answer,
                    });
                }
                _ => {
                    self.keys.insert(
                        claim.key.clone(),
                        KeyRecord {
                            fingerprint: claim.fingerprint.clone(),
                            answer: None,
                            expires_at: term.until,
                        },
                    );
                    outcomes.push(ClaimOutcome::Claimed);
                }
            }
        }
        Ok(outcomes)
    }

    fn apply(&mut self, changes: &Changes, now: Timestamp) -> Stored<()> {
        for hold in &changes.holds {
            if self.reservations.insert(hold.id, hold.clone()).is_some() {
                return Err(broken(format!("duplicate reservation id {}", hold.id)));
            }
        }
        for change in &changes.hold_changes {
            let row = self
                .reservations
                .get_mut(&change.id)
                .filter(|r| r.status == ReservationStatus::Reserved)
                .ok_or_else(|| broken(format!("{} is not reserved", change.id)))?;
            row.expires_at = Some(change.expires_at);
            row.quantity = change.quantity;
            row.lines.clone_from(&change.lines);
            row.seats.clone_from(&change.seats);
            row.updated_at = now;
        }
        for change in &changes.statuses {
            let row = self
                .reservations
                .get_mut(&change.id())
                .filter(|r| r.status == ReservationStatus::Reserved)
                .ok_or_else(|| broken(format!("{} is not reserved", change.id())))?;
            row.updated_at = now;
            row.status = change.status();
            if row.status == ReservationStatus::Purchased {
                row.purchased_at = Some(now);
                row.payment_reference = change.payment_reference().map(str::to_owned);
            }
        }
        for (id, (_, delta)) in &changes.quota_counters {
            let (quota, counters) = self
                .quotas
                .get_mut(id)
                .ok_or_else(|| broken(format!("counters of unknown quota {id}")))?;
            bump(counters, *delta, Some(quota.capacity))?;
        }
        for (id, (_, delta)) in &changes.type_counters {
            let (_, counters) = self
                .types
                .get_mut(id)
                .ok_or_else(|| broken(format!("counters of unknown ticket type {id}")))?;
            bump(counters, *delta, None)?;
        }
        for (id, delta) in &changes.counters {
            let row = self
                .events
                .get_mut(id)
                .ok_or_else(|| broken(format!("counters of unknown event {id}")))?;
            let held = i64::from(row.held) + delta.held;
            let purchased = i64::from(row.purchased) + delta.purchased;
            if held < 0 || purchased < 0 || held + purchased > i64::from(row.event.capacity) {
                return Err(broken(format!("event {id}: counters out of range")));
            }
            row.held = i32::try_from(held).map_err(|e| broken(e.to_string()))?;
            row.purchased = i32::try_from(purchased).map_err(|e| broken(e.to_string()))?;
        }
        for (key, answer) in &changes.answers {
            let record = self
                .keys
                .get_mut(key)
                .ok_or_else(|| broken("an answer for an unclaimed key"))?;
            record.answer = Some(answer.clone());
        }
        for (event, seat) in &changes.seats_freed {
            self.seat_holds
                .remove(&(*event, *seat))
                .ok_or_else(|| broken(format!("seat {seat} of event {event} was not held")))?;
        }
        for (to, from) in &changes.seats_moved {
            let holder = self
                .seat_holds
                .get_mut(&(to.event, to.seat))
                .filter(|h| **h == *from)
                .ok_or_else(|| broken(format!("seat {} was not {from}'s", to.seat)))?;
            *holder = to.reservation;
        }
        for taken in &changes.seats_taken {
            // The unique key on the seat, as the databases have it.
            if self
                .seat_holds
                .insert((taken.event, taken.seat), taken.reservation)
                .is_some()
            {
                return Err(broken(format!(
                    "duplicate key: seat {} of event {} is held",
                    taken.seat, taken.event
                )));
            }
        }
        for (event, by) in &changes.seat_versions {
            let row = self
                .events
                .get_mut(event)
                .ok_or_else(|| broken(format!("seat version of unknown event {event}")))?;
            row.seat_version += by;
        }
        self.write_messages(&changes.messages, now)
    }

    fn prune_messages(&mut self, before: Timestamp, limit: u32) -> Stored<u32> {
        let old: Vec<(EventId, i64)> = self
            .messages
            .iter()
            .filter(|(_, m)| m.created_at < before)
            .take(limit as usize)
            .map(|(key, _)| *key)
            .collect();
        for key in &old {
            self.messages.remove(key);
        }
        let done: Vec<i64> = self
            .deliveries
            .iter()
            .filter(|(_, (d, r))| r.status != DeliveryStatus::Pending && d.happened_at < before)
            .take(limit as usize)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.deliveries.remove(&id);
        }
        Ok(u32::try_from(old.len()).unwrap_or(u32::MAX))
    }

    fn create_endpoint(
        &mut self,
        new: &NewEndpoint,
        secret: &str,
        now: Timestamp,
    ) -> Stored<Endpoint> {
        let id = EndpointId::new(self.endpoints.keys().next_back().map_or(1, |e| e.get() + 1));
        let endpoint = Endpoint {
            id,
            url: new.url.as_str().to_owned(),
            kinds: new.kinds.clone(),
            enabled: true,
            disabled_reason: None,
            created_at: now,
        };
        self.endpoints
            .insert(id, (endpoint.clone(), secret.to_owned(), false));
        Ok(endpoint)
    }

    fn remove_endpoint(&mut self, id: EndpointId) -> Stored<bool> {
        let Some((endpoint, _, removed)) = self.endpoints.get_mut(&id).filter(|e| !e.2) else {
            return Ok(false);
        };
        *removed = true;
        endpoint.enabled = false;
        endpoint.disabled_reason = Some("removed".into());
        self.fail_pending(id, "the endpoint was removed");
        Ok(true)
    }

    fn claim_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Stored<Vec<Delivery>> {
        let enabled: Vec<EndpointId> = self
            .endpoints
            .values()
            .filter(|(e, _, _)| e.enabled)
            .map(|(e, _, _)| e.id)
            .collect();
        let mut claimed = Vec::new();
        for (delivery, record) in self.deliveries.values_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            let due = record.next_attempt_at.is_some_and(|at| at <= now);
            if record.status == DeliveryStatus::Pending && due {
                record.next_attempt_at = Some(lease_until);
                if enabled.contains(&delivery.endpoint) {
                    claimed.push(delivery.clone());
                }
            }
        }
        Ok(claimed)
    }

    fn record_attempt(&mut self, attempt: &Attempt) -> Stored<bool> {
        let Some((delivery, record)) = self
            .deliveries
            .get_mut(&attempt.delivery)
            .filter(|(_, r)| r.attempts + 1 == attempt.number)
        else {
            return Ok(false);
        };
        delivery.attempts = attempt.number;
        record.attempts = attempt.number;
        (record.status, record.next_attempt_at) = match attempt.next {
            Next::Delivered => (DeliveryStatus::Delivered, None),
            Next::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            Next::GiveUp | Next::Disable => (DeliveryStatus::Failed, None),
        };
        (record.last_status, record.last_error) = match &attempt.outcome {
            AttemptOutcome::Status(code) => (Some(*code), None),
            AttemptOutcome::NoAnswer(why) => (None, Some(why.clone())),
        };
        if attempt.next == Next::Disable {
            let why = "the receiver answered 410 Gone";
            if let Some((endpoint, _, _)) = self.endpoints.get_mut(&attempt.endpoint) {
                endpoint.enabled = false;
                endpoint.disabled_reason = Some(why.into());
            }
            self.fail_pending(attempt.endpoint, why);
        }
        Ok(true)
    }

    fn retry_delivery(
        &mut self,
        endpoint: EndpointId,
        delivery: i64,
        now: Timestamp,
    ) -> Stored<bool> {
        let live = self.endpoints.get(&endpoint).is_some_and(|e| !e.2);
        match self.deliveries.get_mut(&delivery) {
            Some((d, record)) if live && d.endpoint == endpoint => {
                record.status = DeliveryStatus::Pending;
                record.next_attempt_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn purge_keys(&mut self, now: Timestamp, limit: u32) -> Stored<u32> {
        let expired: Vec<IdempotencyKey> = self
            .keys
            .iter()
            .filter(|(_, r)| r.expires_at <= now)
            .take(limit as usize)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.keys.remove(key);
        }
        Ok(u32::try_from(expired.len()).unwrap_or(u32::MAX))
    }

    fn read_inventory(&mut self, types: &[TypeOf]) -> Stored<Inventory> {
        let mut inventory = Inventory::default();
        let found = types
            .iter()
            .filter_map(|(event, id)| self.types.get(id).filter(|(t, _)| t.event_id == *event));
        for (t, c) in found {
            inventory.types.push(LockedType {
                ticket_type: t.clone(),
                counters: *c,
            });
            for q in &t.quotas {
                let (quota, counters) = self
                    .quotas
                    .get(q)
                    .ok_or_else(|| broken(format!("ticket type {} of unknown quota {q}", t.id)))?;
                if !inventory.quotas.iter().any(|k| k.id == *q) {
                    inventory.quotas.push(LockedQuota {
                        id: *q,
                        event_id: quota.event_id,
                        capacity: quota.capacity,
                        counters: *counters,
                    });
                }
            }
        }
        Ok(inventory)
    }

    fn read_quotas(&mut self, event: EventId, ids: &[QuotaId]) -> Stored<Vec<(Quota, Counters)>> {
        Ok(ids
            .iter()
            .filter_map(|id| self.quotas.get(id))
            .filter(|(q, _)| q.event_id == event)
            .cloned()
            .collect())
    }

    fn create_quota(&mut self, event: EventId, new: &NewQuota, _: Timestamp) -> Stored<Quota> {
        let row = self
            .events
            .get_mut(&event)
            .ok_or_else(|| broken("a quota of an unknown event"))?;
        row.quotas += 1;
        self.last_quota += 1;
        let quota = Quota {
            id: QuotaId::new(self.last_quota),
            event_id: event,
            name: new.name.as_str().to_owned(),
            capacity: new.capacity.get(),
        };
        self.quotas
            .insert(quota.id, (quota.clone(), Counters::default()));
        Ok(quota)
    }

    fn update_quota(&mut self, quota: &Quota, set: &NewQuota, _: Timestamp) -> Stored<Quota> {
        let (stored, counters) = self
            .quotas
            .get_mut(&quota.id)
            .ok_or_else(|| broken("update of an unknown quota"))?;
        if i64::from(counters.purchased) + i64::from(counters.held) > i64::from(set.capacity.get())
        {
            return Err(broken("quota counters above the new capacity"));
        }
        set.name.as_str().clone_into(&mut stored.name);
        stored.capacity = set.capacity.get();
        Ok(stored.clone())
    }

    fn create_ticket_type(
        &mut self,
        event: EventId,
        new: &NewTicketType,
        _: Timestamp,
    ) -> Stored<TicketType> {
        let row = self
            .events
            .get_mut(&event)
            .ok_or_else(|| broken("a ticket type of an unknown event"))?;
        row.types += 1;
        self.last_type += 1;
        let ticket_type = TicketType {
            id: TicketTypeId::new(self.last_type),
            event_id: event,
            name: new.name.as_str().to_owned(),
            quotas: new.quotas.clone(),
            max_per_reservation: new.max_per_reservation.map(crate::Quantity::get),
        };
        self.types
            .insert(ticket_type.id, (ticket_type.clone(), Counters::default()));
        Ok(ticket_type)
    }

    fn event_snapshot(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventSnapshot>> {
        Ok(self.event_snapshots(&[id], now)?.pop())
    }

    fn read_seating(&mut self, event: EventId) -> Stored<Option<Seating>> {
        self.seating(event)
    }

    fn save_seating(&mut self, event: EventId, plan: &SeatPlan, now: Timestamp) -> Stored<()> {
        let capacity = i32::try_from(plan.seat_count()).map_err(|e| broken(e.to_string()))?;
        if self.seat_holds.keys().any(|(e, _)| *e == event) {
            return Err(broken("a plan replaced while its seats are held"));
        }
        let row = self
            .events
            .get_mut(&event)
            .ok_or_else(|| broken("a plan for an unknown event"))?;
        row.plan = Some(plan.clone());
        row.seat_version += 1;
        row.event.capacity = capacity;
        row.event.updated_at = now;
        Ok(())
    }
}
