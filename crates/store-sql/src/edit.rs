//! Operators' writes of an event's inventory, alike on both stores: each runs inside the
//! transaction that locked the event, and counts what it adds on the event's row (a reserve
//! on an event with ticket types must name them).

use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use domain::store::{Stored, Timestamp};
use domain::{EventId, NewQuota, NewTicketType, Quota, StoreError, TicketType};

use crate::run::{Bind, Edits, Runner};
use crate::{into_inventory, into_quotas, Dialect, InventoryRow, QUOTA_COLUMNS};

/// A row of one id.
#[derive(Debug, QueryableByName)]
pub struct IdRow {
    /// The id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

fn gone(what: &str) -> domain::DomainError {
    StoreError::internal(format!("{what} returned no row")).into()
}

/// One more of `column` (`quota_count` or `ticket_type_count`) on event (placeholder) 1.
fn count_statement(dialect: Dialect, column: &str) -> String {
    format!(
        "UPDATE events SET {column} = {column} + 1 WHERE id = {} RETURNING id",
        dialect.param(1)
    )
}

/// The statements of this module in one dialect.
#[derive(Debug)]
pub struct EditStatements {
    count_quota: String,
    count_type: String,
    insert_quota: String,
    insert_type: String,
    map_type: String,
}

impl EditStatements {
    /// Builds them.
    pub fn new(dialect: Dialect) -> Self {
        let p = |n| dialect.param(n);
        Self {
            count_quota: count_statement(dialect, "quota_count"),
            count_type: count_statement(dialect, "ticket_type_count"),
            insert_quota: format!(
                "INSERT INTO quotas (event_id, name, capacity, created_at, updated_at) \
                 VALUES ({}, {}, {}, {}, {}) RETURNING {QUOTA_COLUMNS}",
                p(1),
                p(2),
                p(3),
                p(4),
                p(4)
            ),
            insert_type: format!(
                "INSERT INTO ticket_types (event_id, name, max_per_reservation, created_at) \
                 VALUES ({}, {}, {}, {}) \
                 RETURNING 'type' AS kind, event_id, id, name, 0 AS capacity, purchased_count, \
                           reserved_count, max_per_reservation, '' AS quotas, 0 AS past_due",
                p(1),
                p(2),
                p(3),
                p(4)
            ),
            map_type: format!(
                "INSERT INTO ticket_type_quotas (event_id, ticket_type_id, quota_id) \
                 SELECT {}, {}, l.value FROM {} RETURNING quota_id AS id",
                p(1),
                p(2),
                dialect.list_table(3)
            ),
        }
    }
}

fn count_on_event<R: Runner>(run: &mut R, sql: &'static str, event: EventId) -> Stored<()>
where
    IdRow: QueryableByName<R::Backend>,
{
    let counted: Vec<IdRow> = run.load(sql, vec![Bind::Int8(event.get())])?;
    if counted.len() == 1 {
        Ok(())
    } else {
        Err(StoreError::internal(format!("event {event} to count on is gone")).into())
    }
}

/// [`domain::store::UnitOfWork::create_quota`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn create_quota<R: Runner>(
    run: &mut R,
    event: EventId,
    new: &NewQuota,
    now: Timestamp,
) -> Stored<Quota>
where
    IdRow: QueryableByName<R::Backend>,
    InventoryRow: QueryableByName<R::Backend>,
{
    let sql = R::edits();
    count_on_event(run, &sql.count_quota, event)?;
    let binds = vec![
        Bind::Int8(event.get()),
        Bind::Text(new.name.as_str().into()),
        Bind::Int4(new.capacity.get()),
        Bind::At(now),
    ];
    let rows: Vec<InventoryRow> = run.load(&sql.insert_quota, binds)?;
    into_quotas(&rows)
        .pop()
        .map(|(quota, _)| quota)
        .ok_or_else(|| gone("a quota insert"))
}

/// [`domain::store::UnitOfWork::create_ticket_type`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn create_ticket_type<R: Runner>(
    run: &mut R,
    event: EventId,
    new: &NewTicketType,
    now: Timestamp,
) -> Stored<TicketType>
where
    IdRow: QueryableByName<R::Backend>,
    InventoryRow: QueryableByName<R::Backend>,
{
    let sql = R::edits();
    count_on_event(run, &sql.count_type, event)?;
    let max = new
        .max_per_reservation
        .map(|m| i32::try_from(m.get()).unwrap_or(i32::MAX));
    let binds = vec![
        Bind::Int8(event.get()),
        Bind::Text(new.name.as_str().into()),
        Bind::OptInt4(max),
        Bind::At(now),
    ];
    let rows: Vec<InventoryRow> = run.load(&sql.insert_type, binds)?;
    let mut ticket_type = into_inventory(&rows)?
        .types
        .pop()
        .ok_or_else(|| gone("a ticket type insert"))?
        .ticket_type;
    let binds = vec![
        Bind::Int8(event.get()),
        Bind::Int8(ticket_type.id.get()),
        Bind::Int8s(new.quotas.iter().map(|q| q.get()).collect()),
    ];
    let mapped: Vec<IdRow> = run.load(&sql.map_type, binds)?;
    if mapped.len() != new.quotas.len() {
        return Err(gone("a ticket type's quotas"));
    }
    ticket_type.quotas.clone_from(&new.quotas);
    Ok(ticket_type)
}
