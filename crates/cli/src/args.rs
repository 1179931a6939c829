//! The command line: every flag also reads an environment variable, shown in `--help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use postgres_adapter::PoolSettings;

/// Ticket reservation service: serve the HTTP API, migrate the database, expire holds, manage
/// events.
#[derive(Debug, Parser)]
#[command(
    name = "ticketctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        default_value = crate::store::DEFAULT_DATABASE_URL,
        help = "Where the data lives: postgres://user:password@host:5432/db, sqlite://PATH \
                (an embedded file, created if missing) or sqlite::memory:"
    )]
    pub database_url: String,

    /// Log format on stderr
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event
    Text,
    /// One JSON object per line, for log collectors
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (migrates first, sweeps expired holds in the background)
    Serve(ServeArgs),
    /// Apply pending database migrations and exit
    Migrate,
    /// Reservation maintenance
    #[command(subcommand)]
    Reservations(ReservationsCommand),
    /// Create and inspect events
    #[command(subcommand)]
    Events(EventsCommand),
    /// Add and change an event's quotas (pools of tickets that ticket types share)
    #[command(subcommand)]
    Quotas(QuotasCommand),
    /// Load and show an event's seating plan
    #[command(subcommand)]
    Seats(SeatsCommand),
    /// Add and list an event's ticket types
    #[command(subcommand, name = "ticket-types")]
    TicketTypes(TicketTypesCommand),
    /// Add, list and remove webhook endpoints (signed deliveries of every change)
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Load-test a running server over HTTP and report throughput and latency
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe an endpoint and print it as JSON, with its signing secret (shown only here)
    Add {
        /// Where to POST: http:// or https://
        #[arg(long, env = "WEBHOOK_URL")]
        url: String,
        /// Kinds of message, comma-separated (`reservation.purchased,event.sold_out`), or `*`
        #[arg(
            long,
            env = "WEBHOOK_EVENTS",
            value_delimiter = ',',
            default_value = "*"
        )]
        events: Vec<String>,
    },
    /// Print the endpoints as JSON (without secrets)
    List,
    /// Remove an endpoint: nothing more is sent to it
    Remove {
        /// The endpoint's id
        #[arg(long, env = "WEBHOOK_ID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Base URL of the server under test
    #[arg(long, env = "BENCH_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Event to load (one of --event or --capacity)
    #[arg(long, env = "BENCH_EVENT", conflicts_with = "capacity")]
    pub event: Option<i64>,

    /// Create an event of this capacity to load (needs --admin-token)
    #[arg(long, env = "BENCH_CAPACITY", value_parser = clap::value_parser!(i64).range(1..))]
    pub capacity: Option<i64>,

    /// With --capacity: create this many events and spread reserves and reads over them
    #[arg(long, env = "BENCH_EVENTS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub events: u32,

    /// Bearer token for creating the event
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Concurrent connections, each sending its next request when the last is answered
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Client threads sharing the connections
    #[arg(long, env = "BENCH_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    /// Seconds to run (ignored with --requests)
    #[arg(long, env = "BENCH_DURATION", default_value_t = 10.0)]
    pub duration: f64,

    /// Stop after this many requests instead of after --duration
    #[arg(long, env = "BENCH_REQUESTS")]
    pub requests: Option<u64>,

    /// Weights of the requests: reserve, purchase (of this run's own holds), read (an event),
    /// health (GET /health, the HTTP ceiling); with --seats: best (best-available pairs), seat
    /// (two random seats by label), seatmap (the seat map, gzip), seatmap304 (the seat map with
    /// the `ETag` last seen: 304 while nothing changed)
    #[arg(long, env = "BENCH_MIX", default_value = "reserve=100")]
    pub mix: String,

    /// With --capacity: give each event this many ticket types (0: none, untyped reserves).
    /// Type i draws from quota i of --quotas, the next-to-last type from the first two, the
    /// last from the event's capacity only; reserves then name types
    #[arg(long, env = "BENCH_TICKET_TYPES", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=16))]
    pub ticket_types: u32,

    /// With --ticket-types: named quotas of each event (each as large as the event)
    #[arg(long, env = "BENCH_QUOTAS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub quotas: u32,

    /// With --ticket-types: lines of each reserve, of distinct random types, one ticket each
    #[arg(long, env = "BENCH_LINES", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub lines: u32,

    /// With --capacity: give each event a seating plan of this many seats (section A, rows of
    /// --seats-per-row, labelled A-ROW-SEAT); its capacity becomes its seats
    #[arg(long, env = "BENCH_SEATS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub seats: u32,

    /// With --seats: seats per row
    #[arg(long, env = "BENCH_SEATS_PER_ROW", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub seats_per_row: u32,

    /// With --seats: the share of each event's seats held before the run (best-available holds
    /// of 10), from 0 to 0.95
    #[arg(long, env = "BENCH_FILL", default_value_t = 0.0)]
    pub fill: f64,

    /// Print the results as JSON instead of a table
    #[arg(long, env = "BENCH_JSON")]
    pub json: bool,

    /// Afterwards, read the events and fail unless, on each, purchased + reserved + available
    /// equals the capacity and no more tickets were granted than the capacity
    #[arg(long, env = "BENCH_VERIFY")]
    pub verify: bool,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Database connections to open at most
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = PoolSettings::default_size(),
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// Seconds to wait for a free database connection before answering 503 (and, at start,
    /// for the database to answer at all)
    #[arg(long, env = "DATABASE_POOL_TIMEOUT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub pool_timeout_seconds: u64,

    /// PostgreSQL: milliseconds a statement may run before the server cancels it (0 = no
    /// limit); never applied to COMMIT
    #[arg(long, env = "STATEMENT_TIMEOUT_MS", default_value_t = PoolSettings::DEFAULT_STATEMENT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u32).range(0..=3_600_000))]
    pub statement_timeout_ms: u32,

    /// PostgreSQL: milliseconds a statement may wait for a row lock (0 = no limit)
    #[arg(long, env = "LOCK_TIMEOUT_MS", default_value_t = PoolSettings::DEFAULT_LOCK_TIMEOUT_MS,
          value_parser = clap::value_parser!(u32).range(0..=3_600_000))]
    pub lock_timeout_ms: u32,

    /// PostgreSQL: milliseconds a session may sit idle inside a transaction before the server
    /// ends it, releasing its locks (0 = no limit)
    #[arg(long, env = "IDLE_IN_TRANSACTION_TIMEOUT_MS",
          default_value_t = PoolSettings::DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
          value_parser = clap::value_parser!(u32).range(0..=3_600_000))]
    pub idle_in_transaction_timeout_ms: u32,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// How long a hold lasts before it must be purchased (and the most an extend adds)
    #[arg(long, env = "RESERVATION_TTL_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub reservation_ttl_seconds: u64,

    /// The longest a hold may last from its creation, extends included (default: three times
    /// the TTL)
    #[arg(long, env = "MAX_HOLD_SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=2_419_200))]
    pub max_hold_seconds: Option<u64>,

    /// Bearer token required by POST /api/events; without one, that route answers 401 to all
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Seconds between background sweeps of past-due holds (0 = no sweep)
    #[arg(long, env = "EXPIRE_INTERVAL_SECONDS", default_value_t = 60)]
    pub expire_interval_seconds: u64,

    /// Holds marked expired per sweep transaction at most
    #[arg(long, env = "EXPIRE_BATCH_SIZE", default_value_t = domain::DEFAULT_EXPIRE_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub expire_batch_size: u32,

    /// Do not apply pending migrations at start
    #[arg(long, env = "NO_MIGRATE")]
    pub no_migrate: bool,

    /// Most requests committed in one transaction (group commit); 1 turns batching off
    #[arg(long, env = "BATCH_MAX", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: u32,

    /// Write transactions in flight at most: requests are spread over this many group-commit
    /// lanes by event (one lane batches every write of the server together)
    #[arg(long, env = "WRITE_LANES", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub write_lanes: u32,

    /// Read statements in flight at most, per kind of read: concurrent GETs of events (and of
    /// reservations) wait for the next statement of a lane, which answers all of them
    #[arg(long, env = "READ_LANES", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub read_lanes: u32,

    /// Requests waiting per lane at most; more are answered 503 at once
    #[arg(long, env = "QUEUE_MAX", default_value_t = 4_096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_max: u32,

    /// Milliseconds a request may take; one that cannot be served in time is answered 503
    /// with Retry-After
    #[arg(long, env = "REQUEST_DEADLINE_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub request_deadline_ms: u64,

    /// The most tickets one reservation may hold
    #[arg(long, env = "MAX_TICKETS_PER_RESERVATION",
          default_value_t = domain::DEFAULT_MAX_TICKETS_PER_RESERVATION,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_tickets_per_reservation: u32,

    /// The most tickets one customer (the reserve's `customer` field) may hold or have bought
    /// per event; no limit when unset
    #[arg(long, env = "MAX_TICKETS_PER_CUSTOMER",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_tickets_per_customer: Option<u32>,

    /// Seconds an Idempotency-Key and its first answer are kept
    #[arg(long, env = "IDEMPOTENCY_TTL_SECONDS",
          default_value_t = domain::DEFAULT_IDEMPOTENCY_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub idempotency_ttl_seconds: u64,

    /// Hours outbox messages (and finished webhook deliveries) are kept; the sweep deletes older
    /// ones
    #[arg(long, env = "OUTBOX_RETENTION_HOURS", default_value_t = domain::DEFAULT_OUTBOX_RETENTION_HOURS,
          value_parser = clap::value_parser!(u32).range(1..=87_600))]
    pub outbox_retention_hours: u32,

    /// HTTP worker threads (default: one per core)
    #[arg(long, env = "HTTP_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// Serve GET /metrics on this address instead of the API's (keeps it off the public port)
    #[arg(long, env = "METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// After SIGTERM or SIGINT, seconds in-flight requests and queued batches may take before
    /// the remaining connections are closed
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace_seconds: u64,

    /// Open client connections at most (over all workers); more wait in the kernel's queue
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Availability streams (GET /api/events/{event}/stream) open at most on this instance;
    /// more are answered 503. Each holds a connection: keep it below --max-connections
    #[arg(long, env = "MAX_STREAMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_streams: u32,

    /// Let webhooks reach private, loopback and link-local addresses (checked on the address a
    /// host resolves to when sending); off, only public addresses are reached
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_NETWORKS", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub webhook_allow_private_networks: bool,

    /// Seconds between a webhook delivery's attempts, comma-separated (after the first, which
    /// is at once); spread by ±20%. The default: about 5 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h
    #[arg(
        long,
        env = "WEBHOOK_RETRY_SCHEDULE",
        default_value = "5,30,120,600,3600,21600,86400"
    )]
    pub webhook_retry_schedule: String,

    /// Seconds a webhook receiver has to answer
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_seconds: u64,

    /// Deliver webhooks from this server (off: other servers deliver them)
    #[arg(long, env = "WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,

    /// Writes (POST, PATCH) per second per client IP; more are answered 429 with Retry-After
    /// (0 = no limit)
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 0)]
    pub rate_limit_per_second: u32,

    /// Writes a client may send at once after a quiet spell (0 = the per-second rate)
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 0)]
    pub rate_limit_burst: u32,

    /// Proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the
    /// client for the rate limit; from anyone else it is ignored
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', num_args = 0..)]
    pub trusted_proxies: Vec<String>,

    /// Origins (comma-separated, each a scheme, a host and maybe a port) whose browser scripts
    /// may call the API; none by default
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', num_args = 0..)]
    pub cors_allowed_origins: Vec<String>,

    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReservationsCommand {
    /// Mark past-due holds expired and purge old idempotency keys, print how many, exit 0.
    /// Safe from cron every minute, alongside live servers and other runs
    Expire(ExpireArgs),
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// Holds marked expired per transaction at most
    #[arg(long, env = "EXPIRE_BATCH_SIZE", default_value_t = domain::DEFAULT_EXPIRE_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Hours outbox messages (and finished webhook deliveries) are kept
    #[arg(long, env = "OUTBOX_RETENTION_HOURS", default_value_t = domain::DEFAULT_OUTBOX_RETENTION_HOURS,
          value_parser = clap::value_parser!(u32).range(1..=87_600))]
    pub outbox_retention_hours: u32,

    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Create an event and print it as JSON
    Create {
        /// Event name (1 to 200 characters)
        #[arg(long, env = "EVENT_NAME")]
        name: String,
        /// Number of tickets (at least 1)
        #[arg(long, env = "EVENT_CAPACITY")]
        capacity: i64,
    },
    /// Change an event's name or capacity and print it as JSON; the capacity is never lowered
    /// below the tickets purchased and held
    Update {
        /// Event id
        #[arg(env = "EVENT_ID")]
        id: String,
        /// New name (1 to 200 characters)
        #[arg(long, env = "EVENT_NAME")]
        name: Option<String>,
        /// New number of tickets
        #[arg(long, env = "EVENT_CAPACITY")]
        capacity: Option<i64>,
    },
    /// Print events with their ticket counts as JSON, newest first
    List {
        /// Events to print at most
        #[arg(long, env = "EVENTS_LIMIT", default_value_t = 20,
              value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Print events older than this id (the `next` of a previous page)
        #[arg(long, env = "EVENTS_AFTER")]
        after: Option<String>,
    },
    /// Print an event with its ticket counts as JSON
    Show {
        /// Event id
        #[arg(env = "EVENT_ID")]
        id: String,
    },
    /// Check an event's counters (and its quotas' and ticket types') against a recount of its
    /// reservations; exit 1 if they differ or the event is oversold
    Check {
        /// Event id
        #[arg(
            env = "EVENT_ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        id: Option<String>,
        /// Check every event, printing one JSON line each (newest first)
        #[arg(long, env = "CHECK_ALL_EVENTS")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SeatsCommand {
    /// Load (replace) an event's seating plan from a JSON file (the body of
    /// `PUT /api/events/{event}/seats`) and print the seat map as JSON; refused once any seat
    /// is held or sold
    Load {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
        /// The plan: `{"sections": [{"name", "ticket_type"?, "rows": [{"name", "seats", "rank"?}]}]}`
        #[arg(long, env = "SEATS_FILE")]
        file: std::path::PathBuf,
    },
    /// Print an event's seat map as JSON (`F` free, `H` held, `S` sold, per seat)
    Show {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotasCommand {
    /// Add a quota to an event and print it as JSON
    Create {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
        /// Quota name (1 to 200 characters)
        #[arg(long, env = "QUOTA_NAME")]
        name: String,
        /// Its tickets (at least 1)
        #[arg(long, env = "QUOTA_CAPACITY")]
        capacity: i64,
    },
    /// Change a quota's name or capacity and print it as JSON; the capacity is never lowered
    /// below the quota's tickets purchased and held
    Update {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
        /// The quota's id
        #[arg(long, env = "QUOTA_ID")]
        quota: String,
        /// New name (1 to 200 characters)
        #[arg(long, env = "QUOTA_NAME")]
        name: Option<String>,
        /// New number of tickets
        #[arg(long, env = "QUOTA_CAPACITY")]
        capacity: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketTypesCommand {
    /// Add a ticket type to an event and print it as JSON; once an event has a ticket type,
    /// every reserve must name types
    Create {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
        /// Ticket type name (1 to 200 characters)
        #[arg(long, env = "TICKET_TYPE_NAME")]
        name: String,
        /// The event's quotas it draws from, comma-separated (none: the event's capacity only)
        #[arg(long, env = "TICKET_TYPE_QUOTAS", value_delimiter = ',', num_args = 0..)]
        quotas: Vec<String>,
        /// The most tickets of this type one hold may have
        #[arg(long, env = "TICKET_TYPE_MAX_PER_RESERVATION")]
        max_per_reservation: Option<i64>,
    },
    /// Print an event's ticket types with their counts as JSON
    List {
        /// The event's id
        #[arg(long, env = "EVENT_ID")]
        event: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
