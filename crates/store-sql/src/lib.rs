//! The conditions every relational store's statements rely on, and the statements that read
//! the same on PostgreSQL and SQLite, written once.
//!
//! Both schemas name their tables and columns alike (`migrations/postgres`,
//! `migrations/sqlite`), and SQLite compares its fixed-width UTC timestamp text in time order,
//! so one text serves both where only the placeholders (`$1` or `?1`) and the casts differ:
//! [`Dialect`] supplies those. Each function takes the alias of the table it speaks of and
//! the placeholder of the instant it is decided at; the adapters build their statement texts
//! from these once, at first use.
//!
//! The row types hold the rows whose columns read alike on both, and their conversion to the
//! domain's types. The domain decides with the same rules in Rust (`domain::availability`); these are what
//! the stores' reads, lazy release and sweep must agree with.

use std::sync::LazyLock;

mod edit;
mod inventory;
mod outbox;
mod rows;
mod run;
mod seating;
mod webhook;
mod work;

pub use edit::{create_quota, create_ticket_type, EditStatements, IdRow};
pub use inventory::{
    audit_inventory_statement, into_audit, into_inventory, into_quotas, into_snapshots,
    inventories_statement, inventory_statement, json_pairs, lines_column, lines_text, parse_lines,
    quotas_statement, update_quota_statement, InventoryAuditRow, InventoryRow, QUOTA_COLUMNS,
};
pub use outbox::MessageRow;
pub use rows::{AuditRow, CountsRow, LockedRow, PoolRow, SnapshotCounts, SnapshotRow, TicketsRow};
pub use run::{read_inventory, read_quotas, update_quota, Bind, Runner, SqlReads};
pub use seating::{parse_seats, seats_column, seats_text, PairRow, SeatingRow, SeatingStatements};
pub use webhook::{ClaimRow, CountRow, DeliveryRow, EndpointRow, TargetRow};
pub use work::{Primitives, ReleasedRow, SqlWork};

/// The SQL dialect a statement is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `$1` placeholders, `::int4` casts.
    Postgres,
    /// `?1` placeholders, integers of any width.
    Sqlite,
}

impl Dialect {
    /// The placeholder of bound value `n` (1-based).
    pub fn param(self, n: u8) -> String {
        match self {
            Self::Postgres => format!("${n}"),
            Self::Sqlite => format!("?{n}"),
        }
    }

    /// `column` is one of the values of the list bound to placeholder `n`: a PostgreSQL
    /// array, or a SQLite JSON array (one text whatever the number of values: SQLite allows
    /// at most 32,766 placeholders in a statement).
    pub fn in_list(self, column: &str, n: u8) -> String {
        match self {
            Self::Postgres => format!("{column} = ANY(${n})"),
            Self::Sqlite => format!("{column} IN (SELECT value FROM json_each(?{n}))"),
        }
    }

    /// The texts of `expr` over a group's rows, joined by commas (`''` for none is the
    /// caller's `COALESCE`).
    pub fn concat(self, expr: &str) -> String {
        match self {
            Self::Postgres => format!("string_agg(({expr})::text, ',')"),
            Self::Sqlite => format!("group_concat({expr}, ',')"),
        }
    }

    /// A table `w (a, b)` of the integer pairs of the JSON array bound to placeholder `n`
    /// (`[[1, 2], [1, 3]]`): one text whatever the number of pairs, on both stores.
    pub fn json_pairs(self, n: u8) -> String {
        match self {
            Self::Postgres => format!(
                "(SELECT (v->>0)::int8 AS a, (v->>1)::int8 AS b \
                    FROM jsonb_array_elements(${n}::jsonb) AS v) w"
            ),
            Self::Sqlite => format!(
                "(SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS a, \
                         CAST(json_extract(value, '$[1]') AS INTEGER) AS b \
                    FROM json_each(?{n})) w"
            ),
        }
    }

