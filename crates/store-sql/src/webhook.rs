//! Webhook endpoints and deliveries on both stores, written once. Deliveries are claimed with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (servers claim different rows) and a lease: a claimed
//! delivery's next attempt moves to the lease's end, so one whose server died is tried again
//! then by any server. SQLite has one writer at a time: the claim is the lease alone.

use std::sync::LazyLock;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use domain::store::{Stored, Timestamp};
use domain::webhook::{
    Attempt, AttemptOutcome, Delivery, DeliveryRecord, DeliveryStatus, Endpoint, EndpointId,
    KindFilter, NewEndpoint, Next,
};
use domain::{EventId, MessageKind, StoreError};

use crate::run::{Bind, Runner};
use crate::{Dialect, IdRow};

/// An endpoint as stored.
#[derive(Debug, QueryableByName)]
pub struct EndpointRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    kinds: String,
    #[diesel(sql_type = BigInt)]
    enabled: i64,
    #[diesel(sql_type = Nullable<Text>)]
    disabled_reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    created_us: i64,
}

/// A delivery claimed, with its endpoint's URL and secret.
#[derive(Debug, QueryableByName)]
pub struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    endpoint_id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    reservation_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    message_us: i64,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
}

/// A delivery as operators see it.
#[derive(Debug, QueryableByName)]
pub struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
    #[diesel(sql_type = BigInt)]
    next_attempt_us: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_status: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

/// Where and how an endpoint's deliveries are sent.
#[derive(Debug, QueryableByName)]
pub struct TargetRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
}

/// A count.
#[derive(Debug, QueryableByName)]
pub struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The webhook statements in one dialect.
#[derive(Debug)]
pub struct WebhookStatements {
    create: String,
    list: String,
    remove: String,
    fail_pending: String,
    claim: String,
    targets: String,
    record: String,
    attempt: String,
    disable: String,
    retry: String,
    deliveries: String,
    backlog: String,
    due: String,
}

const ENDPOINT_COLUMNS: &str = "id, url, kinds, enabled, disabled_reason, created_us";

impl WebhookStatements {
    /// Builds them.
    pub fn new(dialect: Dialect) -> Self {
        let p = |n| dialect.param(n);
        let skip_locked = match dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        Self {
            create: format!(
                "INSERT INTO webhook_endpoints (url, kinds, secret, created_us)
                 VALUES ({}, {}, {}, {}) RETURNING {ENDPOINT_COLUMNS}",
                p(1),
                p(2),
                p(3),
                p(4)
            ),
            list: format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE removed = 0 ORDER BY id"
            ),
            remove: format!(
                "UPDATE webhook_endpoints SET removed = 1, enabled = 0, disabled_reason = 'removed'
                  WHERE id = {} AND removed = 0 RETURNING id",
                p(1)
            ),
            fail_pending: format!(
                "UPDATE webhook_deliveries SET status = 'failed', last_error = {}
                  WHERE endpoint_id = {} AND status = 'pending' RETURNING id",
                p(2),
                p(1)
            ),
            claim: format!(
                "UPDATE webhook_deliveries SET next_attempt_us = {lease}
                  WHERE id IN (SELECT id FROM webhook_deliveries
                                WHERE status = 'pending' AND next_attempt_us <= {now}
                                ORDER BY id LIMIT {limit}{skip_locked})
                 RETURNING id, endpoint_id, event_id, seq, kind, reservation_id, message_us,
                           attempts",
                now = p(1),
                lease = p(2),
                limit = p(3),
            ),
            targets: "SELECT id, url, secret FROM webhook_endpoints WHERE enabled = 1".into(),
            record: format!(
                "UPDATE webhook_deliveries
                    SET attempts = {}, status = {}, next_attempt_us = {}, last_status = {},
                        last_error = {}
                  WHERE id = {} AND attempts = {} RETURNING id",
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(1),
                p(7)
            ),
            attempt: format!(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at_us, status_code, error,
                                               duration_ms)
                 VALUES ({}, {}, {}, {}, {}, {}) RETURNING delivery_id AS id",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            ),
            disable: format!(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = {}
                  WHERE id = {} RETURNING id",
                p(2),
                p(1)
            ),
            retry: format!(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_us = {}
                  WHERE id = {} AND endpoint_id = {}
                    AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE removed = 0)
                 RETURNING id",
                p(3),
                p(2),
                p(1)
            ),
            deliveries: format!(
                "SELECT id, event_id, seq, kind, status, attempts, next_attempt_us, last_status,
                        last_error
                   FROM webhook_deliveries WHERE endpoint_id = {} ORDER BY id DESC LIMIT {}",
                p(1),
                p(2)
            ),
            backlog: "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'".into(),
            due: format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM webhook_deliveries
                  WHERE status = 'pending' AND next_attempt_us <= {} LIMIT 1) d",
                p(1)
            ),
        }
    }
}

