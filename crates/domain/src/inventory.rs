//! What a venue sells beyond one pool of tickets: quotas that ticket types share, the lines of
//! a hold, and how many tickets of a type are available.
//!
//! Every event has an implicit **root quota**: its own `capacity` and counters. Operators add
//! named **quotas** under it, and **ticket types** that draw from a set of the event's quotas
//! (zero or more named ones, and always the root). A hold of n tickets of type T takes n from
//! each of T's quotas, all or nothing, so
//!
//! ```text
//! available(T) = min over T's quotas q (and the root) of (capacity(q) - purchased(q) - active(q))
//! ```
//!
//! and the availability rule holds per quota. Quotas and types keep `purchased` and `held`
//! counters, like the event row, in tickets; `held` includes past-due holds until they are
//! released, so deciding on the counters can refuse too much, never grant too much.

use std::collections::BTreeMap;

use crate::availability::available;
use crate::ids::{EventId, QuotaId, TicketTypeId};
use crate::validation::{Capacity, EventName, Quantity};

/// The most lines one hold may have.
pub const MAX_LINES: usize = 10;

/// The most named quotas one ticket type may draw from.
pub const MAX_QUOTAS_PER_TYPE: usize = 16;

/// Tickets purchased and held, of a quota, a ticket type or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Tickets purchased.
    pub purchased: i32,
    /// Tickets of holds with status `reserved`, past-due ones included.
    pub held: i32,
}

/// A named quota as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// Its id.
    pub id: QuotaId,
    /// Its event.
    pub event_id: EventId,
    /// Its name.
    pub name: String,
    /// Its tickets.
    pub capacity: i32,
}

/// A quota to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuota {
    /// Its name.
    pub name: EventName,
    /// Its tickets.
    pub capacity: Capacity,
}

/// An operator's change to a quota: each field present is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaPatch {
    /// A new name.
    pub name: Option<EventName>,
    /// A new capacity; never below the quota's tickets purchased and held by active holds.
    pub capacity: Option<Capacity>,
}

/// A ticket type as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketType {
    /// Its id.
    pub id: TicketTypeId,
    /// Its event.
    pub event_id: EventId,
    /// Its name.
    pub name: String,
    /// The named quotas it draws from, ascending (the root is implied).
    pub quotas: Vec<QuotaId>,
    /// The most tickets of this type one hold may have, if limited.
    pub max_per_reservation: Option<u32>,
}

/// A ticket type to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketType {
    /// Its name.
    pub name: EventName,
    /// The named quotas it draws from: distinct, of its event.
    pub quotas: Vec<QuotaId>,
    /// The most tickets of this type one hold may have, if limited.
    pub max_per_reservation: Option<Quantity>,
}

/// One line of a hold: its tickets of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// The type.
    pub ticket_type: TicketTypeId,
    /// How many tickets of it.
    pub quantity: i32,
}

/// A line a client asks for (in a reserve or a release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRequest {
    /// The type.
    pub ticket_type: TicketTypeId,
    /// How many tickets of it.
    pub quantity: Quantity,
}

/// A ticket type as a write transaction sees it: its quotas and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedType {
    /// The type.
    pub ticket_type: TicketType,
    /// Its counters.
    pub counters: Counters,
}

/// A named quota's counters, read under its event's lock (every writer of a quota holds its
/// event's lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedQuota {
    /// The quota.
    pub id: QuotaId,
    /// Its event.
    pub event_id: EventId,
    /// Its capacity.
    pub capacity: i32,
    /// Its counters.
    pub counters: Counters,
}

/// The ticket types a transaction touches, and every named quota they draw from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// The types.
    pub types: Vec<LockedType>,
    /// Their quotas.
    pub quotas: Vec<LockedQuota>,
}

impl Inventory {
    /// Adds what `more` knows that this does not.
    pub fn extend(&mut self, more: Inventory) {
        for t in more.types {
            if !self
                .types
                .iter()
                .any(|k| k.ticket_type.id == t.ticket_type.id)
            {
                self.types.push(t);
            }
        }
        for q in more.quotas {
            if !self.quotas.iter().any(|k| k.id == q.id) {
                self.quotas.push(q);
            }
        }
    }

    /// The type `id`, if known.
    pub fn ticket_type(&self, id: TicketTypeId) -> Option<&LockedType> {
        self.types.iter().find(|t| t.ticket_type.id == id)
    }
}

/// An event's quotas and types as one read sees them, with the tickets of their past-due
/// holds, all from one snapshot (with the event's own counters again, so the root and the
/// quotas agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySnapshot {
    /// The event.
    pub event_id: EventId,
    /// The root quota: the event's capacity.
    pub capacity: i32,
    /// The event's counters.
    pub counters: Counters,
    /// Tickets of the event's past-due holds.
    pub past_due: i32,
    /// The named quotas, by id, with their counters.
    pub quotas: Vec<(Quota, Counters)>,
    /// The types, by id, with their counters and the tickets of their past-due holds.
    pub types: Vec<(TicketType, Counters, i32)>,
}