    /// The lines of the hold `r`, one row `j` each, for a `FROM` after `r`: an untyped hold
    /// (`lines` NULL) has none. [`Dialect::line_type`] and [`Dialect::line_quantity`] read a row.
    pub fn lines_of(self, r: &str) -> String {
        match self {
            Self::Postgres => {
                format!("CROSS JOIN LATERAL jsonb_array_elements({r}.lines::jsonb) AS j")
            }
            Self::Sqlite => format!("CROSS JOIN json_each({r}.lines) AS j"),
        }
    }

    /// The ticket type of a line of [`Dialect::lines_of`].
    pub fn line_type(self) -> String {
        self.int8("j.value ->> 0")
    }

    /// The quantity of a line of [`Dialect::lines_of`].
    pub fn line_quantity(self) -> String {
        self.int4("j.value ->> 1")
    }

    /// A table `l (value)` of the list bound to placeholder `n`, for a `FROM`.
    pub fn list_table(self, n: u8) -> String {
        match self {
            Self::Postgres => format!("unnest(${n}::bigint[]) AS l (value)"),
            Self::Sqlite => format!("json_each(?{n}) AS l"),
        }
    }

    /// `expr` as a 32-bit integer.
    pub fn int4(self, expr: &str) -> String {
        match self {
            Self::Postgres => format!("({expr})::int4"),
            Self::Sqlite => expr.to_owned(),
        }
    }

    /// `expr` as a 64-bit integer.
    pub fn int8(self, expr: &str) -> String {
        match self {
            Self::Postgres => format!("({expr})::int8"),
            Self::Sqlite => expr.to_owned(),
        }
    }
}

/// A hold of `r` that is still marked `reserved` but whose `expires_at` has passed at `now`:
/// it no longer counts, though the counters still hold its tickets until it is released.
pub fn past_due(r: &str, now: &str) -> String {
    format!("{r}.status = 'reserved' AND {r}.expires_at <= {now}")
}

/// A hold of `r` that holds its tickets at `now`: `reserved` and not yet due.
pub fn active(r: &str, now: &str) -> String {
    format!("{r}.status = 'reserved' AND {r}.expires_at > {now}")
}

/// A reservation of `r` that counts toward its customer's limit at `now`: purchased, or an
/// active hold.
pub fn counts_for_customer(r: &str, now: &str) -> String {
    format!("({r}.status = 'purchased' OR ({}))", active(r, now))
}

/// The guard of every status change: the row of `r` is still `reserved`. Written as a filter
/// no index can serve, so PostgreSQL finds the rows by their ids whatever its statistics say.
pub fn still_reserved(r: &str) -> String {
    format!("({r}.status = 'reserved') IS TRUE")
}

/// An idempotency record of `k` that expired at or before `now`: its key is free again.
pub fn key_expired(k: &str, now: &str) -> String {
    format!("{k}.expires_at <= {now}")
}

/// The columns of an event snapshot, from `events e`: the event, its counters, and the
/// tickets of its past-due holds at `now` (a range scan of the `(event_id, status,
/// expires_at)` index, which the sweep keeps short), all from one snapshot.
fn snapshot_columns(dialect: Dialect, now: &str) -> String {
    let past_due = format!(
        "COALESCE((SELECT sum(r.quantity) FROM reservations r WHERE r.event_id = e.id AND {}), 0)",
        past_due("r", now)
    );
    format!(
        "e.id, e.name, e.capacity, e.purchased_count, e.reserved_count, e.created_at, \
         e.updated_at, {} AS past_due, \
         (e.quota_count + e.ticket_type_count > 0) AS has_inventory",
        dialect.int4(&past_due)
    )
}

