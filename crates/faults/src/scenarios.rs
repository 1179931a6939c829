//! The scenarios: each starts its own store and servers, runs the workload, injects its fault,
//! then checks the whole history and the database.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use test_support::PrivateCluster;

use crate::checker::{self, Check, Sampler};
use crate::db::Db;
use crate::freeze::{self, Frozen};
use crate::history::Record;
use crate::servers::{self, Server};
use crate::workload::Workload;

/// What every scenario needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub ticketctl: PathBuf,
    /// A short run for CI: the same faults, shorter phases and smaller data.
    pub short: bool,
    /// Where server logs and SQLite files go.
    pub dir: PathBuf,
}

/// The request deadline every scenario's servers use.
const DEADLINE: Duration = Duration::from_secs(2);
/// How much later than the deadline an answer may arrive on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1_500);

/// A scenario's figures and verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: &'static str,
    pub store: &'static str,
    pub what: &'static str,
    pub seconds: f64,
    pub requests: usize,
    pub statuses: BTreeMap<String, usize>,
    pub faults: Vec<String>,
    pub checks: Vec<Check>,
    pub recovery: Option<Duration>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.result.is_ok())
    }
}

/// A scenario: a name, the store, what it does, and how to run it.
pub struct Scenario {
    pub name: &'static str,
    pub store: &'static str,
    pub what: &'static str,
    pub run: fn(&Ctx) -> Result<Report, String>,
}

/// Every scenario, in the order of the issue that asked for them.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "restart-fast",
            store: "postgres",
            what: "(a) PostgreSQL stopped (-m fast) and started again under load",
            run: |ctx| restart(ctx, "fast", "restart-fast"),
        },
        Scenario {
            name: "restart-immediate",
            store: "postgres",
            what: "(a) PostgreSQL killed (-m immediate: crash recovery) and started again under load",
            run: |ctx| restart(ctx, "immediate", "restart-immediate"),
        },
        Scenario {
            name: "kill-server",
            store: "postgres",
            what: "(b) one of two servers SIGKILLed under load",
            run: |ctx| kill_server(ctx, Store::Postgres),
        },
        Scenario {
            name: "sigterm",
            store: "postgres",
            what: "(c) SIGTERM under load: every accepted request answered, exit 0",
            run: |ctx| sigterm(ctx, Store::Postgres),
        },
        Scenario {
            name: "pool-exhaustion",
            store: "postgres",
            what: "(d) 10x more clients than pool connections, one transaction per request",
            run: pool_exhaustion,
        },
        Scenario {
            name: "sweep-backlog",
            store: "postgres",
            what: "(e) the sweep over a backlog of past-due holds while reserves go on",
            run: sweep_backlog,
        },
        Scenario {
            name: "ttl-race",
            store: "postgres",
            what: "(f) 1-second holds, purchases racing their expiry",
            run: |ctx| ttl_race(ctx, Store::Postgres),
        },
        Scenario {
            name: "stall",
            store: "postgres",
            what: "(g) every PostgreSQL process SIGSTOPped for longer than the deadline",
            run: stall,
        },
        Scenario {
            name: "failover",
            store: "postgres",
            what: "(h) the primary of a pg_auto_failover formation (2 data nodes, synchronous) SIGKILLed under load",
            run: |ctx| crate::failover::failover(ctx, 2),
        },
        Scenario {
            name: "failover-3",
            store: "postgres",
            what: "(h) the same with 3 data nodes and number-sync-standbys 1",
            run: |ctx| crate::failover::failover(ctx, 3),
        },
        Scenario {
            name: "standby-stall",
            store: "postgres",
            what: "(h) the synchronous standby stalled under load, statement_timeout shorter than the stall: no commit cut short",
            run: crate::failover::standby_stall,
        },
        Scenario {
            name: "webhooks",
            store: "postgres",
            what: "(i) webhooks under load: a server SIGKILLed, the receiver down, PostgreSQL restarted",
            run: webhooks,
        },
        Scenario {
            name: "sqlite-kill-server",
            store: "sqlite",
            what: "(b) one of two servers on one SQLite file SIGKILLed under load",
            run: |ctx| kill_server(ctx, Store::Sqlite),
        },
        Scenario {
            name: "sqlite-sigterm",
            store: "sqlite",
            what: "(c) SIGTERM under load on SQLite",
            run: |ctx| sigterm(ctx, Store::Sqlite),
        },
        Scenario {
            name: "sqlite-ttl-race",
            store: "sqlite",
            what: "(f) 1-second holds racing their expiry on SQLite",
            run: |ctx| ttl_race(ctx, Store::Sqlite),
        },
    ]
}