fn statements<R: Runner>() -> &'static WebhookStatements {
    static POSTGRES: LazyLock<WebhookStatements> =
        LazyLock::new(|| WebhookStatements::new(Dialect::Postgres));
    static SQLITE: LazyLock<WebhookStatements> =
        LazyLock::new(|| WebhookStatements::new(Dialect::Sqlite));
    match R::DIALECT {
        Dialect::Postgres => &POSTGRES,
        Dialect::Sqlite => &SQLITE,
    }
}

fn corrupt(what: &str) -> domain::DomainError {
    StoreError::internal(format!("corrupt webhook row: {what}")).into()
}

fn at(micros: i64) -> Stored<Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("timestamp"))
}

fn endpoint(row: EndpointRow) -> Stored<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::new(row.id),
        url: row.url,
        kinds: KindFilter::from_stored(&row.kinds).map_err(|_| corrupt("kinds"))?,
        enabled: row.enabled == 1,
        disabled_reason: row.disabled_reason,
        created_at: at(row.created_us)?,
    })
}

/// [`domain::store::UnitOfWork::create_endpoint`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn create_endpoint<R: Runner>(
    run: &mut R,
    new: &NewEndpoint,
    secret: &str,
    now: Timestamp,
) -> Stored<Endpoint>
where
    EndpointRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Text(new.url.as_str().into()),
        Bind::Text(new.kinds.stored().into()),
        Bind::Text(secret.into()),
        Bind::Int8(now.timestamp_micros()),
    ];
    let row: Option<EndpointRow> = run.load(&statements::<R>().create, binds)?.pop();
    endpoint(row.ok_or_else(|| corrupt("no row inserted"))?)
}

/// [`domain::store::Reads::endpoints`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn endpoints<R: Runner>(run: &mut R) -> Stored<Vec<Endpoint>>
where
    EndpointRow: QueryableByName<R::Backend>,
{
    let rows: Vec<EndpointRow> = run.load(&statements::<R>().list, Vec::new())?;
    rows.into_iter().map(endpoint).collect()
}

/// [`domain::store::UnitOfWork::remove_endpoint`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn remove_endpoint<R: Runner>(run: &mut R, id: EndpointId) -> Stored<bool>
where
    IdRow: QueryableByName<R::Backend>,
{
    let removed: Vec<IdRow> = run.load(&statements::<R>().remove, vec![Bind::Int8(id.get())])?;
    if removed.is_empty() {
        return Ok(false);
    }
    fail_pending(run, id, "the endpoint was removed")?;
    Ok(true)
}

fn fail_pending<R: Runner>(run: &mut R, id: EndpointId, why: &str) -> Stored<()>
where
    IdRow: QueryableByName<R::Backend>,
{
    let binds = vec![Bind::Int8(id.get()), Bind::Text(why.to_owned().into())];
    let _: Vec<IdRow> = run.load(&statements::<R>().fail_pending, binds)?;
    Ok(())
}

/// [`domain::store::UnitOfWork::claim_deliveries`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn claim<R: Runner>(
    run: &mut R,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Stored<Vec<Delivery>>
where
    ClaimRow: QueryableByName<R::Backend>,
    TargetRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Int8(now.timestamp_micros()),
        Bind::Int8(lease_until.timestamp_micros()),
        Bind::Int8(i64::from(limit)),
    ];
    let mut rows: Vec<ClaimRow> = run.load(&statements::<R>().claim, binds)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    rows.sort_by_key(|r| r.id);
    let targets: Vec<TargetRow> = run.load(&statements::<R>().targets, Vec::new())?;
    // A delivery of an endpoint turned off since is left to `fail_pending`'s rows: skipped.
    rows.into_iter()
        .filter_map(|r| {
            let target = targets.iter().find(|t| t.id == r.endpoint_id)?;
            Some((r, target))
        })
        .map(|(r, target)| {
            Ok(Delivery {
                id: r.id,
                endpoint: EndpointId::new(r.endpoint_id),
                url: target.url.clone(),
                secret: target.secret.clone(),
                event: EventId::new(r.event_id),
                seq: r.seq,
                kind: MessageKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
                reservation: match r.reservation_id {
                    Some(id) => Some(id.parse().map_err(|_| corrupt("reservation id"))?),
                    None => None,
                },
                happened_at: at(r.message_us)?,
                attempts: u32::try_from(r.attempts).map_err(|_| corrupt("attempts"))?,
            })
        })
        .collect()
}