/// The statements of one dialect that read the same on every store, built once.
#[derive(Debug)]
pub struct Statements {
    /// See [`snapshots_statement`].
    pub snapshots: String,
    /// See [`page_statement`].
    pub page: String,
    /// See [`audit_statement`].
    pub audit: String,
    /// See [`inventory_statement`].
    pub inventory: String,
    /// See [`quotas_statement`].
    pub quotas: String,
    /// See [`inventories_statement`].
    pub inventories: String,
    /// See [`audit_inventory_statement`].
    pub audit_inventory: String,
    /// See [`reservations_statement`].
    pub reservations: String,
    /// See [`update_quota_statement`].
    pub update_quota: String,
    /// See [`release_statement`].
    pub release: String,
    /// See [`due_events_statement`].
    pub due_events: String,
}

/// The shared statements of `dialect`.
pub fn statements(dialect: Dialect) -> &'static Statements {
    fn build(dialect: Dialect) -> Statements {
        Statements {
            snapshots: snapshots_statement(dialect),
            page: page_statement(dialect),
            audit: audit_statement(dialect),
            inventory: inventory_statement(dialect),
            quotas: quotas_statement(dialect),
            inventories: inventories_statement(dialect),
            audit_inventory: audit_inventory_statement(dialect),
            reservations: reservations_statement(dialect),
            update_quota: update_quota_statement(dialect),
            release: release_statement(dialect),
            due_events: due_events_statement(dialect),
        }
    }
    static POSTGRES: LazyLock<Statements> = LazyLock::new(|| build(Dialect::Postgres));
    static SQLITE: LazyLock<Statements> = LazyLock::new(|| build(Dialect::Sqlite));
    match dialect {
        Dialect::Postgres => &POSTGRES,
        Dialect::Sqlite => &SQLITE,
    }
}

/// The snapshots of the events whose ids are the list bound to placeholder 1, at the
/// instant bound to 2.
pub fn snapshots_statement(dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM events e WHERE {}",
        snapshot_columns(dialect, &dialect.param(2)),
        dialect.in_list("e.id", 1)
    )
}

/// A page of event snapshots, newest first: up to (placeholder) 3 events with ids at most 1,
/// at the instant 2.
pub fn page_statement(dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM events e WHERE e.id <= {} ORDER BY e.id DESC LIMIT {}",
        snapshot_columns(dialect, &dialect.param(2)),
        dialect.param(1),
        dialect.param(3)
    )
}

/// The reservations whose ids are the list bound to placeholder 1, in id order, each with
/// the text of its lines. No row lock: inside a write transaction every writer of a
/// reservation holds its event's lock, so the rows read cannot change before the commit
/// (and the writes re-check `status = 'reserved'` all the same).
pub fn reservations_statement(dialect: Dialect) -> String {
    format!(
        "SELECT r.id, r.event_id, r.status, r.quantity, r.customer, r.purchased_at, r.expires_at, \
                r.payment_reference, r.created_at, r.updated_at, {} AS lines, {} AS seats \
           FROM reservations r WHERE {} ORDER BY r.id",
        lines_column("r"),
        seats_column("r"),
        dialect.in_list("r.id", 1)
    )
}