#[derive(Debug, Clone, Copy)]
enum Store {
    Postgres,
    Sqlite,
}

/// A store of the scenario's own: a private PostgreSQL cluster or a fresh SQLite file.
struct Data {
    db: Db,
    cluster: Option<PrivateCluster>,
}

fn data(ctx: &Ctx, store: Store, name: &str, options: &str) -> Result<Data, String> {
    let (db, cluster) = match store {
        Store::Postgres => {
            let mut cluster = PrivateCluster::init();
            // Durable, as in production: an acknowledged commit survives a crash. (The test
            // clusters run without fsync; these options come later and win.)
            cluster.start_with(&format!(
                "-c fsync=on -c synchronous_commit=on -c full_page_writes=on {options}"
            ));
            // connect_timeout: a stalled server must not hold a connection attempt for long.
            let db = Db::Postgres(cluster.url("127.0.0.1", "connect_timeout=2"));
            (db, Some(cluster))
        }
        Store::Sqlite => {
            let path = ctx.dir.join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            (Db::Sqlite(path), None)
        }
    };
    servers::ticketctl(&ctx.ticketctl, &db.url(), &["migrate"])?;
    Ok(Data { db, cluster })
}

fn start_server(ctx: &Ctx, db: &Db, name: &str, env: &[(&str, &str)]) -> Result<Server, String> {
    let deadline = DEADLINE.as_millis().to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("REQUEST_DEADLINE_MS", deadline.as_str()),
        ("RESERVATION_TTL_SECONDS", "3"),
        ("EXPIRE_INTERVAL_SECONDS", "1"),
        ("DATABASE_POOL_TIMEOUT_SECONDS", "2"),
        ("SHUTDOWN_GRACE_SECONDS", "10"),
    ];
    all.extend_from_slice(env);
    // Later entries win.
    let env: Vec<(&str, &str)> = all
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| !all[i + 1..].iter().any(|(k2, _)| k2 == k))
        .map(|(_, kv)| *kv)
        .collect();
    Server::start(
        &ctx.ticketctl,
        &db.url(),
        &env,
        ctx.dir.join(format!("{name}.log")),
    )
}

/// Three events that never sell out (so every phase has writes to acknowledge) and one that
/// does (so refusals and cancels are in the history too).
fn load_events(server: &Server) -> Result<Vec<i64>, String> {
    let mut events = servers::create_events(server, 3, 1_000_000)?;
    events.extend(servers::create_events(server, 1, 100)?);
    Ok(events)
}

fn workload(ports: Vec<u16>, events: Vec<i64>, clients: usize) -> Workload {
    Workload {
        clients,
        events,
        ports,
        client_timeout: Duration::from_secs(30),
        purchase_after: None,
        mix: (55, 20, 10),
    }
}

