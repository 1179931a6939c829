//! (h) Losing the primary: a `pg_auto_failover` formation (a monitor and two or three data nodes
//! with synchronous replication, on loopback) under reserving clients; the primary node is
//! killed (`SIGKILL`) and the monitor promotes a standby. Needs `pg_autoctl` (Debian:
//! `apt-get install postgresql-15-auto-failover pg-auto-failover-cli`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::checker::{self, Check, Sampler};
use crate::db::Db;
use crate::freeze::{self, Frozen};
use crate::history::Record;
use crate::scenarios::{Ctx, Report};
use crate::servers::{self, Server};
use crate::workload::Workload;

/// How a scenario says it cannot run here for want of a package (reported as skipped).
pub const SKIP: &str = "needs ";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// `pg_autoctl` as the `postgres` user when run as root (PostgreSQL refuses root).
fn autoctl(args: &[&str]) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "pg_autoctl"]);
        c
    } else {
        Command::new("pg_autoctl")
    };
    cmd.args(args).env(
        "PATH",
        format!(
            "{}:{}",
            server_bin_dir(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    cmd
}

/// The newest local PostgreSQL server binaries (`pg_autoctl` runs `pg_ctl` and `initdb`).
fn server_bin_dir() -> String {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.last()
        .map_or_else(String::new, |d| d.display().to_string())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A monitor and data nodes, torn down (every process killed, files removed) when dropped.
struct Formation {
    base: PathBuf,
    monitor_port: u16,
    ports: Vec<u16>,
    keepers: Vec<Child>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct NodeState {
    #[diesel(sql_type = Bool)]
    writable: bool,
    #[diesel(sql_type = Bool)]
    replicating: bool,
}

impl Formation {
    fn up(dir: &Path, nodes: usize, sync_standbys: u32) -> Result<Self, String> {
        if Command::new("pg_autoctl")
            .arg("--version")
            .output()
            .is_err()
        {
            return Err(format!(
                "{SKIP}pg_autoctl (Debian: apt-get install postgresql-<version>-auto-failover \
                 pg-auto-failover-cli)"
            ));
        }
        // Under the temporary directory: the postgres user must reach it.
        let _ = dir;
        let base = std::env::temp_dir().join(format!(
            "faults-formation-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        if is_root() {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres", &base.to_string_lossy()])
                .status();
        }
        let mut formation = Self {
            monitor_port: free_port()?,
            ports: (0..nodes).map(|_| free_port()).collect::<Result<_, _>>()?,
            base,
            keepers: Vec::new(),
        };
        let monitor_dir = formation.base.join("monitor");
        Self::create(&[
            "create",
            "monitor",
            "--pgdata",
            &monitor_dir.to_string_lossy(),
            "--pgport",
            &formation.monitor_port.to_string(),
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
        ])?;
        formation.run(&monitor_dir)?;
        let monitor = format!(
            "postgres://postgres@127.0.0.1:{}/pg_auto_failover",
            formation.monitor_port
        );
        let mut conn = wait_connect(&monitor, Duration::from_secs(30))?;
        // Failure detection in seconds rather than the default tens of seconds.
        for setting in [
            "pgautofailover.health_check_period = 1000",
            "pgautofailover.health_check_timeout = 1000",
            "pgautofailover.health_check_max_retries = 1",
            "pgautofailover.health_check_retry_delay = 500",
            "pgautofailover.node_considered_unhealthy_timeout = 3000",
            // How long a promoted standby stays read-only while the old primary, which cannot
            // be reached, might still accept writes (30 s by default).
            "pgautofailover.primary_demote_timeout = 3000",
        ] {
            // One statement at a time: ALTER SYSTEM refuses to run in a transaction block.
            diesel::sql_query(format!("ALTER SYSTEM SET {setting}"))
                .execute(&mut conn)
                .map_err(|e| e.to_string())?;
        }
        diesel::sql_query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .map_err(|e| e.to_string())?;
        let node_monitor = format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            formation.monitor_port
        );
        for i in 0..nodes {
            let pgdata = formation.base.join(format!("node{i}"));
            Self::create(&[
                "create",
                "postgres",
                "--pgdata",
                &pgdata.to_string_lossy(),
                "--pgport",
                &formation.ports[i].to_string(),
                "--hostname",
                "127.0.0.1",
                "--auth",
                "trust",
                "--no-ssl",
                "--dbname",
                "tickets",
                "--monitor",
                &node_monitor,
                "--name",
                &format!("node{i}"),
            ])?;
            formation.run(&pgdata)?;
            Self::wait_settled(&mut conn, i + 1, Duration::from_secs(90))?;
        }
        if sync_standbys > 0 {
            diesel::sql_query(format!(
                "SELECT pgautofailover.set_formation_number_sync_standbys('default', {sync_standbys})"
            ))
            .execute(&mut conn)
            .map_err(|e| format!("number-sync-standbys: {e}"))?;
            Self::wait_settled(&mut conn, nodes, Duration::from_secs(60))?;
        }
        Ok(formation)
    }

    fn create(args: &[&str]) -> Result<(), String> {
        let out = autoctl(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_autoctl {}: {}",
                args[..2].join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn run(&mut self, pgdata: &Path) -> Result<(), String> {
        let log = std::fs::File::create(format!("{}.log", pgdata.display()))
            .map_err(|e| e.to_string())?;
        let child = autoctl(&["run", "--pgdata", &pgdata.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        self.keepers.push(child);
        Ok(())
    }

    /// Waits until `nodes` data nodes report the state the monitor assigned them.
    fn wait_settled(conn: &mut PgConnection, nodes: usize, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let settled: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM pgautofailover.node
                  WHERE reportedstate = goalstate AND reportedstate IN ('single', 'primary', 'secondary')",
            )
            .get_result(conn)
            .map_err(|e| e.to_string())?;
            if usize::try_from(settled.n).unwrap_or(0) >= nodes {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the formation did not settle with {nodes} nodes in {within:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The libpq multi-host URL an application uses: whichever node is writable.
    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!(
            "postgres://postgres@{}/tickets?target_session_attrs=read-write&connect_timeout=2\
             &keepalives_idle=5&keepalives_interval=1&keepalives_count=3",
            hosts.join(",")
        )
    }

    fn node_url(&self, i: usize) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/tickets?connect_timeout=1",
            self.ports[i]
        )
    }

    /// The data node that accepts writes now.
    fn primary(&self) -> Option<usize> {
        (0..self.ports.len()).find(|i| writable(&self.node_url(*i)))
    }

    /// Kills a data node outright: its keeper, its workers and its PostgreSQL.
    fn kill_node(&self, i: usize) {
        // keepers[0] is the monitor's.
        if let Some(keeper) = self.keepers.get(i + 1) {
            kill_tree(keeper.id());
        }
        kill_pgdata(&self.base.join(format!("node{i}")));
    }
}

fn writable(url: &str) -> bool {
    node_state(url).is_some_and(|n| n.writable)
}

fn node_state(url: &str) -> Option<NodeState> {
    let mut c = PgConnection::establish(url).ok()?;
    // `writable` is what `target_session_attrs=read-write` asks: a promoted node stays
    // read-only until the monitor lets it accept writes.
    diesel::sql_query(
        "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' AS writable, \
                current_setting('synchronous_standby_names') = '' \
                OR EXISTS (SELECT 1 FROM pg_stat_replication \
                           WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')) AS replicating",
    )
    .get_result::<NodeState>(&mut c)
    .ok()
}

fn wait_connect(url: &str, within: Duration) -> Result<PgConnection, String> {
    let deadline = Instant::now() + within;
    loop {
        match PgConnection::establish(url) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(format!("{url}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Every process whose environment names `pgdata`: `pg_autoctl`'s workers outlive their
/// supervisor as orphans (and would start PostgreSQL again), but keep `PGDATA` in their
/// environment.
fn kill_pgdata(pgdata: &Path) {
    let wanted = format!("PGDATA={}", pgdata.display());
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
                })
                .map(|pid| pid.to_string())
                .collect()
        })
        .unwrap_or_default();
    if !pids.is_empty() {
        kill_quietly(&pids);
    }
}

/// Every process below `root` (from /proc), found before any is killed, then all killed at
/// once.
fn kill_tree(root: u32) {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter_map(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    // pid (comm) state ppid ...: comm may hold spaces, so read after the ')'.
                    let ppid = stat
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()?;
                    Some((pid, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    let pids: Vec<String> = tree.iter().map(u32::to_string).collect();
    kill_quietly(&pids);
}

/// SIGKILL at teardown: a process of the list may exit before its turn (its parent went
/// first), which `kill` would print as an error that is none.
fn kill_quietly(pids: &[String]) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids)
        .stderr(Stdio::null())
        .status();
}

impl Drop for Formation {
    fn drop(&mut self) {
        for keeper in &self.keepers {
            kill_tree(keeper.id());
        }
        kill_pgdata(&self.base.join("monitor"));
        for i in 0..self.ports.len() {
            kill_pgdata(&self.base.join(format!("node{i}")));
        }
        for keeper in &mut self.keepers {
            let _ = keeper.kill();
            let _ = keeper.wait();
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// (h) The primary killed (`SIGKILL`) under 16 reserving clients.
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
pub fn failover(ctx: &Ctx, nodes: usize) -> Result<Report, String> {
    let name = if nodes == 2 { "failover" } else { "failover-3" };
    let sync_standbys = u32::from(nodes >= 3);
    let setup = Instant::now();
    let formation = Formation::up(&ctx.dir, nodes, sync_standbys)?;
    let setup = setup.elapsed();
    let db = Db::Postgres(formation.url());
    servers::ticketctl(&ctx.ticketctl, &db.url(), &["migrate"])?;
    let server = Server::start(
        &ctx.ticketctl,
        &db.url(),
        &[
            ("REQUEST_DEADLINE_MS", "2000"),
            ("DATABASE_POOL_TIMEOUT_SECONDS", "2"),
            ("EXPIRE_INTERVAL_SECONDS", "0"),
        ],
        ctx.dir.join(format!("{name}.log")),
    )?;
    let events = servers::create_events(&server, 4, 100_000_000)?;
    let primary = formation.primary().ok_or("no writable node")?;
    let origin = Instant::now();
    let sampler = Sampler::start(db.clone(), Duration::from_millis(250));
    let running = Workload {
        clients: 16,
        events: events.clone(),
        ports: vec![server.port],
        client_timeout: Duration::from_secs(30),
        purchase_after: None,
        mix: (100, 0, 0),
    }
    .start(origin, Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(if ctx.short { 3 } else { 6 }));
    let killed = origin.elapsed();
    formation.kill_node(primary);
    // When a surviving node accepts writes, and when it can acknowledge them (its synchronous
    // standbys, if it asks for any, stream from it): the formation's own share of the failover.
    let survivors: Vec<String> = (0..nodes)
        .filter(|i| *i != primary)
        .map(|i| formation.node_url(i))
        .collect();
    let (mut writable_at, mut promoted) = (None, None);
    while promoted.is_none() && origin.elapsed() < killed + Duration::from_secs(120) {
        for state in survivors.iter().filter_map(|u| node_state(u)) {
            if state.writable {
                writable_at.get_or_insert(origin.elapsed());
                if state.replicating {
                    promoted = Some(origin.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(if ctx.short { 4 } else { 8 }));
    let records = running.stop();
    let mut checks = checker::answers(&records, Duration::from_millis(3_500), &|_: &Record| false);
    checks.push(sampler.finish());
    // The first hold acknowledged once a new primary could acknowledge (the old one is dead
    // by then, so it was committed on the new one).
    let first_on_new = promoted.and_then(|p| {
        records
            .iter()
            .filter(|r| r.acknowledged() && r.ended >= p)
            .map(|r| r.ended)
            .min()
    });
    let writable_share = writable_at.map(|w| w.saturating_sub(killed));
    let formation_share = promoted.map(|p| p.saturating_sub(killed));
    let server_share = promoted
        .zip(first_on_new)
        .map(|(p, first)| first.saturating_sub(p));
    let first_after = first_on_new.map(|first| first.saturating_sub(killed));
    checks.push(match server_share {
        Some(s) if s <= Duration::from_secs(1) => Check::pass(
            "first 201 within 1 s of a new primary that acknowledges",
            format!("{:.2} s", s.as_secs_f64()),
        ),
        other => Check::fail(
            "first 201 within 1 s of a new primary that acknowledges",
            format!("{other:?}"),
        ),
    });
    checks.extend(checker::database(&db, &records, &ctx.ticketctl, &events));
    let unavailable = records
        .iter()
        .filter(|r| r.outcome.status() == Some(503))
        .count();
    let acknowledged = records.iter().filter(|r| r.acknowledged()).count();
    drop(server);
    Ok(Report {
        name,
        store: "postgres",
        what: "",
        seconds: origin.elapsed().as_secs_f64(),
        requests: records.len(),
        statuses: checker::by_status(&records),
        faults: vec![format!(
            "SIGKILL of the primary (node{primary}) of {nodes} data nodes{} at {:.1} s",
            if sync_standbys > 0 {
                ", number-sync-standbys 1"
            } else {
                ""
            },
            killed.as_secs_f64()
        )],
        checks,
        recovery: first_after,
        notes: vec![
            format!("{acknowledged} acknowledged holds, {unavailable} answers 503"),
            format!(
                "new primary writable {} and acknowledging (its synchronous standbys streaming) {} after the kill (the formation's share); first 201 {} after that (the server's share)",
                seconds(writable_share),
                seconds(formation_share),
                seconds(server_share),
            ),
            format!("formation set up in {:.1} s", setup.as_secs_f64()),
        ],
    })
}

/// How many lines a node's PostgreSQL logs hold, and those that contain `needle`.
fn node_log_lines(formation: &Formation, i: usize, needle: &str) -> (usize, Vec<String>) {
    let dir = formation.base.join(format!("node{i}")).join("log");
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    let lines = texts.iter().map(|t| t.lines().count()).sum();
    let found = texts
        .iter()
        .flat_map(|t| t.lines().filter(|l| l.contains(needle)).map(str::to_owned))
        .collect();
    (lines, found)
}

/// (h) The synchronous standby stalls (SIGSTOP) while clients reserve, with a statement
/// timeout far shorter than the stall: commits wait for the standby and are never cancelled
/// into a "success with a warning" that exists on the primary only.
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
pub fn standby_stall(ctx: &Ctx) -> Result<Report, String> {
    let name = "standby-stall";
    let formation = Formation::up(&ctx.dir, 2, 0)?;
    let db = Db::Postgres(formation.url());
    servers::ticketctl(&ctx.ticketctl, &db.url(), &["migrate"])?;
    let server = Server::start(
        &ctx.ticketctl,
        &db.url(),
        &[
            ("REQUEST_DEADLINE_MS", "2000"),
            ("STATEMENT_TIMEOUT_MS", "300"),
            ("EXPIRE_INTERVAL_SECONDS", "0"),
        ],
        ctx.dir.join(format!("{name}.log")),
    )?;
    let events = servers::create_events(&server, 4, 100_000_000)?;
    let primary = formation.primary().ok_or("no writable node")?;
    let standby = 1 - primary;
    let origin = Instant::now();
    let running = Workload {
        clients: 16,
        events: events.clone(),
        ports: vec![server.port],
        client_timeout: Duration::from_secs(30),
        purchase_after: None,
        mix: (100, 0, 0),
    }
    .start(origin, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    let stalled = origin.elapsed();
    let frozen = Frozen::stop(&formation.base.join(format!("node{standby}")))?;
    let processes = frozen.processes();
    std::thread::sleep(Duration::from_secs(5));
    let gone = frozen.thaw()?;
    let resumed = origin.elapsed();
    std::thread::sleep(Duration::from_secs(if ctx.short { 3 } else { 6 }));
    let records = running.stop();
    let mut checks = checker::answers(&records, Duration::from_millis(3_500), &|_: &Record| false);
    let (lines, cancelled) = node_log_lines(
        &formation,
        primary,
        "canceling wait for synchronous replication",
    );
    checks.push(if lines == 0 {
        Check::fail("no commit's wait for the standby cancelled", "the primary's log was not found".into())
    } else if cancelled.is_empty() {
        Check::pass(
            "no commit's wait for the standby cancelled",
            format!("no \"canceling wait for synchronous replication\" in the primary's log ({lines} lines)"),
        )
    } else {
        Check::fail("no commit's wait for the standby cancelled", cancelled.join("; "))
    });
    checks.extend(checker::database(&db, &records, &ctx.ticketctl, &events));
    // Every acknowledged hold also reached the standby (once it caught up).
    let standby_db = Db::Postgres(formation.node_url(standby));
    let deadline = Instant::now() + Duration::from_secs(30);
    let acknowledged: Vec<&str> = records
        .iter()
        .filter_map(|r| r.created.as_deref())
        .collect();
    if acknowledged.is_empty() {
        return Err("no hold was acknowledged: nothing to look for on the standby".into());
    }
    let missing = loop {
        let rows = standby_db.reservations()?;
        let missing: Vec<String> = acknowledged
            .iter()
            .filter(|id| !rows.contains_key(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    checks.push(Check::when(
        "every acknowledged hold is on the standby too",
        missing.is_empty(),
        format!("{} holds", acknowledged.len()),
        format!(
            "{} missing, e.g. {}",
            missing.len(),
            missing.first().map_or("", String::as_str)
        ),
    ));
    // Commits waited for the stopped standby (answered 503 at the deadline, or slow): else
    // synchronous replication was not in effect and the checks above tested nothing.
    let waited = records
        .iter()
        .filter(|r| r.started > stalled && r.started < resumed)
        .filter(|r| r.outcome.status() == Some(503) || r.took() >= Duration::from_secs(1))
        .count();
    checks.push(Check::when(
        "commits waited for the stopped standby",
        waited > 0,
        format!("{waited} requests sent during the stall answered 503 or took over 1 s"),
        "every request during the stall was answered at once: replication was not synchronous"
            .into(),
    ));
    let during: BTreeMap<String, usize> = checker::by_status(
        &records
            .iter()
            .filter(|r| r.started > stalled && r.started < resumed)
            .cloned()
            .collect::<Vec<_>>(),
    );
    drop(server);
    Ok(Report {
        name,
        store: "postgres",
        what: "",
        seconds: origin.elapsed().as_secs_f64(),
        requests: records.len(),
        statuses: checker::by_status(&records),
        faults: vec![format!(
            "SIGSTOP of the synchronous standby (node{standby}, {processes} processes) at {:.1} s for 5 s; statement_timeout 300 ms",
            stalled.as_secs_f64()
        )],
        checks,
        recovery: checker::recovery(&records, resumed),
        notes: std::iter::once(format!(
            "answers to requests sent during the stall: {during:?}"
        ))
        .chain(freeze::gone_note(&gone))
        .collect(),
    })
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}
