//! Running the shared statements once for both stores.
//!
//! A store binds values its own way (PostgreSQL: arrays, `timestamptz`, prepared statements;
//! SQLite: JSON arrays, fixed-width UTC text) and has its own rows of `events` and
//! `reservations`; that is all a [`Runner`] says. Everything else about a read (which
//! statement, which values in which order, how rows become the domain's types) is written
//! here once: [`SqlReads`] serves the domain's [`Reads`] on either store, and the inventory
//! reads of a write transaction are [`read_inventory`] and [`read_quotas`].

use std::borrow::Cow;
use std::sync::LazyLock;

use diesel::backend::Backend;
use diesel::QueryableByName;
use domain::store::{PageRequest, Reads, Seating, Stored, Timestamp, TypeOf};
use domain::{
    Counters, Event, EventAudit, EventId, EventSnapshot, Inventory, InventorySnapshot, NewQuota,
    Quota, QuotaId, Readiness, Reservation, ReservationId, StoreError,
};

use crate::{
    into_audit, into_inventory, into_quotas, into_snapshots, json_pairs, statements, AuditRow,
    Dialect, InventoryAuditRow, InventoryRow, PairRow, SeatingRow, SnapshotRow,
};

/// A value for a statement's placeholder, bound as the store binds its kind.
#[derive(Debug, Clone)]
pub enum Bind<'a> {
    /// A 64-bit integer.
    Int8(i64),
    /// A 32-bit integer.
    Int4(i32),
    /// A 32-bit integer or NULL.
    OptInt4(Option<i32>),
    /// Text or NULL.
    OptText(Option<String>),
    /// Text.
    Text(Cow<'a, str>),
    /// An instant.
    At(Timestamp),
    /// A list of 64-bit integers, for [`Dialect::in_list`].
    Int8s(Vec<i64>),
    /// A list of reservation ids, for [`Dialect::in_list`].
    Reservations(Vec<ReservationId>),
}

impl Bind<'_> {
    /// The ids of `events`, as a list.
    pub fn events(events: &[EventId]) -> Self {
        Self::Int8s(events.iter().map(|id| id.get()).collect())
    }
}

/// What a store supplies to run the shared statements.
pub trait Runner {
    /// The Diesel backend.
    type Backend: Backend;
    /// The store's row of an event's own columns.
    type EventRow: QueryableByName<Self::Backend> + 'static;
    /// The store's row of a reservation (with the text of its lines).
    type ReservationRow: QueryableByName<Self::Backend> + 'static;
    /// The dialect its statements are built in.
    const DIALECT: Dialect;

    /// The rows of `sql` with `binds` for its placeholders, in order.
    ///
    /// # Errors
    /// [`domain::DomainError::Store`], mapped as the store maps its database's errors.
    fn load<R: QueryableByName<Self::Backend> + 'static>(
        &mut self,
        sql: &'static str,
        binds: Vec<Bind<'_>>,
    ) -> Stored<Vec<R>>;

    /// The event of a row.
    ///
    /// # Errors
    /// [`domain::DomainError::Store`] for a row no statement of the store writes.
    fn event(row: Self::EventRow) -> Stored<Event>;

    /// The reservation of a row.
    ///
    /// # Errors
    /// [`domain::DomainError::Store`] for a row no statement of the store writes.
    fn reservation(row: Self::ReservationRow) -> Stored<Reservation>;

    /// Whether the store's schema is current.
    ///
    /// # Errors
    /// [`domain::DomainError::Store`].
    fn readiness(&mut self) -> Stored<Readiness>;
}

fn shared<R: Runner>() -> &'static crate::Statements {
    statements(R::DIALECT)
}

/// The inventory edits' statements of `R`'s dialect, built once.
pub(crate) trait Edits {
    fn edits() -> &'static crate::EditStatements;
}

impl<R: Runner> Edits for R {
    fn edits() -> &'static crate::EditStatements {
        static POSTGRES: LazyLock<crate::EditStatements> =
            LazyLock::new(|| crate::EditStatements::new(Dialect::Postgres));
        static SQLITE: LazyLock<crate::EditStatements> =
            LazyLock::new(|| crate::EditStatements::new(Dialect::Sqlite));
        match R::DIALECT {
            Dialect::Postgres => &POSTGRES,
            Dialect::Sqlite => &SQLITE,
        }
    }
}

/// The domain's reads on a store's connection: each is one statement (or, for an audit, two
/// under the caller's locks or at one instant), so it sees one consistent snapshot.
#[derive(Debug)]
pub struct SqlReads<'r, R>(pub &'r mut R);

fn snapshots<R: Runner>(
    run: &mut R,
    sql: &'static str,
    binds: Vec<Bind<'_>>,
) -> Stored<Vec<EventSnapshot>>
where
    SnapshotRow<R::EventRow>: QueryableByName<R::Backend>,
{
    let rows: Vec<SnapshotRow<R::EventRow>> = run.load(sql, binds)?;
    rows.into_iter()
        .map(|row| Ok(row.counts.of(R::event(row.event)?)))
        .collect()
}

/// [`Reads::event_snapshots`], for a write transaction's own reads too.
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn event_snapshots<R: Runner>(
    run: &mut R,
    ids: &[EventId],
    now: Timestamp,
) -> Stored<Vec<EventSnapshot>>
where
    SnapshotRow<R::EventRow>: QueryableByName<R::Backend>,
{
    let binds = vec![Bind::events(ids), Bind::At(now)];
    snapshots(run, &shared::<R>().snapshots, binds)
}