impl Ctx {
    /// A phase of a scenario: `full` seconds, or about a third of it in a short run.
    fn phase(&self, full: f64) -> Duration {
        Duration::from_secs_f64(if self.short {
            (full / 3.0).max(1.5)
        } else {
            full
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    name: &'static str,
    store: &'static str,
    what: &'static str,
    origin: Instant,
    records: &[Record],
    faults: Vec<String>,
    checks: Vec<Check>,
    recovery: Option<Duration>,
    notes: Vec<String>,
) -> Report {
    Report {
        name,
        store,
        what,
        seconds: origin.elapsed().as_secs_f64(),
        requests: records.len(),
        statuses: checker::by_status(records),
        faults,
        checks,
        recovery,
        notes,
    }
}

fn no_drops(_: &Record) -> bool {
    false
}

/// (a) PostgreSQL goes away under load and comes back; the server is never restarted.
fn restart(ctx: &Ctx, mode: &'static str, name: &'static str) -> Result<Report, String> {
    let data = data(ctx, Store::Postgres, name, "")?;
    let cluster = data.cluster.as_ref().ok_or("no cluster")?;
    let server = start_server(ctx, &data.db, name, &[])?;
    let events = load_events(&server)?;
    let origin = Instant::now();
    let sampler = Sampler::start(data.db.clone(), Duration::from_millis(200));
    let running =
        workload(vec![server.port], events.clone(), 16).start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(4.0));
    let down = origin.elapsed();
    cluster.stop_mode(mode);
    std::thread::sleep(ctx.phase(4.0));
    cluster.start();
    let up = origin.elapsed();
    std::thread::sleep(ctx.phase(6.0));
    let records = running.stop();
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &no_drops);
    checks.push(sampler.finish());
    let recovery = checker::recovery(&records, up);
    checks.push(match recovery {
        Some(r) if r <= Duration::from_secs(5) => Check::pass(
            "served again within 5 s of the database",
            format!("{:.2} s", r.as_secs_f64()),
        ),
        other => Check::fail(
            "served again within 5 s of the database",
            format!("{other:?}"),
        ),
    });
    let during = records
        .iter()
        .filter(|r| r.started > down && r.started < up)
        .filter(|r| r.outcome.status() == Some(503))
        .count();
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        "postgres",
        "",
        origin,
        &records,
        vec![format!(
            "pg_ctl stop -m {mode} at {:.1} s, started again at {:.1} s",
            down.as_secs_f64(),
            up.as_secs_f64()
        )],
        checks,
        recovery,
        vec![format!("{during} answers 503 while PostgreSQL was down")],
    ))
}

/// (b) One of two servers dies (SIGKILL) under load.
fn kill_server(ctx: &Ctx, store: Store) -> Result<Report, String> {
    let (name, label) = match store {
        Store::Postgres => ("kill-server", "postgres"),
        Store::Sqlite => ("sqlite-kill-server", "sqlite"),
    };
    let data = data(ctx, store, name, "")?;
    let survivor = start_server(ctx, &data.db, &format!("{name}-0"), &[])?;
    let mut victim = start_server(ctx, &data.db, &format!("{name}-1"), &[])?;
    let events = load_events(&survivor)?;
    let origin = Instant::now();
    let sampler = Sampler::start(data.db.clone(), Duration::from_millis(200));
    let running = workload(vec![survivor.port, victim.port], events.clone(), 16)
        .start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(4.0));
    let killed = origin.elapsed();
    victim.kill();
    std::thread::sleep(ctx.phase(4.0));
    let records = running.stop();
    // Requests to the killed server that were in flight at the kill, or sent after it.
    let allowed = |r: &Record| r.server == 1 && r.ended >= killed;
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &allowed);
    checks.push(sampler.finish());
    let survivor_after = records
        .iter()
        .filter(|r| r.server == 0 && r.started > killed && r.acknowledged())
        .count();
    checks.push(Check::when(
        "the other server keeps serving",
        survivor_after > 0,
        format!("{survivor_after} acknowledged after the kill"),
        "nothing acknowledged after the kill".into(),
    ));
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    drop(survivor);
    Ok(report(
        name,
        label,
        "",
        origin,
        &records,
        vec![format!(
            "SIGKILL of server 1 at {:.1} s",
            killed.as_secs_f64()
        )],
        checks,
        None,
        Vec::new(),
    ))
}

