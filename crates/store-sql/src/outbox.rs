//! The outbox on both stores: one set-based insert of a transaction's messages, numbered on
//! from each event's `message_seq`, and one update of those counters, inside the
//! transaction that made the changes (whose event rows it has locked, so no two transactions
//! take one number). `(event_id, seq)` is the primary key: a number is never given twice.

use std::sync::LazyLock;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use domain::store::{Stored, Timestamp};
use domain::{EventId, Message, MessageKind, StoreError, StoredMessage};

use crate::run::{Bind, Runner};
use crate::seating::PairRow;
use crate::{Dialect, IdRow};

/// A stored message, as [`OutboxStatements::messages`] reads it.
#[derive(Debug, QueryableByName)]
pub struct MessageRow {
    /// Its number.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// Its kind's name.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Its reservation, as text.
    #[diesel(sql_type = Nullable<Text>)]
    pub reservation_id: Option<String>,
    /// When it was written, in microseconds since the Unix epoch.
    #[diesel(sql_type = BigInt)]
    pub created_us: i64,
}

/// The outbox's statements in one dialect.
#[derive(Debug)]
pub struct OutboxStatements {
    insert: String,
    fan_out: String,
    advance: String,
    heads: String,
    messages: String,
    prune: String,
    prune_attempts: String,
    prune_deliveries: String,
}

impl OutboxStatements {
    /// Builds them.
    pub fn new(dialect: Dialect) -> Self {
        let p = |n| dialect.param(n);
        let item = |i: u8| match dialect {
            Dialect::Postgres => format!("(v ->> {i})"),
            Dialect::Sqlite => format!("json_extract(value, '$[{i}]')"),
        };
        let list = match dialect {
            Dialect::Postgres => format!("jsonb_array_elements({}::jsonb) AS v", p(1)),
            Dialect::Sqlite => format!("json_each({})", p(1)),
        };
        let messages = format!(
            "(SELECT {event} AS event_id, {ord} AS ord, {kind} AS kind,
                     {reservation} AS reservation_id
                FROM {list}) m",
            event = dialect.int8(&item(0)),
            ord = dialect.int8(&item(1)),
            kind = item(2),
            reservation = item(3),
        );
        // PostgreSQL plans a join with `events` as a scan of the whole table (its statistics are
        // not trusted here): naming the ids as an array makes it read them by the primary key.
        let by_key = |column: &str| {
            match dialect {
            Dialect::Postgres => format!(
                "{column} = ANY (ARRAY(SELECT (v ->> 0)::int8 FROM jsonb_array_elements({}::jsonb) AS v))",
                p(1)
            ),
            Dialect::Sqlite => "TRUE".into(),
        }
        };
        let wanted = match dialect {
            Dialect::Postgres => "strpos(',' || w.kinds || ',', ',' || m.kind || ',') > 0",
            Dialect::Sqlite => "instr(',' || w.kinds || ',', ',' || m.kind || ',') > 0",
        };
        Self {
            // Each message's deliveries, to every enabled endpoint that wants its kind; run
            // before `advance`, so it numbers the messages as `insert` did.
            fan_out: format!(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, seq, kind, reservation_id,
                                                 message_us, next_attempt_us)
                 SELECT w.id, e.id, e.message_seq + m.ord, m.kind, m.reservation_id, {now}, {now}
                   FROM {messages}
                   JOIN events e ON e.id = m.event_id
                   JOIN webhook_endpoints w ON w.enabled = 1 AND (w.kinds = '*' OR {wanted})
                  WHERE {events}
                  ORDER BY e.id, m.ord, w.id
                 RETURNING id",
                now = p(2),
                events = by_key("e.id"),
            ),
            insert: format!(
                "INSERT INTO outbox (event_id, seq, kind, reservation_id, created_us)
                 SELECT e.id, e.message_seq + m.ord, m.kind, m.reservation_id, {now}
                   FROM {messages}
                   JOIN events e ON e.id = m.event_id
                  WHERE {events}
                 RETURNING event_id AS id",
                now = p(2),
                events = by_key("e.id"),
            ),
            advance: format!(
                "UPDATE events SET message_seq = message_seq + w.b FROM {}
                  WHERE events.id = w.a AND {} RETURNING events.id AS id",
                dialect.json_pairs(1),
                by_key("events.id")
            ),
            prune: format!(
                "DELETE FROM outbox WHERE (event_id, seq) IN
                   (SELECT event_id, seq FROM outbox WHERE created_us < {} LIMIT {})
                 RETURNING event_id AS id",
                p(1),
                p(2)
            ),
            prune_attempts: format!(
                "DELETE FROM webhook_attempts WHERE delivery_id IN ({done}) RETURNING delivery_id AS id",
                done = done_deliveries(dialect)
            ),
            prune_deliveries: format!(
                "DELETE FROM webhook_deliveries WHERE id IN ({done}) RETURNING id",
                done = done_deliveries(dialect)
            ),
            heads: format!(
                "SELECT id AS a, message_seq AS b FROM events WHERE {} ORDER BY id",
                dialect.in_list("id", 1)
            ),
            messages: format!(
                "SELECT seq, kind, reservation_id, created_us FROM outbox
                  WHERE event_id = {} AND seq > {} ORDER BY seq LIMIT {}",
                p(1),
                p(2),
                p(3)
            ),
        }
    }
}