/// [`Reads::reservations`], for a write transaction's own reads too.
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn reservations<R: Runner>(run: &mut R, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
    let rows: Vec<R::ReservationRow> = run.load(
        &shared::<R>().reservations,
        vec![Bind::Reservations(ids.to_vec())],
    )?;
    rows.into_iter().map(R::reservation).collect()
}

impl<R: Runner> Reads for SqlReads<'_, R>
where
    SnapshotRow<R::EventRow>: QueryableByName<R::Backend>,
    AuditRow: QueryableByName<R::Backend>,
    InventoryAuditRow: QueryableByName<R::Backend>,
    InventoryRow: QueryableByName<R::Backend>,
    PairRow: QueryableByName<R::Backend>,
    SeatingRow: QueryableByName<R::Backend>,
    crate::outbox::MessageRow: QueryableByName<R::Backend>,
    crate::EndpointRow: QueryableByName<R::Backend>,
    crate::DeliveryRow: QueryableByName<R::Backend>,
    crate::CountRow: QueryableByName<R::Backend>,
{
    fn endpoints(&mut self) -> Stored<Vec<domain::webhook::Endpoint>> {
        crate::webhook::endpoints(self.0)
    }

    fn deliveries(
        &mut self,
        endpoint: domain::webhook::EndpointId,
        limit: u32,
    ) -> Stored<Vec<domain::webhook::DeliveryRecord>> {
        crate::webhook::deliveries(self.0, endpoint, limit)
    }

    fn delivery_backlog(&mut self) -> Stored<i64> {
        crate::webhook::backlog(self.0)
    }

    fn deliveries_due(&mut self, now: Timestamp) -> Stored<bool> {
        crate::webhook::due(self.0, now)
    }

    fn seat_versions(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>> {
        crate::seating::seat_versions(self.0, ids)
    }

    fn message_heads(&mut self, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>> {
        crate::outbox::heads(self.0, ids)
    }

    fn messages(
        &mut self,
        event: EventId,
        after: i64,
        limit: u32,
    ) -> Stored<Vec<domain::StoredMessage>> {
        crate::outbox::messages(self.0, event, after, limit)
    }

    fn seating(&mut self, event: EventId) -> Stored<Option<Seating>> {
        crate::seating::seating(self.0, event)
    }

    fn event_snapshots(&mut self, ids: &[EventId], now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        event_snapshots(self.0, ids, now)
    }

    fn list_events(&mut self, page: PageRequest, now: Timestamp) -> Stored<Vec<EventSnapshot>> {
        let last = page.before.map_or(i64::MAX, |b| b.get().saturating_sub(1));
        let binds = vec![
            Bind::Int8(last),
            Bind::At(now),
            Bind::Int8(i64::from(page.limit)),
        ];
        snapshots(self.0, &shared::<R>().page, binds)
    }

    fn reservations(&mut self, ids: &[ReservationId]) -> Stored<Vec<Reservation>> {
        reservations(self.0, ids)
    }

    fn audit_event(&mut self, id: EventId, now: Timestamp) -> Stored<Option<EventAudit>> {
        let binds = || vec![Bind::Int8(id.get()), Bind::At(now)];
        let Some(row) = self
            .0
            .load::<AuditRow>(&shared::<R>().audit, binds())?
            .pop()
        else {
            return Ok(None);
        };
        let rows: Vec<InventoryAuditRow> = self.0.load(&shared::<R>().audit_inventory, binds())?;
        Ok(Some(into_audit(row, &rows)))
    }

    fn inventories(
        &mut self,
        events: &[EventId],
        now: Timestamp,
    ) -> Stored<Vec<InventorySnapshot>> {
        let binds = vec![Bind::events(events), Bind::At(now)];
        let rows: Vec<InventoryRow> = self.0.load(&shared::<R>().inventories, binds)?;
        into_snapshots(&rows)
    }

    fn readiness(&mut self) -> Stored<Readiness> {
        self.0.readiness()
    }
}

/// [`domain::store::UnitOfWork::read_inventory`]: the types among `types` and their quotas.
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn read_inventory<R: Runner>(run: &mut R, types: &[TypeOf]) -> Stored<Inventory>
where
    InventoryRow: QueryableByName<R::Backend>,
{
    let binds = vec![Bind::Text(json_pairs(types).into())];
    let rows: Vec<InventoryRow> = run.load(&shared::<R>().inventory, binds)?;
    into_inventory(&rows)
}

/// [`domain::store::UnitOfWork::read_quotas`]: the quotas of `event` among `ids`.
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn read_quotas<R: Runner>(
    run: &mut R,
    event: EventId,
    ids: &[QuotaId],
) -> Stored<Vec<(Quota, Counters)>>
where
    InventoryRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Int8(event.get()),
        Bind::Int8s(ids.iter().map(|id| id.get()).collect()),
    ];
    let rows: Vec<InventoryRow> = run.load(&shared::<R>().quotas, binds)?;
    Ok(into_quotas(&rows))
}

/// [`domain::store::UnitOfWork::update_quota`]: `quota` renamed and resized as `set`.
///
/// # Errors
/// [`domain::DomainError::Store`] (a capacity below the counters breaks the store's check).
pub fn update_quota<R: Runner>(
    run: &mut R,
    quota: &Quota,
    set: &NewQuota,
    now: Timestamp,
) -> Stored<Quota>
where
    InventoryRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Int8(quota.event_id.get()),
        Bind::Int8(quota.id.get()),
        Bind::Text(set.name.as_str().into()),
        Bind::Int4(set.capacity.get()),
        Bind::At(now),
    ];
    let rows: Vec<InventoryRow> = run.load(&shared::<R>().update_quota, binds)?;
    into_quotas(&rows)
        .pop()
        .map(|(quota, _)| quota)
        .ok_or_else(|| StoreError::internal("a quota update returned no row").into())
}