/// (i) Webhooks under load from two servers: one is killed (SIGKILL; claims it held come back when
/// their lease ends, and a new server takes its place), the receiver goes down and comes back,
/// PostgreSQL restarts. Every message of the outbox must reach the receiver at least once with
/// `webhook-id` `msg_{event}_{seq}`, and nothing may stay pending.
fn webhooks(ctx: &Ctx) -> Result<Report, String> {
    let name = "webhooks";
    let data = data(ctx, Store::Postgres, name, "")?;
    let cluster = data.cluster.as_ref().ok_or("no cluster")?;
    let mut receiver = crate::receiver::Receiver::start()?;
    // Retries every second, then every 5 s: attempts over about three minutes, more than the
    // receiver's two minutes down in a full run.
    let schedule = [vec!["1"; 20], vec!["5"; 30]].concat().join(",");
    let env = [
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ("WEBHOOK_RETRY_SCHEDULE", schedule.as_str()),
        ("WEBHOOK_TIMEOUT_SECONDS", "2"),
    ];
    let survivor = start_server(ctx, &data.db, &format!("{name}-0"), &env)?;
    let mut victim = start_server(ctx, &data.db, &format!("{name}-1"), &env)?;
    let events = load_events(&survivor)?;
    subscribe(&survivor, &receiver.url())?;
    let origin = Instant::now();
    let running = workload(vec![survivor.port, victim.port], events.clone(), 16)
        .start(origin, Duration::from_secs(300));
    std::thread::sleep(ctx.phase(3.0));
    let killed = origin.elapsed();
    victim.kill();
    let replacement = start_server(ctx, &data.db, &format!("{name}-2"), &env)?;
    std::thread::sleep(ctx.phase(3.0));
    let down = origin.elapsed();
    receiver.stop();
    std::thread::sleep(if ctx.short {
        ctx.phase(6.0)
    } else {
        Duration::from_secs(120)
    });
    receiver.resume()?;
    let back = origin.elapsed();
    std::thread::sleep(ctx.phase(2.0));
    let pg_down = origin.elapsed();
    cluster.stop_mode("fast");
    std::thread::sleep(ctx.phase(2.0));
    cluster.start();
    let pg_up = origin.elapsed();
    std::thread::sleep(ctx.phase(3.0));
    let records = running.stop();
    let (pending, settled) = settle(&data.db);
    let allowed = |r: &Record| {
        (r.server == 1 && r.ended >= killed)
            || (r.started >= pg_down && r.started <= pg_up + Duration::from_secs(5))
    };
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &allowed);
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    checks.push(Check::when(
        "no delivery left pending",
        matches!(pending, Ok(0)),
        format!(
            "all settled {:.1} s after the load stopped",
            settled.as_secs_f64()
        ),
        format!(
            "{pending:?} pending {:.0} s after the load stopped",
            settled.as_secs_f64()
        ),
    ));
    checks.push(delivered_at_least_once(&data.db, &receiver.receipts()));
    drop((survivor, replacement));
    let receipts = receiver.receipts();
    let late = receipts
        .iter()
        .filter(|r| r.at.duration_since(origin) > back)
        .count();
    Ok(report(
        name,
        "postgres",
        "",
        origin,
        &records,
        vec![
            format!(
                "SIGKILL of server 1 at {:.1} s (a new server started)",
                killed.as_secs_f64()
            ),
            format!(
                "receiver down from {:.1} s to {:.1} s",
                down.as_secs_f64(),
                back.as_secs_f64()
            ),
            format!(
                "pg_ctl stop -m fast at {:.1} s, started again at {:.1} s",
                pg_down.as_secs_f64(),
                pg_up.as_secs_f64()
            ),
        ],
        checks,
        None,
        vec![format!(
            "{} deliveries received, {late} of them after the receiver came back",
            receipts.len()
        )],
    ))
}

