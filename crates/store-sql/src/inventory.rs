//! The statements and rows of quotas, ticket types and the lines of holds, alike on both
//! stores: their columns are integers and text.
//!
//! Lists travel as text, so one column of one row carries them whatever their number: a
//! type's quotas as `"3,7"`; a hold's lines, stored in its own row, as the JSON array
//! `[[12,2],[14,1]]` of type id and quantity.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::QueryableByName;
use domain::store::{Stored, TypeOf};
use domain::{
    Counters, EventAudit, EventId, Inventory, InventorySnapshot, Line, LockedQuota, LockedType,
    Quota, QuotaAudit, QuotaId, StoreError, TicketType, TicketTypeId, TypeAudit,
};

use crate::{past_due, CountsRow, Dialect, PoolRow, TicketsRow};

/// A row of the inventory statements: an event (`kind` `event`), a quota or a ticket type.
#[derive(Debug, QueryableByName)]
pub struct InventoryRow {
    /// `event`, `quota` or `type`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The event.
    #[diesel(sql_type = BigInt)]
    pub event_id: i64,
    /// The quota's or the type's id (the event's, for an event).
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Its capacity (0 for a type).
    #[diesel(sql_type = Integer)]
    pub capacity: i32,
    /// Its counters.
    #[diesel(embed)]
    pub counts: CountsRow,
    /// A type's limit per hold.
    #[diesel(sql_type = Nullable<Integer>)]
    pub max_per_reservation: Option<i32>,
    /// A type's quotas, as `"3,7"`.
    #[diesel(sql_type = Text)]
    pub quotas: String,
    /// Tickets of past-due holds (reads only).
    #[diesel(sql_type = Integer)]
    pub past_due: i32,
}

fn corrupt(what: &str) -> domain::DomainError {
    StoreError::internal(format!("corrupt row: {what}")).into()
}

fn ids(text: &str) -> Stored<Vec<i64>> {
    let mut ids: Vec<i64> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| corrupt(&format!("id list {text:?}"))))
        .collect::<Stored<_>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// A hold's lines from their text (`[[12,2],[14,1]]`, or `""` for an untyped hold), by type id.
///
/// # Errors
/// [`domain::DomainError::Store`] for text no statement of this crate writes.
pub fn parse_lines(text: &str) -> Stored<Vec<Line>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(i64, i32)> =
        serde_json::from_str(text).map_err(|_| corrupt(&format!("lines {text:?}")))?;
    let mut lines: Vec<Line> = pairs
        .into_iter()
        .map(|(t, quantity)| Line {
            ticket_type: TicketTypeId::new(t),
            quantity,
        })
        .collect();
    lines.sort_unstable();
    Ok(lines)
}

/// The text a hold's `lines` column stores: `None` (NULL) for an untyped hold.
pub fn lines_text(lines: &[Line]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let pairs: Vec<String> = lines
        .iter()
        .map(|l| format!("[{},{}]", l.ticket_type.get(), l.quantity))
        .collect();
    Some(format!("[{}]", pairs.join(",")))
}

impl InventoryRow {
    fn counters(&self) -> Counters {
        Counters {
            purchased: self.counts.purchased_count,
            held: self.counts.reserved_count,
        }
    }

    fn quota(&self) -> Quota {
        Quota {
            id: QuotaId::new(self.id),
            event_id: EventId::new(self.event_id),
            name: self.name.clone(),
            capacity: self.capacity,
        }
    }

    fn ticket_type(&self) -> Stored<TicketType> {
        Ok(TicketType {
            id: TicketTypeId::new(self.id),
            event_id: EventId::new(self.event_id),
            name: self.name.clone(),
            quotas: ids(&self.quotas)?.into_iter().map(QuotaId::new).collect(),
            max_per_reservation: self.max_per_reservation.and_then(|m| u32::try_from(m).ok()),
        })
    }
}

