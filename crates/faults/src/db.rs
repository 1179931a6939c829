//! The checker's view of the store: SQL straight on the database, not through the service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Text};
use diesel::sqlite::SqliteConnection;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(String),
    Sqlite(PathBuf),
}

/// An event's tickets at one instant.
#[derive(Debug, Clone, QueryableByName)]
pub struct Sample {
    #[diesel(sql_type = BigInt)]
    pub event: i64,
    #[diesel(sql_type = BigInt)]
    pub capacity: i64,
    #[diesel(sql_type = BigInt)]
    pub purchased: i64,
    #[diesel(sql_type = BigInt)]
    pub active: i64,
}

/// An event's counters next to the checker's own recount of its rows.
#[derive(Debug, Clone, QueryableByName)]
pub struct Recount {
    #[diesel(sql_type = BigInt)]
    pub event: i64,
    #[diesel(sql_type = BigInt)]
    pub purchased_counter: i64,
    #[diesel(sql_type = BigInt)]
    pub reserved_counter: i64,
    #[diesel(sql_type = BigInt)]
    pub purchased_rows: i64,
    #[diesel(sql_type = BigInt)]
    pub reserved_rows: i64,
}

/// Both stores: the counters of each event, and the tickets of its rows by status, summed in
/// a correlated subquery each (not the service's audit statement).
const RECOUNT: &str = "
SELECT e.id AS event,
       CAST(e.purchased_count AS BIGINT) AS purchased_counter,
       CAST(e.reserved_count AS BIGINT) AS reserved_counter,
       CAST(COALESCE((SELECT SUM(p.quantity) FROM reservations p
                       WHERE p.event_id = e.id AND p.status = 'purchased'), 0) AS BIGINT)
         AS purchased_rows,
       CAST(COALESCE((SELECT SUM(h.quantity) FROM reservations h
                       WHERE h.event_id = e.id AND h.status = 'reserved'), 0) AS BIGINT)
         AS reserved_rows
  FROM events e";

/// A reservation as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    /// A purchase decided before the hold's `expires_at` (always true for others).
    #[diesel(sql_type = Bool)]
    pub in_time: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub payment_reference: Option<String>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A message of the outbox, as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct MessageRow {
    #[diesel(sql_type = BigInt)]
    pub event_id: i64,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub reservation_id: Option<String>,
}

#[derive(QueryableByName)]
struct Seconds {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

const PG_SAMPLE: &str = "
SELECT e.id AS event, e.capacity::int8 AS capacity,
       COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'purchased'), 0)::int8 AS purchased,
       COALESCE(SUM(r.quantity) FILTER (WHERE r.status = 'reserved' AND r.expires_at > now()), 0)::int8 AS active
  FROM events e LEFT JOIN reservations r ON r.event_id = e.id
 GROUP BY e.id";

const SQLITE_SAMPLE: &str = "
SELECT e.id AS event, e.capacity AS capacity,
       COALESCE(SUM(CASE WHEN r.status = 'purchased' THEN r.quantity END), 0) AS purchased,
       COALESCE(SUM(CASE WHEN r.status = 'reserved'
                          AND r.expires_at > strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')
                         THEN r.quantity END), 0) AS active
  FROM events e LEFT JOIN reservations r ON r.event_id = e.id
 GROUP BY e.id";

const PG_ROWS: &str = "
SELECT id::text AS id, status,
       (purchased_at IS NULL OR purchased_at <= expires_at) AS in_time, payment_reference
  FROM reservations WHERE customer IS DISTINCT FROM 'prefill'";

const SQLITE_ROWS: &str = "
SELECT id, status,
       (purchased_at IS NULL OR purchased_at <= expires_at) AS in_time, payment_reference
  FROM reservations WHERE customer IS NULL OR customer <> 'prefill'";

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Db {
    /// Every event's tickets, in one statement (one snapshot).
    pub fn sample(&self) -> Result<Vec<Sample>, String> {
        match self {
            Self::Postgres(url) => diesel::sql_query(PG_SAMPLE)
                .load(&mut PgConnection::establish(url).map_err(err)?)
                .map_err(err),
            Self::Sqlite(path) => diesel::sql_query(SQLITE_SAMPLE)
                .load(&mut sqlite(path)?)
                .map_err(err),
        }
    }

    /// Every event's counters and the checker's recount of its rows, in one statement.
    pub fn recount(&self) -> Result<Vec<Recount>, String> {
        match self {
            Self::Postgres(url) => diesel::sql_query(RECOUNT)
                .load(&mut PgConnection::establish(url).map_err(err)?)
                .map_err(err),
            Self::Sqlite(path) => diesel::sql_query(RECOUNT)
                .load(&mut sqlite(path)?)
                .map_err(err),
        }
    }

    /// Every reservation the workload could have made, by id.
    pub fn reservations(&self) -> Result<HashMap<String, Row>, String> {
        let rows: Vec<Row> = match self {
            Self::Postgres(url) => diesel::sql_query(PG_ROWS)
                .load(&mut PgConnection::establish(url).map_err(err)?)
                .map_err(err)?,
            Self::Sqlite(path) => diesel::sql_query(SQLITE_ROWS)
                .load(&mut sqlite(path)?)
                .map_err(err)?,
        };
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }

    /// The outbox, by event and number.
    pub fn messages(&self) -> Result<Vec<MessageRow>, String> {
        let sql = "SELECT event_id, seq, kind, reservation_id FROM outbox ORDER BY event_id, seq";
        match self {
            Self::Postgres(url) => diesel::sql_query(sql)
                .load(&mut PgConnection::establish(url).map_err(err)?)
                .map_err(err),
            Self::Sqlite(path) => diesel::sql_query(sql).load(&mut sqlite(path)?).map_err(err),
        }
    }

    /// Deliveries not yet delivered nor failed.
    pub fn pending_deliveries(&self) -> Result<i64, String> {
        let sql = "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'";
        let rows: Vec<Count> = match self {
            Self::Postgres(url) => diesel::sql_query(sql)
                .load(&mut PgConnection::establish(url).map_err(err)?)
                .map_err(err)?,
            Self::Sqlite(path) => diesel::sql_query(sql)
                .load(&mut sqlite(path)?)
                .map_err(err)?,
        };
        Ok(rows.first().map_or(0, |r| r.n))
    }

    /// Runs statements (set-up of a scenario).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        use diesel::connection::SimpleConnection;
        match self {
            Self::Postgres(url) => PgConnection::establish(url)
                .map_err(err)?
                .batch_execute(sql)
                .map_err(err),
            Self::Sqlite(path) => sqlite(path)?.batch_execute(sql).map_err(err),
        }
    }

    /// The URL `ticketctl` takes.
    pub fn url(&self) -> String {
        match self {
            Self::Postgres(url) => url.clone(),
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

fn sqlite(path: &Path) -> Result<SqliteConnection, String> {
    use diesel::connection::SimpleConnection;
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).map_err(err)?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")
        .map_err(err)?;
    Ok(conn)
}

/// On PostgreSQL: how long the longest current wait for a lock has lasted, in seconds.
pub fn longest_lock_wait(conn: &mut PgConnection) -> Result<f64, String> {
    let row: Seconds = diesel::sql_query(
        "SELECT COALESCE(MAX(EXTRACT(EPOCH FROM clock_timestamp() - state_change)), 0)::float8 AS seconds
           FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
    )
    .get_result(conn)
    .map_err(err)?;
    Ok(row.seconds)
}