/// Subscribes `url` to every message, through `server`.
fn subscribe(server: &Server, url: &str) -> Result<(), String> {
    let mut conn = crate::client::Conn::new(server.port, Duration::from_secs(10));
    let auth = format!("Bearer {}", servers::ADMIN_TOKEN);
    let body = format!(r#"{{"url":"{url}","events":["*"]}}"#);
    match conn.send("POST", "/api/webhooks", &[("Authorization", &auth)], &body) {
        crate::client::Outcome::Answered { status: 201, .. } => Ok(()),
        other => Err(format!("adding the endpoint: {other:?}")),
    }
}

/// Waits until no delivery is pending (at most 90 s: the lease of a killed server's claims,
/// 60 s, is the longest wait): what is left, and how long it took.
fn settle(db: &Db) -> (Result<i64, String>, Duration) {
    let stopped = Instant::now();
    let mut pending = db.pending_deliveries();
    while stopped.elapsed() < Duration::from_secs(90) && !matches!(pending, Ok(0)) {
        std::thread::sleep(Duration::from_millis(250));
        pending = db.pending_deliveries();
    }
    (pending, stopped.elapsed())
}

/// Every message of the outbox reached the receiver at least once, under the id
/// `msg_{event}_{seq}` its body names (the same id on every attempt), and nothing else came.
fn delivered_at_least_once(db: &Db, receipts: &[crate::receiver::Receipt]) -> Check {
    const NAME: &str = "every message delivered at least once, webhook-id stable";
    let messages = match db.messages() {
        Ok(messages) => messages,
        Err(e) => return Check::fail(NAME, e),
    };
    let mut wrong: Vec<String> = receipts
        .iter()
        .filter(|r| r.id != format!("msg_{}_{}", r.event, r.seq))
        .take(10)
        .map(|r| format!("{} carried event {} seq {}", r.id, r.event, r.seq))
        .collect();
    let got: std::collections::HashSet<&str> = receipts.iter().map(|r| r.id.as_str()).collect();
    let missing: Vec<String> = messages
        .iter()
        .map(|m| format!("msg_{}_{}", m.event_id, m.seq))
        .filter(|id| !got.contains(id.as_str()))
        .collect();
    if !missing.is_empty() {
        wrong.push(format!(
            "{} messages never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    let repeats = receipts.len().saturating_sub(got.len());
    Check::new(
        NAME,
        &wrong,
        format!(
            "{} messages, {} deliveries received ({repeats} repeats)",
            messages.len(),
            receipts.len()
        ),
    )
}

/// (c) SIGTERM under load: every request sent before the signal is answered; exit 0.
fn sigterm(ctx: &Ctx, store: Store) -> Result<Report, String> {
    let (name, label) = match store {
        Store::Postgres => ("sigterm", "postgres"),
        Store::Sqlite => ("sqlite-sigterm", "sqlite"),
    };
    let data = data(ctx, store, name, "")?;
    let mut server = start_server(ctx, &data.db, name, &[])?;
    let events = load_events(&server)?;
    let origin = Instant::now();
    let running =
        workload(vec![server.port], events.clone(), 16).start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(4.0));
    let signalled = origin.elapsed();
    let exit = server.terminate(Duration::from_secs(20));
    let stopped = origin.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let records = running.stop();
    // After the signal the server closes each connection after its answer and stops
    // accepting: a request sent after the signal may find no server.
    let allowed = |r: &Record| r.started >= signalled;
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &allowed);
    checks.push(match exit {
        Ok(status) if status.success() => Check::pass(
            "exits 0 within the grace",
            format!(
                "{:.2} s after SIGTERM",
                stopped.saturating_sub(signalled).as_secs_f64()
            ),
        ),
        Ok(status) => Check::fail("exits 0 within the grace", status.to_string()),
        Err(e) => Check::fail("exits 0 within the grace", e),
    });
    let before = records.iter().filter(|r| r.started < signalled).count();
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        label,
        "",
        origin,
        &records,
        vec![format!("SIGTERM at {:.1} s", signalled.as_secs_f64())],
        checks,
        None,
        vec![format!(
            "{before} requests sent before the signal; exited {:.2} s after it",
            stopped.saturating_sub(signalled).as_secs_f64()
        )],
    ))
}