/// The webhook deliveries done (delivered or failed) of messages written before `$1`, at most
/// `$2`, oldest first: the same rows for both of the prune's statements in one transaction.
fn done_deliveries(dialect: Dialect) -> String {
    format!(
        "SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND message_us < {}
          ORDER BY id LIMIT {}",
        dialect.param(1),
        dialect.param(2)
    )
}

/// [`domain::store::UnitOfWork::prune_messages`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn prune<R: Runner>(run: &mut R, before: Timestamp, limit: u32) -> Stored<u32>
where
    IdRow: QueryableByName<R::Backend>,
{
    let binds = || {
        vec![
            Bind::Int8(before.timestamp_micros()),
            Bind::Int8(i64::from(limit)),
        ]
    };
    let pruned: Vec<IdRow> = run.load(&statements::<R>().prune, binds())?;
    let _: Vec<IdRow> = run.load(&statements::<R>().prune_attempts, binds())?;
    let _: Vec<IdRow> = run.load(&statements::<R>().prune_deliveries, binds())?;
    Ok(u32::try_from(pruned.len()).unwrap_or(u32::MAX))
}

fn statements<R: Runner>() -> &'static OutboxStatements {
    static POSTGRES: LazyLock<OutboxStatements> =
        LazyLock::new(|| OutboxStatements::new(Dialect::Postgres));
    static SQLITE: LazyLock<OutboxStatements> =
        LazyLock::new(|| OutboxStatements::new(Dialect::Sqlite));
    match R::DIALECT {
        Dialect::Postgres => &POSTGRES,
        Dialect::Sqlite => &SQLITE,
    }
}

/// Writes `messages` in the caller's transaction, numbered on from each event's last one, in
/// the order given.
///
/// # Errors
/// [`domain::DomainError::Store`]; an internal one when an event is missing.
pub fn write<R: Runner>(run: &mut R, messages: &[Message], now: Timestamp) -> Stored<()>
where
    IdRow: QueryableByName<R::Backend>,
{
    if messages.is_empty() {
        return Ok(());
    }
    let mut counts: std::collections::BTreeMap<EventId, i64> = std::collections::BTreeMap::new();
    let mut items = Vec::with_capacity(messages.len());
    for m in messages {
        let ord = counts.entry(m.event).or_default();
        *ord += 1;
        items.push(serde_json::json!([
            m.event.get(),
            *ord,
            m.kind.as_str(),
            m.reservation.map(|r| r.to_string()),
        ]));
    }
    let list = serde_json::Value::Array(items).to_string();
    let inserted: Vec<IdRow> = run.load(
        &statements::<R>().insert,
        vec![
            Bind::Text(list.as_str().into()),
            Bind::Int8(now.timestamp_micros()),
        ],
    )?;
    if inserted.len() != messages.len() {
        return Err(StoreError::internal("a message of an unknown event").into());
    }
    let _: Vec<IdRow> = run.load(
        &statements::<R>().fan_out,
        vec![Bind::Text(list.into()), Bind::Int8(now.timestamp_micros())],
    )?;
    let pairs: Vec<[i64; 2]> = counts.iter().map(|(e, n)| [e.get(), *n]).collect();
    let pairs = serde_json::to_string(&pairs)
        .map_err(|e| StoreError::internal(format!("message counts: {e}")))?;
    let advanced: Vec<IdRow> =
        run.load(&statements::<R>().advance, vec![Bind::Text(pairs.into())])?;
    if advanced.len() != counts.len() {
        return Err(StoreError::internal("a message of an unknown event").into());
    }
    Ok(())
}

/// [`domain::store::Reads::message_heads`].
///
/// # Errors
/// [`domain::DomainError::Store`].
pub fn heads<R: Runner>(run: &mut R, ids: &[EventId]) -> Stored<Vec<(EventId, i64)>>
where
    PairRow: QueryableByName<R::Backend>,
{
    let rows: Vec<PairRow> = run.load(&statements::<R>().heads, vec![Bind::events(ids)])?;
    Ok(rows.into_iter().map(|r| (EventId::new(r.a), r.b)).collect())
}

/// [`domain::store::Reads::messages`].
///
/// # Errors
/// [`domain::DomainError::Store`]; an internal one for a row no statement writes.
pub fn messages<R: Runner>(
    run: &mut R,
    event: EventId,
    after: i64,
    limit: u32,
) -> Stored<Vec<StoredMessage>>
where
    MessageRow: QueryableByName<R::Backend>,
{
    let binds = vec![
        Bind::Int8(event.get()),
        Bind::Int8(after),
        Bind::Int8(i64::from(limit)),
    ];
    let rows: Vec<MessageRow> = run.load(&statements::<R>().messages, binds)?;
    rows.into_iter()
        .map(|r| {
            let corrupt = |what: &str| StoreError::internal(format!("corrupt message row: {what}"));
            let kind = MessageKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?;
            let reservation = match r.reservation_id {
                Some(id) => Some(id.parse().map_err(|_| corrupt("reservation id"))?),
                None => None,
            };
            let created_at = chrono::DateTime::from_timestamp_micros(r.created_us)
                .ok_or_else(|| corrupt("created_us"))?;
            Ok(StoredMessage {
                seq: r.seq,
                message: Message {
                    event,
                    kind,
                    reservation,
                },
                created_at,
            })
        })
        .collect()
}