/// The inventory of [`inventory_statement`]'s rows.
///
/// # Errors
/// [`domain::DomainError::Store`] for a corrupt list.
pub fn into_inventory(rows: &[InventoryRow]) -> Stored<Inventory> {
    let mut inventory = Inventory::default();
    for row in rows {
        if row.kind == "type" {
            inventory.types.push(LockedType {
                ticket_type: row.ticket_type()?,
                counters: row.counters(),
            });
        } else {
            inventory.quotas.push(LockedQuota {
                id: QuotaId::new(row.id),
                event_id: EventId::new(row.event_id),
                capacity: row.capacity,
                counters: row.counters(),
            });
        }
    }
    Ok(inventory)
}

/// The quotas of [`quotas_statement`]'s rows.
pub fn into_quotas(rows: &[InventoryRow]) -> Vec<(Quota, Counters)> {
    rows.iter().map(|r| (r.quota(), r.counters())).collect()
}

/// The snapshots of [`inventories_statement`]'s rows, one per event.
///
/// # Errors
/// [`domain::DomainError::Store`] for a corrupt list.
pub fn into_snapshots(rows: &[InventoryRow]) -> Stored<Vec<InventorySnapshot>> {
    let mut snapshots: Vec<InventorySnapshot> = Vec::new();
    for row in rows.iter().filter(|r| r.kind == "event") {
        snapshots.push(InventorySnapshot {
            event_id: EventId::new(row.event_id),
            capacity: row.capacity,
            counters: row.counters(),
            past_due: row.past_due,
            quotas: Vec::new(),
            types: Vec::new(),
        });
    }
    for row in rows.iter().filter(|r| r.kind != "event") {
        let Some(snapshot) = snapshots
            .iter_mut()
            .find(|s| s.event_id.get() == row.event_id)
        else {
            continue;
        };
        if row.kind == "quota" {
            snapshot.quotas.push((row.quota(), row.counters()));
        } else {
            snapshot
                .types
                .push((row.ticket_type()?, row.counters(), row.past_due));
        }
    }
    for s in &mut snapshots {
        s.quotas.sort_by_key(|(q, _)| q.id);
        s.types.sort_by_key(|(t, _, _)| t.id);
    }
    Ok(snapshots)
}

/// The text of the lines of the hold `r`, for a column (`''` for an untyped hold), which
/// [`parse_lines`] reads.
pub fn lines_column(r: &str) -> String {
    format!("COALESCE({r}.lines, '')")
}

/// The text of the quotas of the ticket type `t`.
fn quotas_column(dialect: Dialect, t: &str) -> String {
    format!(
        "COALESCE((SELECT {} FROM ticket_type_quotas x \
                    WHERE x.event_id = {t}.event_id AND x.ticket_type_id = {t}.id), '')",
        dialect.concat("x.quota_id")
    )
}

/// The types named, with their events, by the JSON pairs bound to placeholder 1
/// (`[[event, type], ...]`), and every quota they draw from.
pub fn inventory_statement(dialect: Dialect) -> String {
    let pairs = dialect.json_pairs(1);
    format!(
        "SELECT 'type' AS kind, t.event_id, t.id, t.name, 0 AS capacity, t.purchased_count,
                t.reserved_count, t.max_per_reservation, {} AS quotas, 0 AS past_due
           FROM {pairs} JOIN ticket_types t ON t.event_id = w.a AND t.id = w.b
         UNION
         SELECT 'quota', q.event_id, q.id, q.name, q.capacity, q.purchased_count,
                q.reserved_count, CAST(NULL AS INTEGER), '', 0
           FROM {pairs}
           JOIN ticket_type_quotas x ON x.event_id = w.a AND x.ticket_type_id = w.b
           JOIN quotas q ON q.event_id = x.event_id AND q.id = x.quota_id",
        quotas_column(dialect, "t")
    )
}