/// A quota with its counts at one instant: `purchased + reserved + available = capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSummary {
    /// The quota.
    pub quota: Quota,
    /// Tickets purchased.
    pub purchased: i32,
    /// Tickets held by active holds only.
    pub reserved: i32,
    /// Tickets that may still be held.
    pub available: i32,
}

/// A ticket type with its counts at one instant; `available` is the least of its quotas'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSummary {
    /// The type.
    pub ticket_type: TicketType,
    /// Its tickets purchased.
    pub purchased: i32,
    /// Its tickets held by active holds only.
    pub reserved: i32,
    /// Its tickets that may still be held.
    pub available: i32,
}

/// An event's quotas and types with their counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InventorySummary {
    /// The named quotas.
    pub quotas: Vec<QuotaSummary>,
    /// The ticket types.
    pub ticket_types: Vec<TypeSummary>,
}

fn clamp(n: i64) -> i32 {
    // Bounded by a capacity, which is an i32.
    i32::try_from(n.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX)
}

impl InventorySummary {
    /// Applies the availability rule to a snapshot: past-due holds count as neither reserved
    /// nor taken, per type and per quota (a quota's past-due tickets are those of the types
    /// that draw from it).
    pub fn from_snapshot(s: &InventorySnapshot) -> Self {
        let mut quota_past_due: BTreeMap<QuotaId, i64> = BTreeMap::new();
        for (t, _, past_due) in &s.types {
            for q in &t.quotas {
                *quota_past_due.entry(*q).or_default() += i64::from(*past_due);
            }
        }
        let root_active = i64::from(s.counters.held) - i64::from(s.past_due);
        let root_free = available(s.capacity, i64::from(s.counters.purchased), root_active);
        let mut free: BTreeMap<QuotaId, i64> = BTreeMap::new();
        let quotas = s
            .quotas
            .iter()
            .map(|(q, c)| {
                let reserved = i64::from(c.held) - quota_past_due.get(&q.id).copied().unwrap_or(0);
                let left = available(q.capacity, i64::from(c.purchased), reserved);
                free.insert(q.id, left);
                QuotaSummary {
                    quota: q.clone(),
                    purchased: c.purchased,
                    reserved: clamp(reserved),
                    available: clamp(left),
                }
            })
            .collect();
        let ticket_types = s
            .types
            .iter()
            .map(|(t, c, past_due)| {
                let left = t
                    .quotas
                    .iter()
                    .map(|q| free.get(q).copied().unwrap_or(0))
                    .fold(root_free, i64::min);
                TypeSummary {
                    ticket_type: t.clone(),
                    purchased: c.purchased,
                    reserved: clamp(i64::from(c.held) - i64::from(*past_due)),
                    available: clamp(left),
                }
            })
            .collect();
        Self {
            quotas,
            ticket_types,
        }
    }
}

/// A quota's counters next to a recount of the lines that draw from it, for checking the
/// stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaAudit {
    /// The quota.
    pub id: QuotaId,
    /// Its capacity.
    pub capacity: i32,
    /// Its counters.
    pub counters: Counters,
    /// Tickets of purchased lines of its types.
    pub purchased_tickets: i64,
    /// Tickets of `reserved` lines of its types, past-due ones included.
    pub reserved_tickets: i64,
    /// Tickets of active lines of its types.
    pub active_tickets: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(id: i64, capacity: i32) -> Quota {
        Quota {
            id: QuotaId::new(id),
            event_id: EventId::new(1),
            name: format!("q{id}"),
            capacity,
        }
    }

    fn kind(id: i64, quotas: &[i64]) -> TicketType {
        TicketType {
            id: TicketTypeId::new(id),
            event_id: EventId::new(1),
            name: format!("t{id}"),
            quotas: quotas.iter().copied().map(QuotaId::new).collect(),
            max_per_reservation: None,
        }
    }

    #[test]
    fn a_type_is_as_available_as_the_least_of_its_quotas_and_the_root() {
        let c = |purchased, held| Counters { purchased, held };
        let snapshot = InventorySnapshot {
            event_id: EventId::new(1),
            capacity: 100,
            counters: c(10, 20),
            past_due: 5,
            // Saturday 30 (2 sold, 8 held of which 3 past due), Sunday 40 (3 held).
            quotas: vec![(quota(1, 30), c(2, 8)), (quota(2, 40), c(0, 3))],
            types: vec![
                (kind(1, &[1]), c(2, 5), 3),
                (kind(2, &[1, 2]), c(0, 3), 0),
                (kind(3, &[]), c(8, 12), 2),
            ],
        };
        let s = InventorySummary::from_snapshot(&snapshot);
        let q: Vec<(i32, i32, i32)> = s
            .quotas
            .iter()
            .map(|q| (q.purchased, q.reserved, q.available))
            .collect();
        assert_eq!(q, vec![(2, 5, 23), (0, 3, 37)]);
        // Root: 100 - 10 - 15 = 75.
        let t: Vec<(i32, i32, i32)> = s
            .ticket_types
            .iter()
            .map(|t| (t.purchased, t.reserved, t.available))
            .collect();
        assert_eq!(t, vec![(2, 2, 23), (0, 3, 23), (8, 10, 75)]);
    }
}
