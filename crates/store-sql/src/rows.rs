//! Rows both stores read alike: their columns are integers, which Diesel maps the same way on
//! PostgreSQL (`int4`, `int8`) and SQLite (`INTEGER`), so one type and one conversion to the
//! domain serve both.

use diesel::sql_types::{BigInt, Bool, Integer};
use diesel::QueryableByName;
use domain::store::LockedEvent;
use domain::{Event, EventAudit, EventId, EventSnapshot};

/// An event's ticket counters.
#[derive(Debug, QueryableByName)]
pub struct CountsRow {
    /// Tickets purchased.
    #[diesel(sql_type = Integer)]
    pub purchased_count: i32,
    /// Tickets of holds still marked `reserved`, past-due ones included.
    #[diesel(sql_type = Integer)]
    pub reserved_count: i32,
}

/// What a snapshot adds to the event's own columns: its counters and its past-due tickets.
#[derive(Debug, QueryableByName)]
pub struct SnapshotCounts {
    /// The counters.
    #[diesel(embed)]
    pub counts: CountsRow,
    /// Tickets of holds past due at the snapshot's instant.
    #[diesel(sql_type = Integer)]
    pub past_due: i32,
    /// Whether the event has quotas or ticket types.
    #[diesel(sql_type = Bool)]
    pub has_inventory: bool,
}

impl SnapshotCounts {
    /// The snapshot of `event` with these counts.
    pub fn of(self, event: Event) -> EventSnapshot {
        EventSnapshot {
            event,
            purchased: self.counts.purchased_count,
            held: self.counts.reserved_count,
            past_due: self.past_due,
            has_inventory: self.has_inventory,
        }
    }
}

/// An event snapshot: the event's own columns (`E`, the store's event row) and its counts.
#[derive(Debug, QueryableByName)]
pub struct SnapshotRow<E> {
    /// The event's columns.
    #[diesel(embed)]
    pub event: E,
    /// Its counters and past-due tickets.
    #[diesel(embed)]
    pub counts: SnapshotCounts,
}

/// A pool of tickets as a row: an event's or a quota's id, capacity and counters.
#[derive(Debug, QueryableByName)]
pub struct PoolRow {
    /// The event or quota.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its capacity (0 for a ticket type, which has none of its own).
    #[diesel(sql_type = Integer)]
    pub capacity: i32,
    /// Its counters.
    #[diesel(embed)]
    pub counts: CountsRow,
}

/// A locked event's row: `id, capacity, purchased_count, reserved_count, typed, seated,
/// seat_version`.
#[derive(Debug, QueryableByName)]
pub struct LockedRow {
    /// The event's pool.
    #[diesel(embed)]
    pub pool: PoolRow,
    /// Whether it has ticket types.
    #[diesel(sql_type = Bool)]
    pub typed: bool,
    /// Whether it has a seating plan.
    #[diesel(sql_type = Bool)]
    pub seated: bool,
    /// Its seat version.
    #[diesel(sql_type = BigInt)]
    pub seat_version: i64,
}

impl From<LockedRow> for LockedEvent {
    fn from(r: LockedRow) -> Self {
        Self {
            id: EventId::new(r.pool.id),
            capacity: r.pool.capacity,
            purchased: r.pool.counts.purchased_count,
            held: r.pool.counts.reserved_count,
            typed: r.typed,
            seats: r.seated.then_some(r.seat_version),
        }
    }
}

/// A recount of tickets: the rows (or lines) that count in an event, a quota or a type.
#[derive(Debug, QueryableByName)]
pub struct TicketsRow {
    /// Tickets of rows with status `purchased`.
    #[diesel(sql_type = BigInt)]
    pub purchased_tickets: i64,
    /// Tickets of rows with status `reserved`.
    #[diesel(sql_type = BigInt)]
    pub reserved_tickets: i64,
    /// Tickets of rows still active at the audit's instant.
    #[diesel(sql_type = BigInt)]
    pub active_tickets: i64,
}

/// What [`crate::audit_statement`] returns.
#[derive(Debug, QueryableByName)]
pub struct AuditRow {
    /// The event's capacity.
    #[diesel(sql_type = Integer)]
    pub capacity: i32,
    /// Its counters.
    #[diesel(embed)]
    pub counts: CountsRow,
    /// The recount of its rows.
    #[diesel(embed)]
    pub tickets: TicketsRow,
}

impl From<AuditRow> for EventAudit {
    fn from(r: AuditRow) -> Self {
        Self {
            capacity: r.capacity,
            purchased_counter: r.counts.purchased_count,
            held_counter: r.counts.reserved_count,
            purchased_tickets: r.tickets.purchased_tickets,
            reserved_tickets: r.tickets.reserved_tickets,
            active_tickets: r.tickets.active_tickets,
            quotas: Vec::new(),
            types: Vec::new(),
        }
    }
}