/// (d) Far more concurrent transactions than connections: checkouts time out into 503s.
fn pool_exhaustion(ctx: &Ctx) -> Result<Report, String> {
    let name = "pool-exhaustion";
    let data = data(ctx, Store::Postgres, name, "")?;
    // One transaction per request and many lanes: every request wants its own connection.
    // Every transaction that inserts a hold takes 300 ms to commit, so 20 clients on 2
    // connections queue for longer than the checkout timeout.
    data.db.execute(
        "CREATE FUNCTION faults_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER faults_slow_commit AFTER INSERT ON reservations
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION faults_slow_commit();",
    )?;
    let server = start_server(
        ctx,
        &data.db,
        name,
        &[
            ("DATABASE_POOL_SIZE", "2"),
            ("DATABASE_POOL_TIMEOUT_SECONDS", "1"),
            ("BATCH_MAX", "1"),
            ("WRITE_LANES", "32"),
            ("READ_LANES", "16"),
        ],
    )?;
    let events = servers::create_events(&server, 8, 400)?;
    let origin = Instant::now();
    let sampler = Sampler::start(data.db.clone(), Duration::from_millis(200));
    let running =
        workload(vec![server.port], events.clone(), 20).start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(8.0));
    let records = running.stop();
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &no_drops);
    checks.push(sampler.finish());
    let refused = records
        .iter()
        .filter(|r| r.outcome.status() == Some(503))
        .count();
    checks.push(Check::when(
        "exhaustion answered 503 with Retry-After",
        refused > 0,
        format!("{refused} answers 503"),
        "the pool never ran out".into(),
    ));
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        "postgres",
        "",
        origin,
        &records,
        vec!["20 clients, pool of 2 connections, no batching, commits of holds take 300 ms".into()],
        checks,
        None,
        Vec::new(),
    ))
}