/// Marks up to (placeholder) 3 holds of the events of list 1 that are past due at 2
/// `expired`, oldest first, returning each hold's `id` (as text), `event_id`, `quantity` and
/// `lines`. The events are locked by the caller's transaction, so no other writer is changing
/// these rows.
///
/// On PostgreSQL, per event, with `LATERAL`, through the `(event_id, status, expires_at)`
/// index: with `event_id = ANY($1)` the index cannot return the rows in `expires_at` order (not
/// on PostgreSQL 15), so the planner read and sorted every past-due hold of the events to keep
/// the oldest few: 150–240 ms under the event's lock with 700,000 of them (found by `just
/// faults`' sweep scenario), against 5 ms this way. Plans here must not depend on statistics (a
/// new database has none, and a prepared statement keeps its first generic plan while tables
/// grow): the statement leaves the planner only index paths driven by the batch's keys, and
/// [`still_reserved`] is a filter no index can serve, so the rows are found by their ids.
/// SQLite has no `LATERAL`, and its planner walks the same index per event of the list.
pub fn release_statement(dialect: Dialect) -> String {
    // The hold's id as text (`id`), then its event, tickets and lines.
    let columns = |id: &str, r: &str| {
        format!(
            "{id} AS id, {r}.event_id, {r}.quantity, {} AS lines, {} AS seats",
            lines_column(r),
            seats_column(r)
        )
    };
    match dialect {
        Dialect::Postgres => format!(
            "UPDATE reservations r
                SET status = 'expired', updated_at = $2
               FROM (SELECT d.id
                       FROM unnest($1::bigint[]) AS e (id)
                       CROSS JOIN LATERAL (
                             SELECT d.id, d.expires_at FROM reservations d
                              WHERE d.event_id = e.id AND {}
                              ORDER BY d.expires_at
                              LIMIT $3) d
                      ORDER BY d.expires_at
                      LIMIT $3) due
              WHERE r.id = due.id AND {}
             RETURNING {}",
            past_due("d", "$2"),
            still_reserved("r"),
            columns("r.id::text", "r")
        ),
        // RETURNING names the updated table unaliased.
        Dialect::Sqlite => format!(
            "UPDATE reservations SET status = 'expired', updated_at = ?2
              WHERE reservations.id IN (SELECT d.id FROM reservations d
                              WHERE d.event_id IN (SELECT value FROM json_each(?1)) AND {}
                              ORDER BY d.expires_at LIMIT ?3)
                AND {}
             RETURNING {}",
            past_due("d", "?2"),
            still_reserved("reservations"),
            columns("reservations.id", "reservations")
        ),
    }
}

/// The events of up to (placeholder) 2 holds past due at 1, oldest first, as `id`s: through
/// PostgreSQL's partial index on due holds (whose predicate names `quantity > 0`, so that this
/// is the one query that uses it).
pub fn due_events_statement(dialect: Dialect) -> String {
    format!(
        "SELECT r.event_id AS id FROM reservations r WHERE {} AND r.quantity > 0 \
          ORDER BY r.expires_at LIMIT {}",
        past_due("r", &dialect.param(1)),
        dialect.param(2)
    )
}

/// The audit of one event (placeholder 1: its id, 2: the instant): its counters next to a
/// recount of its reservation rows, in one snapshot.
pub fn audit_statement(dialect: Dialect) -> String {
    let now = dialect.param(2);
    let tickets = |condition: &str| {
        dialect.int8(&format!(
            "COALESCE(sum(r.quantity) FILTER (WHERE {condition}), 0)"
        ))
    };
    format!(
        "SELECT e.capacity, e.purchased_count, e.reserved_count, \
                {} AS purchased_tickets, {} AS reserved_tickets, {} AS active_tickets \
           FROM events e LEFT JOIN reservations r ON r.event_id = e.id \
          WHERE e.id = {} GROUP BY e.id",
        tickets("r.status = 'purchased'"),
        tickets("r.status = 'reserved'"),
        tickets(&active("r", &now)),
        dialect.param(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_name_their_table_and_instant() {
        assert_eq!(
            past_due("r", "$2"),
            "r.status = 'reserved' AND r.expires_at <= $2"
        );
        assert_eq!(
            counts_for_customer("x", "?3"),
            "(x.status = 'purchased' OR (x.status = 'reserved' AND x.expires_at > ?3))"
        );
    }

    #[test]
    fn statements_use_the_dialects_placeholders_and_casts() {
        let pg = audit_statement(Dialect::Postgres);
        assert!(
            pg.contains("WHERE e.id = $1") && pg.contains("r.expires_at > $2"),
            "{pg}"
        );
        assert!(pg.contains("::int8"), "{pg}");
        let lite = audit_statement(Dialect::Sqlite);
        assert!(lite.contains("e.id = ?1") && !lite.contains("::"), "{lite}");
        assert!(snapshots_statement(Dialect::Postgres).contains("e.id = ANY($1)"));
        assert!(page_statement(Dialect::Sqlite).contains("LIMIT ?3"));
    }
}