/// [`domain::store::UnitOfWork::record_attempt`]: the delivery's new state and the attempt's
/// row; a 410 turns the endpoint off and fails its pending deliveries. An attempt recorded
/// already (another server's, after the lease ran out) changes nothing.
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn record_attempt<R: Runner>(run: &mut R, attempt: &Attempt) -> Stored<bool>
where
    IdRow: QueryableByName<R::Backend>,
{
    let (status, next_us) = match attempt.next {
        Next::Delivered => (DeliveryStatus::Delivered, attempt.at),
        Next::RetryAt(when) => (DeliveryStatus::Pending, when),
        Next::GiveUp | Next::Disable => (DeliveryStatus::Failed, attempt.at),
    };
    let (code, error) = match &attempt.outcome {
        AttemptOutcome::Status(code) => (Some(i32::from(*code)), None),
        AttemptOutcome::NoAnswer(why) => (None, Some(why.clone())),
    };
    let binds = vec![
        Bind::Int8(attempt.delivery),
        Bind::Int8(i64::from(attempt.number)),
        Bind::Text(status.as_str().into()),
        Bind::Int8(next_us.timestamp_micros()),
        Bind::OptInt4(code),
        Bind::OptText(error.clone()),
        Bind::Int8(i64::from(attempt.number) - 1),
    ];
    let updated: Vec<IdRow> = run.load(&statements::<R>().record, binds)?;
    if updated.is_empty() {
        return Ok(false);
    }
    let binds = vec![
        Bind::Int8(attempt.delivery),
        Bind::Int8(i64::from(attempt.number)),
        Bind::Int8(attempt.at.timestamp_micros()),
        Bind::OptInt4(code),
        Bind::OptText(error),
        Bind::Int8(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX)),
    ];
    let _: Vec<IdRow> = run.load(&statements::<R>().attempt, binds)?;
    if attempt.next == Next::Disable {
        let why = "the receiver answered 410 Gone";
        let binds = vec![Bind::Int8(attempt.endpoint.get()), Bind::Text(why.into())];
        let _: Vec<IdRow> = run.load(&statements::<R>().disable, binds)?;
        fail_pending(run, attempt.endpoint, why)?;
    }
    Ok(true)
}

/// [`domain::store::UnitOfWork::retry_delivery`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn retry<R: Runner>(
    run: &mut R,
    endpoint: EndpointId,
    delivery: i64,
    now: Timestamp,
) -> Stored<bool>
where
    IdRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Int8(endpoint.get()),
        Bind::Int8(delivery),
        Bind::Int8(now.timestamp_micros()),
    ];
    let rows: Vec<IdRow> = run.load(&statements::<R>().retry, binds)?;
    Ok(!rows.is_empty())
}

/// [`domain::store::Reads::deliveries`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn deliveries<R: Runner>(
    run: &mut R,
    endpoint: EndpointId,
    limit: u32,
) -> Stored<Vec<DeliveryRecord>>
where
    DeliveryRow: QueryableByName<R::Backend>,
{
    let binds = vec![Bind::Int8(endpoint.get()), Bind::Int8(i64::from(limit))];
    let rows: Vec<DeliveryRow> = run.load(&statements::<R>().deliveries, binds)?;
    rows.into_iter()
        .map(|r| {
            let status = DeliveryStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?;
            Ok(DeliveryRecord {
                id: r.id,
                event: EventId::new(r.event_id),
                seq: r.seq,
                kind: MessageKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
                status,
                attempts: u32::try_from(r.attempts).map_err(|_| corrupt("attempts"))?,
                next_attempt_at: match status {
                    DeliveryStatus::Pending => Some(at(r.next_attempt_us)?),
                    _ => None,
                },
                last_status: r.last_status.and_then(|s| u16::try_from(s).ok()),
                last_error: r.last_error,
            })
        })
        .collect()
}

/// [`domain::store::Reads::deliveries_due`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn due<R: Runner>(run: &mut R, now: Timestamp) -> Stored<bool>
where
    CountRow: QueryableByName<R::Backend>,
{
    let rows: Vec<CountRow> = run.load(
        &statements::<R>().due,
        vec![Bind::Int8(now.timestamp_micros())],
    )?;
    Ok(rows.first().is_some_and(|r| r.n > 0))
}

/// [`domain::store::Reads::delivery_backlog`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn backlog<R: Runner>(run: &mut R) -> Stored<i64>
where
    CountRow: QueryableByName<R::Backend>,
{
    let rows: Vec<CountRow> = run.load(&statements::<R>().backlog, Vec::new())?;
    Ok(rows.first().map_or(0, |r| r.n))
}