/// The columns of a quota as [`InventoryRow`] reads them, from `quotas` unaliased.
pub const QUOTA_COLUMNS: &str = "'quota' AS kind, event_id, id, name, capacity, purchased_count, \
     reserved_count, CAST(NULL AS INTEGER) AS max_per_reservation, '' AS quotas, 0 AS past_due";

/// Quota (placeholder) 2 of event 1 renamed 3, with capacity 4, stamped 5: the quota as it
/// now is.
pub fn update_quota_statement(dialect: Dialect) -> String {
    let p = |n| dialect.param(n);
    format!(
        "UPDATE quotas SET name = {}, capacity = {}, updated_at = {} \
          WHERE event_id = {} AND id = {} RETURNING {QUOTA_COLUMNS}",
        p(3),
        p(4),
        p(5),
        p(1),
        p(2)
    )
}

/// The quotas of event (placeholder) 1 among the list 2.
pub fn quotas_statement(dialect: Dialect) -> String {
    format!(
        "SELECT 'quota' AS kind, q.event_id, q.id, q.name, q.capacity, q.purchased_count,
                q.reserved_count, CAST(NULL AS INTEGER) AS max_per_reservation, '' AS quotas, 0 AS past_due
           FROM quotas q WHERE q.event_id = {} AND {}",
        dialect.param(1),
        dialect.in_list("q.id", 2)
    )
}

/// For the events of the list bound to 1, at the instant 2: each event's counters and
/// past-due tickets, its quotas, and its types with their past-due tickets, in one statement
/// (one snapshot).
pub fn inventories_statement(dialect: Dialect) -> String {
    let now = dialect.param(2);
    let event_past_due = format!(
        "COALESCE((SELECT sum(r.quantity) FROM reservations r \
                    WHERE r.event_id = e.id AND {}), 0)",
        past_due("r", &now)
    );
    let type_past_due = format!(
        "COALESCE((SELECT sum({}) FROM reservations r {} \
                    WHERE r.event_id = t.event_id AND {} AND {} = t.id), 0)",
        dialect.line_quantity(),
        dialect.lines_of("r"),
        past_due("r", &now),
        dialect.line_type()
    );
    format!(
        "SELECT 'event' AS kind, e.id AS event_id, e.id, '' AS name, e.capacity,
                e.purchased_count, e.reserved_count, CAST(NULL AS INTEGER) AS max_per_reservation,
                '' AS quotas, {} AS past_due
           FROM events e WHERE {}
         UNION ALL
         SELECT 'quota', q.event_id, q.id, q.name, q.capacity, q.purchased_count,
                q.reserved_count, CAST(NULL AS INTEGER), '', 0
           FROM quotas q WHERE {}
         UNION ALL
         SELECT 'type', t.event_id, t.id, t.name, 0, t.purchased_count, t.reserved_count,
                t.max_per_reservation, {}, {}
           FROM ticket_types t WHERE {}",
        dialect.int4(&event_past_due),
        dialect.in_list("e.id", 1),
        dialect.in_list("q.event_id", 1),
        quotas_column(dialect, "t"),
        dialect.int4(&type_past_due),
        dialect.in_list("t.event_id", 1),
    )
}

/// A row of [`audit_inventory_statement`].
#[derive(Debug, QueryableByName)]
pub struct InventoryAuditRow {
    /// `quota` or `type`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The quota or the type.
    #[diesel(embed)]
    pub pool: PoolRow,
    /// The recount of the lines that count in it.
    #[diesel(embed)]
    pub tickets: TicketsRow,
}

/// An event's audit: its own row of [`crate::audit_statement`] with the quotas and types of
/// [`audit_inventory_statement`]'s rows.
pub fn into_audit(event: crate::AuditRow, rows: &[InventoryAuditRow]) -> EventAudit {
    let (quotas, types) = into_audits(rows);
    EventAudit {
        quotas,
        types,
        ..EventAudit::from(event)
    }
}