/// (e) A backlog of past-due holds (an on-sale's abandoned carts) swept while reserves go on:
/// reserves keep being answered and no lock wait reaches 100 ms.
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn sweep_backlog(ctx: &Ctx) -> Result<Report, String> {
    let name = "sweep-backlog";
    let backlog: i64 = if ctx.short { 100_000 } else { 1_000_000 };
    // Every lock wait over 100 ms is logged by PostgreSQL itself. max_wal_size as a
    // write-heavy server sets it: with the 1 GB default, sweeping a million holds forces a
    // checkpoint every 10-20 s, and a batch that commits during one can wait just over 100 ms
    // (docs/reliability.md).
    let data = data(
        ctx,
        Store::Postgres,
        name,
        "-c log_lock_waits=on -c deadlock_timeout=100ms -c max_wal_size=8GB",
    )?;
    let Db::Postgres(url) = &data.db else {
        return Err("needs PostgreSQL".into());
    };
    let prefill_started = Instant::now();
    data.db.execute(&format!(
        "INSERT INTO events (name, capacity, reserved_count) VALUES ('Backlog', {cap}, {backlog});
         INSERT INTO reservations (id, event_id, status, quantity, customer, expires_at, created_at, updated_at)
         SELECT gen_random_uuid(), e.id, 'reserved', 1, 'prefill',
                now() - interval '1 hour' + g * interval '1 millisecond', now() - interval '2 hours', now()
           FROM events e, generate_series(1, {backlog}) g WHERE e.name = 'Backlog';
         ANALYZE;",
        cap = backlog + 10_000
    ))?;
    let prefill = prefill_started.elapsed();
    let server = start_server(ctx, &data.db, name, &[("EXPIRE_INTERVAL_SECONDS", "1")])?;
    let mut events = servers::create_events(&server, 3, 400)?;
    // The prefilled event was the first of a fresh database.
    events.push(1);
    let origin = Instant::now();
    let running =
        workload(vec![server.port], events.clone(), 16).start(origin, Duration::from_secs(600));
    // Sample the longest lock wait until the backlog is gone.
    let mut conn = <diesel::pg::PgConnection as diesel::Connection>::establish(url)
        .map_err(|e| e.to_string())?;
    let (mut longest, mut samples) = (0.0_f64, 0_u64);
    let limit = Duration::from_secs(if ctx.short { 60 } else { 300 });
    let mut swept_in = None;
    while origin.elapsed() < limit {
        longest = longest.max(crate::db::longest_lock_wait(&mut conn)?);
        samples += 1;
        if samples % 50 == 0 {
            let left: i64 = pending_backlog(&mut conn)?;
            if left == 0 {
                swept_in = Some(origin.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(1));
    let records = running.stop();
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &no_drops);
    checks.push(match swept_in {
        Some(t) => Check::pass(
            "the backlog is swept",
            format!("{backlog} holds in {:.1} s", t.as_secs_f64()),
        ),
        None => Check::fail("the backlog is swept", format!("not within {limit:?}")),
    });
    let pg_log = data.cluster.as_ref().ok_or("no cluster")?.log();
    let _ = std::fs::copy(&pg_log, ctx.dir.join(format!("{name}-postgres.log")));
    let log_text = std::fs::read_to_string(&pg_log).unwrap_or_default();
    let logged_waits = log_text
        .lines()
        .filter(|l| l.contains("still waiting for"))
        .count();
    // PostgreSQL logs every lock wait that lasts longer than deadlock_timeout (100 ms): the
    // exact check. The sampled figure is the waiting statement's age, an upper bound.
    checks.push(if log_text.is_empty() {
        Check::fail(
            "no lock wait reaches 100 ms",
            format!("PostgreSQL's log {} could not be read", pg_log.display()),
        )
    } else if logged_waits == 0 {
        Check::pass(
            "no lock wait reaches 100 ms",
            format!(
                "none logged by log_lock_waits (deadlock_timeout 100 ms); oldest waiting statement sampled: {:.1} ms",
                longest * 1000.0
            ),
        )
    } else {
        Check::fail(
            "no lock wait reaches 100 ms",
            format!("{logged_waits} waits over 100 ms logged by log_lock_waits"),
        )
    });
    let reserves_during = records
        .iter()
        .filter(|r| matches!(r.op, crate::history::Op::Reserve { .. }) && r.acknowledged())
        .count();
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        "postgres",
        "",
        origin,
        &records,
        vec![format!(
            "{backlog} past-due holds on one event (prefilled in {:.1} s), swept every second",
            prefill.as_secs_f64()
        )],
        checks,
        None,
        vec![format!(
            "{reserves_during} reserves granted during the sweep"
        )],
    ))
}

fn pending_backlog(conn: &mut diesel::pg::PgConnection) -> Result<i64, String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        left: i64,
    }
    let row: Left = diesel::sql_query(
        "SELECT count(*) AS left FROM reservations WHERE customer = 'prefill' AND status = 'reserved'",
    )
    .get_result(conn)
    .map_err(|e| e.to_string())?;
    Ok(row.left)
}

