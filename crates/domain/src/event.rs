//! Events, and what the API reports about them.

use chrono::{DateTime, Utc};

use crate::availability::available;
use crate::ids::EventId;
use crate::inventory::{Counters, InventorySnapshot, InventorySummary, QuotaAudit};
use crate::validation::{Capacity, EventName};

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// Its name.
    pub name: String,
    /// How many tickets it has.
    pub capacity: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its own fields last changed (reservations do not change it).
    pub updated_at: DateTime<Utc>,
}

/// A valid event to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its name.
    pub name: EventName,
    /// How many tickets it has.
    pub capacity: Capacity,
}

/// An operator's change to an event: each field present is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPatch {
    /// A new name.
    pub name: Option<EventName>,
    /// A new capacity; never below the tickets purchased and held by active holds.
    pub capacity: Option<Capacity>,
}

impl EventPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.capacity.is_none()
    }
}

/// What a store reads about an event in one consistent snapshot, for [`EventSummary`]. Counts
/// are in tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSnapshot {
    /// The event.
    pub event: Event,
    /// The `purchased` counter.
    pub purchased: i32,
    /// The `held` counter: tickets of holds with status `reserved`, past-due ones included.
    pub held: i32,
    /// Tickets of holds with status `reserved` whose `expires_at` has passed.
    pub past_due: i32,
    /// Whether it has quotas or ticket types (then a read adds them).
    pub has_inventory: bool,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// The events of the page.
    pub events: Vec<EventSummary>,
    /// Where the next page starts (its events have lower ids), when there is one.
    pub next: Option<EventId>,
}

/// An event with its ticket counts at one instant: `purchased + reserved + available = capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// The event.
    pub event: Event,
    /// Tickets purchased.
    pub purchased: i32,
    /// Tickets held by active holds only.
    pub reserved: i32,
    /// Tickets that may still be reserved.
    pub available: i32,
    /// Its quotas and ticket types with their counts, when it has any.
    pub inventory: Option<InventorySummary>,
}

impl EventSummary {
    /// Applies the availability rule to a snapshot: past-due holds count as neither reserved
    /// nor taken.
    pub fn from_snapshot(snapshot: EventSnapshot) -> Self {
        let reserved = (snapshot.held - snapshot.past_due).max(0);
        let free = available(
            snapshot.event.capacity,
            i64::from(snapshot.purchased),
            i64::from(reserved),
        );
        Self {
            purchased: snapshot.purchased,
            reserved,
            // Bounded by capacity, which is an i32.
            available: i32::try_from(free.max(0)).unwrap_or(i32::MAX),
            event: snapshot.event,
            inventory: None,
        }
    }

    /// Applies the availability rule to a snapshot of an event with quotas or ticket types:
    /// the event's own counts come from the inventory's snapshot too, so they agree with its
    /// quotas'.
    pub fn with_inventory(mut snapshot: EventSnapshot, inventory: &InventorySnapshot) -> Self {
        snapshot.purchased = inventory.counters.purchased;
        snapshot.held = inventory.counters.held;
        snapshot.past_due = inventory.past_due;
        snapshot.event.capacity = inventory.capacity;
        let mut summary = Self::from_snapshot(snapshot);
        summary.inventory = Some(InventorySummary::from_snapshot(inventory));
        summary
    }

    /// A new event has nothing reserved or purchased.
    pub fn of_new_event(event: Event) -> Self {
        Self {
            purchased: 0,
            reserved: 0,
            available: event.capacity,
            event,
            inventory: None,
        }
    }
}

/// The counters of an event next to a recount of its reservation rows, in tickets, for
/// checking the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAudit {
    /// The event's capacity.
    pub capacity: i32,
    /// The `purchased` counter.
    pub purchased_counter: i32,
    /// The `held` counter.
    pub held_counter: i32,
    /// Tickets of rows with status `purchased`.
    pub purchased_tickets: i64,
    /// Tickets of rows with status `reserved`, past-due ones included.
    pub reserved_tickets: i64,
    /// Tickets of rows with status `reserved` that are still active at the audit's instant.
    pub active_tickets: i64,
    /// Each named quota's counters next to a recount of the lines that draw from it.
    pub quotas: Vec<QuotaAudit>,
    /// Each ticket type's counters next to a recount of its lines.
    pub types: Vec<TypeAudit>,
}

/// A ticket type's counters next to a recount of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeAudit {
    /// The type.
    pub id: crate::TicketTypeId,
    /// Its counters.
    pub counters: Counters,
    /// Tickets of its purchased lines.
    pub purchased_tickets: i64,
    /// Tickets of its `reserved` lines, past-due ones included.
    pub reserved_tickets: i64,
}

impl EventAudit {
    /// Whether the counters equal the recount: the event's, every quota's and every type's.
    pub fn counters_match(&self) -> bool {
        i64::from(self.purchased_counter) == self.purchased_tickets
            && i64::from(self.held_counter) == self.reserved_tickets
            && self.quotas.iter().all(|q| {
                i64::from(q.counters.purchased) == q.purchased_tickets
                    && i64::from(q.counters.held) == q.reserved_tickets
            })
            && self.types.iter().all(|t| {
                i64::from(t.counters.purchased) == t.purchased_tickets
                    && i64::from(t.counters.held) == t.reserved_tickets
            })
    }

    /// Whether the invariant holds on the rows, for the event and for each of its quotas:
    /// `purchased + active <= capacity`.
    pub fn within_capacity(&self) -> bool {
        self.purchased_tickets + self.active_tickets <= i64::from(self.capacity)
            && self
                .quotas
                .iter()
                .all(|q| q.purchased_tickets + q.active_tickets <= i64::from(q.capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(capacity: i32) -> Event {
        let t = DateTime::from_timestamp(0, 0).unwrap_or_default();
        Event {
            id: EventId::new(1),
            name: "E".into(),
            capacity,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn summary_does_not_count_past_due_holds_as_reserved() {
        let s = EventSummary::from_snapshot(EventSnapshot {
            event: event(10),
            purchased: 3,
            held: 5,
            past_due: 2,
            has_inventory: false,
        });
        assert_eq!((s.purchased, s.reserved, s.available), (3, 3, 4));
        assert_eq!(s.purchased + s.reserved + s.available, s.event.capacity);
    }

    #[test]
    fn audit_checks_counters_and_capacity() {
        let audit = EventAudit {
            capacity: 2,
            purchased_counter: 1,
            held_counter: 1,
            purchased_tickets: 1,
            reserved_tickets: 1,
            active_tickets: 1,
            quotas: vec![],
            types: vec![],
        };
        assert!(audit.counters_match() && audit.within_capacity());
        assert!(!EventAudit {
            held_counter: 2,
            ..audit.clone()
        }
        .counters_match());
        assert!(!EventAudit {
            active_tickets: 2,
            ..audit
        }
        .within_capacity());
    }
}