fn into_audits(rows: &[InventoryAuditRow]) -> (Vec<QuotaAudit>, Vec<TypeAudit>) {
    let counters = |r: &InventoryAuditRow| Counters {
        purchased: r.pool.counts.purchased_count,
        held: r.pool.counts.reserved_count,
    };
    let mut quotas = Vec::new();
    let mut types = Vec::new();
    for r in rows {
        if r.kind == "quota" {
            quotas.push(QuotaAudit {
                id: QuotaId::new(r.pool.id),
                capacity: r.pool.capacity,
                counters: counters(r),
                purchased_tickets: r.tickets.purchased_tickets,
                reserved_tickets: r.tickets.reserved_tickets,
                active_tickets: r.tickets.active_tickets,
            });
        } else {
            types.push(TypeAudit {
                id: TicketTypeId::new(r.pool.id),
                counters: counters(r),
                purchased_tickets: r.tickets.purchased_tickets,
                reserved_tickets: r.tickets.reserved_tickets,
            });
        }
    }
    (quotas, types)
}

/// The counters of the quotas and types of event (placeholder) 1 next to a recount of the
/// lines that count in them, at the instant 2.
pub fn audit_inventory_statement(dialect: Dialect) -> String {
    let now = dialect.param(2);
    let tickets = |condition: &str| {
        dialect.int8(&format!(
            "COALESCE(sum(l.quantity) FILTER (WHERE {condition}), 0)"
        ))
    };
    let sums = format!(
        "{} AS purchased_tickets, {} AS reserved_tickets, {} AS active_tickets",
        tickets("l.status = 'purchased'"),
        tickets("l.status = 'reserved'"),
        tickets(&crate::active("l", &now))
    );
    let event = dialect.param(1);
    format!(
        "WITH held_lines AS (
             SELECT r.status, r.expires_at, {} AS ticket_type_id, {} AS quantity
               FROM reservations r {}
              WHERE r.event_id = {event})
         SELECT 'quota' AS kind, q.id, q.capacity, q.purchased_count, q.reserved_count, {sums}
           FROM quotas q
           LEFT JOIN ticket_type_quotas x ON x.event_id = q.event_id AND x.quota_id = q.id
           LEFT JOIN held_lines l ON l.ticket_type_id = x.ticket_type_id
          WHERE q.event_id = {event}
          GROUP BY q.id, q.capacity, q.purchased_count, q.reserved_count
         UNION ALL
         SELECT 'type', t.id, 0, t.purchased_count, t.reserved_count, {sums}
           FROM ticket_types t
           LEFT JOIN held_lines l ON l.ticket_type_id = t.id
          WHERE t.event_id = {event}
          GROUP BY t.id, t.purchased_count, t.reserved_count",
        dialect.line_type(),
        dialect.line_quantity(),
        dialect.lines_of("r"),
    )
}

/// The JSON text of `pairs`, for [`inventory_statement`].
pub fn json_pairs(pairs: &[TypeOf]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(e, t)| format!("[{},{}]", e.get(), t.get()))
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_lists_round_trip_through_their_text() {
        assert_eq!(
            parse_lines("[[14,1],[12,2]]").ok(),
            Some(vec![
                Line {
                    ticket_type: TicketTypeId::new(12),
                    quantity: 2
                },
                Line {
                    ticket_type: TicketTypeId::new(14),
                    quantity: 1
                }
            ])
        );
        assert_eq!(parse_lines("").ok(), Some(vec![]));
        assert!(parse_lines("12").is_err());
        let lines = [Line {
            ticket_type: TicketTypeId::new(3),
            quantity: 2,
        }];
        assert_eq!(
            parse_lines(&lines_text(&lines).unwrap_or_default()).ok(),
            Some(lines.to_vec())
        );
        assert_eq!(lines_text(&[]), None);
        assert_eq!(ids("7,3").ok(), Some(vec![3, 7]));
        assert_eq!(
            json_pairs(&[(EventId::new(1), TicketTypeId::new(2))]),
            "[[1,2]]"
        );
    }
}