/// (f) 1-second holds; purchases sent around the moment their hold expires.
fn ttl_race(ctx: &Ctx, store: Store) -> Result<Report, String> {
    let (name, label) = match store {
        Store::Postgres => ("ttl-race", "postgres"),
        Store::Sqlite => ("sqlite-ttl-race", "sqlite"),
    };
    let data = data(ctx, store, name, "")?;
    let server = start_server(
        ctx,
        &data.db,
        name,
        &[
            ("RESERVATION_TTL_SECONDS", "1"),
            ("EXPIRE_INTERVAL_SECONDS", "1"),
        ],
    )?;
    let events = servers::create_events(&server, 4, 200)?;
    let origin = Instant::now();
    let sampler = Sampler::start(data.db.clone(), Duration::from_millis(100));
    let mut w = workload(vec![server.port], events.clone(), 16);
    // Holds are bought when they are about a second old: some just before, some just after.
    w.purchase_after = Some(Duration::from_millis(950));
    w.mix = (40, 50, 0);
    let running = w.start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(10.0));
    let records = running.stop();
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &no_drops);
    checks.push(sampler.finish());
    let purchases = |status: u16| {
        records
            .iter()
            .filter(|r| {
                matches!(r.op, crate::history::Op::Purchase { repeat: false, .. })
                    && r.outcome.status() == Some(status)
            })
            .count()
    };
    let (won, lost) = (purchases(200), purchases(409));
    checks.push(Check::when(
        "purchases raced expiry both ways",
        won > 0 && lost > 0,
        format!("{won} won, {lost} too late"),
        format!("{won} won, {lost} too late: no race"),
    ));
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        label,
        "",
        origin,
        &records,
        vec!["1 s holds; purchases sent 0.95 s after the hold".into()],
        checks,
        None,
        Vec::new(),
    ))
}

/// (g) Every PostgreSQL process stopped (SIGSTOP) for longer than the request deadline, then
/// resumed: answers stay bounded by the deadline, service resumes at once.
fn stall(ctx: &Ctx) -> Result<Report, String> {
    let name = "stall";
    let data = data(ctx, Store::Postgres, name, "")?;
    let cluster = data.cluster.as_ref().ok_or("no cluster")?;
    let server = start_server(ctx, &data.db, name, &[])?;
    let events = load_events(&server)?;
    let origin = Instant::now();
    let running =
        workload(vec![server.port], events.clone(), 16).start(origin, Duration::from_secs(120));
    std::thread::sleep(ctx.phase(4.0));
    let stalled = origin.elapsed();
    let frozen = Frozen::stop(cluster.data_dir())?;
    let processes = frozen.processes();
    std::thread::sleep(Duration::from_secs(6));
    let gone = frozen.thaw()?;
    let resumed = origin.elapsed();
    std::thread::sleep(ctx.phase(6.0));
    let records = running.stop();
    let mut checks = checker::answers(&records, DEADLINE + SLACK, &no_drops);
    let recovery = checker::recovery(&records, resumed);
    checks.push(match recovery {
        Some(r) if r <= Duration::from_secs(3) => Check::pass(
            "served again at once after the stall",
            format!("{:.2} s", r.as_secs_f64()),
        ),
        other => Check::fail("served again at once after the stall", format!("{other:?}")),
    });
    let during = records
        .iter()
        .filter(|r| r.started > stalled && r.started < resumed)
        .filter(|r| r.outcome.status() == Some(503))
        .count();
    // A stall the service never noticed would make the checks above say nothing.
    checks.push(Check::when(
        "the stall was felt: requests during it answered 503",
        during > 0,
        format!("{during} answers 503"),
        "no request sent during the stall was answered 503".into(),
    ));
    checks.extend(checker::database(
        &data.db,
        &records,
        &ctx.ticketctl,
        &events,
    ));
    Ok(report(
        name,
        "postgres",
        "",
        origin,
        &records,
        vec![format!(
            "SIGSTOP of {processes} PostgreSQL processes at {:.1} s for 6 s",
            stalled.as_secs_f64()
        )],
        checks,
        recovery,
        std::iter::once(format!("{during} answers 503 during the stall"))
            .chain(freeze::gone_note(&gone))
            .collect(),
    ))
}
