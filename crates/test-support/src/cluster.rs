//! A throwaway PostgreSQL cluster from the local server binaries, for machines without
//! `DATABASE_URL`. One cluster per user, made by the first test process that needs it (the
//! others wait for it), kept running for later runs. Durability is off: it only holds tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const PORT: u16 = 55_432;

fn bin_dir() -> Option<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|d| has_initdb(d))
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has_initdb(d)))
        })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Runs a server binary; as root, as the `postgres` user, since PostgreSQL refuses root.
fn run(bin: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub(crate) fn local_cluster_url() -> Result<String, String> {
    let bin = bin_dir().ok_or(
        "DATABASE_URL is not set and no PostgreSQL server binaries (initdb, pg_ctl) were found",
    )?;
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let base = std::env::temp_dir().join(format!("ticketing-test-pg-{user}"));
    let data = base.join("data");
    let ready = base.join("READY");
    let url = format!(
        "postgresql://postgres@/postgres?host={}&port={PORT}",
        base.display()
    );
    let lock = base.with_extension("lock");

    let running = || {
        run(
            &bin.join("pg_ctl"),
            &["-D", &data.to_string_lossy(), "status"],
        )
        .is_ok()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if ready.exists() && running() {
            return Ok(url);
        }
        // Making the cluster, or starting it again after a reboot or a stop, is done by one
        // test process at a time: the others wait here for it.
        if std::fs::create_dir(&lock).is_ok() {
            let result = if !ready.exists() {
                create(&bin, &base, &data)
                    .and_then(|()| start(&bin, &base, &data))
                    .and_then(|()| std::fs::write(&ready, b"").map_err(|e| e.to_string()))
            } else if running() {
                Ok(())
            } else {
                start(&bin, &base, &data)
            };
            let _ = std::fs::remove_dir(&lock);
            return result.map(|()| url);
        }
        // A lock left by a dead process goes stale.
        let stale = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .is_ok_and(|t| {
                SystemTime::now().duration_since(t).unwrap_or_default() > Duration::from_secs(90)
            });
        if stale {
            let _ = std::fs::remove_dir(&lock);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for the test cluster in {}",
                base.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create(bin: &Path, base: &Path, data: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(base);
    std::fs::create_dir_all(base).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres", &base.to_string_lossy()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot hand the test cluster's directory to the postgres user".into());
        }
    }
    run(
        &bin.join("initdb"),
        &[
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
}

fn start(bin: &Path, base: &Path, data: &Path) -> Result<(), String> {
    let options = format!(
        "-p {PORT} -k {} -c listen_addresses='' -c max_connections=400 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off",
        base.display()
    );
    let log = base.join("server.log");
    run(
        &bin.join("pg_ctl"),
        &[
            "-D",
            &data.to_string_lossy(),
            "-o",
            &options,
            "-l",
            &log.to_string_lossy(),
            "-w",
            "start",
        ],
    )
}

/// A PostgreSQL cluster owned by one test, on a free TCP port of 127.0.0.1, for tests that
/// stop and start the server or change how it is configured (TLS). Needs the local server
/// binaries; removed (stopped at once, files deleted) when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    base: PathBuf,
    data: PathBuf,
    port: u16,
    options: String,
}

impl PrivateCluster {
    /// Makes the cluster (`initdb`) without starting it.
    ///
    /// # Panics
    /// Without the local PostgreSQL server binaries, saying how to get them.
    pub fn init() -> Self {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "this test starts and stops a PostgreSQL server of its own and needs the local \
                 server binaries (initdb, pg_ctl; Debian: apt-get install postgresql)"
            )
        });
        let base = std::env::temp_dir().join(format!(
            "ticketing-private-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let data = base.join("data");
        create(&bin, &base, &data).unwrap_or_else(|e| panic!("initdb: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or_else(|e| panic!("no free port: {e}"), |a| a.port());
        Self {
            bin,
            base,
            data,
            port,
            options: String::new(),
        }
    }

    /// The cluster's own directory, where a test may put files the server reads.
    pub fn dir(&self) -> &Path {
        &self.base
    }

    /// Writes a file the server will read (as the server's user, mode 0600 when `private`).
    pub fn write_server_file(&self, name: &str, contents: &[u8], private: bool) -> PathBuf {
        let path = self.base.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if private { 0o600 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        if is_root() {
            let _ = Command::new("chown")
                .args(["postgres:postgres", &path.to_string_lossy()])
                .status();
        }
        path
    }

    /// Starts the server with these extra `-c name=value` options (kept for restarts).
    pub fn start_with(&mut self, extra_options: &str) {
        extra_options.clone_into(&mut self.options);
        self.start();
    }

    /// Starts the server (again), listening on `localhost`.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=localhost -c max_connections=100 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off {}",
            self.port,
            self.base.display(),
            self.options
        );
        let log = self.base.join("server.log");
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl start: {e}\n{log}")
        });
    }

    /// Stops the server the way a failover or a restart does: sessions are ended, in-flight
    /// transactions roll back.
    pub fn stop(&self) {
        self.stop_mode("fast");
    }

    /// Stops the server with `pg_ctl -m <mode>`: `fast` (sessions ended, clean shutdown) or
    /// `immediate` (every process killed at once, crash recovery at the next start).
    pub fn stop_mode(&self, mode: &str) {
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data.to_string_lossy(), "-m", mode, "-w", "stop"],
        )
        .unwrap_or_else(|e| panic!("pg_ctl stop -m {mode}: {e}"));
    }

    /// The server's data directory (see [`postgres_pids`] for its processes).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.base.join("server.log")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL of the `postgres` database through `host`, with extra URL parameters.
    pub fn url(&self, host: &str, parameters: &str) -> String {
        let query = if parameters.is_empty() {
            String::new()
        } else {
            format!("?{parameters}")
        };
        format!("postgresql://postgres@{host}:{}/postgres{query}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The process ids of the PostgreSQL server of data directory `pgdata`: the postmaster first
/// (from `postmaster.pid`), then its children. Empty when no server runs there.
pub fn postgres_pids(pgdata: &Path) -> Vec<u32> {
    let Some(postmaster) = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let children = Command::new("pgrep")
        .args(["-P", &postmaster.to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    std::iter::once(postmaster)
        .chain(children.lines().filter_map(|l| l.trim().parse().ok()))
        .collect()
}
