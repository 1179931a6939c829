//! What the CLI test binaries share: running `ticketctl`, a server process, raw HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{
    EventAudit, EventId, FixedClock, HoldTtl, Policy, ReadStore, Reservation, ReservationId,
    Ticketing,
};
use postgres_adapter::{migrate_url, PgStore, PoolSettings, MIGRATIONS_DIR};
use serde_json::Value;
use test_support::TestDatabase;

/// The environment variables ticketctl reads, cleared so the caller's shell cannot leak in.
pub const VARS: [&str; 43] = [
    "MAX_HOLD_SECONDS",
    "QUOTA_NAME",
    "QUOTA_CAPACITY",
    "QUOTA_ID",
    "TICKET_TYPE_NAME",
    "TICKET_TYPE_QUOTAS",
    "TICKET_TYPE_MAX_PER_RESERVATION",
    "EXPIRE_BATCH_SIZE",
    "READ_LANES",
    "METRICS_BIND",
    "SHUTDOWN_GRACE_SECONDS",
    "MAX_CONNECTIONS",
    "RATE_LIMIT_PER_SECOND",
    "RATE_LIMIT_BURST",
    "TRUSTED_PROXIES",
    "CORS_ALLOWED_ORIGINS",
    "STATEMENT_TIMEOUT_MS",
    "LOCK_TIMEOUT_MS",
    "IDLE_IN_TRANSACTION_TIMEOUT_MS",
    "WRITE_LANES",
    "QUEUE_MAX",
    "REQUEST_DEADLINE_MS",
    "MAX_TICKETS_PER_RESERVATION",
    "MAX_TICKETS_PER_CUSTOMER",
    "IDEMPOTENCY_TTL_SECONDS",
    "BATCH_MAX",
    "DATABASE_POOL_TIMEOUT_SECONDS",
    "EVENTS_LIMIT",
    "EVENTS_AFTER",
    "DATABASE_URL",
    "BIND_ADDR",
    "RESERVATION_TTL_SECONDS",
    "ADMIN_TOKEN",
    "EXPIRE_INTERVAL_SECONDS",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_TIMEOUT_SECONDS",
    "LOG_FORMAT",
    "NO_MIGRATE",
    "HTTP_WORKERS",
    "EXPIRE_BATCH_SIZE",
    "EVENT_NAME",
    "EVENT_CAPACITY",
    "EVENT_ID",
];

pub fn ticketctl(database_url: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketctl"));
    for var in VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("RUST_LOG");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

pub fn migrated() -> TestDatabase {
    TestDatabase::create(MIGRATIONS_DIR, &|url| {
        migrate_url(url).map(drop).map_err(|e| e.to_string())
    })
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run ticketctl")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1 with the cause as the last line of stderr, `error: ...`, and no panic. Commands
/// other than `serve` log only warnings, so for them that line is all of stderr.
#[track_caller]
pub fn assert_one_line_failure(out: &Output, mentions: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(mentions),
        "{err:?} does not end with an error about {mentions:?}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[track_caller]
pub fn assert_only_line(out: &Output) {
    assert_eq!(
        stderr(out).lines().count(),
        1,
        "more than the error on stderr: {:?}",
        stderr(out)
    );
}

/// The reservations among `ids` as stored (the use cases show a past-due hold as expired
/// whatever its row says).
pub fn stored(store: &PgStore, ids: &[ReservationId]) -> Vec<Reservation> {
    let mut found = Vec::new();
    store
        .read(&mut |reads| {
            found = reads.reservations(ids)?;
            Ok(())
        })
        .unwrap();
    found
}

/// The store's audit of the event now.
pub fn audit(store: &PgStore, event: EventId) -> EventAudit {
    let mut found = None;
    store
        .read(&mut |reads| {
            found = reads.audit_event(event, Utc::now())?;
            Ok(())
        })
        .unwrap();
    found.expect("the event exists")
}

pub fn store(url: &str) -> PgStore {
    PgStore::connect(
        url,
        PoolSettings {
            max_size: 4,
            checkout_timeout: Duration::from_secs(30),
            ..PoolSettings::default()
        },
    )
    .unwrap()
}

/// The use cases on the database at `url`, with a clock stopped at `at` and holds of `ttl`.
pub fn ticketing_at(
    url: &str,
    at: chrono::DateTime<Utc>,
    ttl: u64,
) -> (Ticketing, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(at));
    let policy = Policy::with_hold_ttl(HoldTtl::from_seconds(ttl).unwrap());
    (
        Ticketing::new(Arc::new(store(url)), clock.clone(), policy),
        clock,
    )
}

pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(url: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn(ticketctl(Some(url)), extra_env, Stdio::null())
    }

    pub fn spawn(mut cmd: Command, extra_env: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = free_port();
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("ADMIN_TOKEN", "cli-test-token")
            .env("HTTP_WORKERS", "2")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().expect("spawn ticketctl serve");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The port accepts connections as soon as it is bound, before the server installs its
        // SIGTERM handler; an answer from a worker means startup has finished.
        while !server.answers_health() {
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "ticketctl serve exited early"
            );
            assert!(
                Instant::now() < deadline,
                "ticketctl serve did not listen in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn answers_health(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = [0u8; 12];
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .and_then(|()| stream.read_exact(&mut answer))
            .is_ok_and(|()| answer.ends_with(b" 200"))
    }

    /// One HTTP/1.1 request on its own connection: status and JSON body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, value) = self.request_with(method, path, &[], body);
        (status, value)
    }

    /// One HTTP/1.1 request with extra headers: status, the answer's head (lower case) and
    /// its JSON body.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, Value) {
        let raw = exchange(self.port, method, path, headers, body).expect("an answer");
        let (head, payload) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        (
            status,
            head,
            serde_json::from_str(payload).unwrap_or_else(|_| panic!("not JSON: {payload}")),
        )
    }
}

/// Sends one request on a connection of its own and reads the whole answer; `None` when the
/// connection breaks before an answer arrives.
pub fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".into()
    };
    let extra: String = headers
        .iter()
        .fold(String::new(), |mut all, (name, value)| {
            let _ = std::fmt::Write::write_fmt(&mut all, format_args!("{name}: {value}\r\n"));
            all
        });
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer cli-test-token\r\n{extra}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    (!raw.is_empty()).then_some(raw)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory of its own, removed at the end of the test.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ticketctl-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
