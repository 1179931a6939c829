//! `ticketctl` processes: servers on loopback ports, and one-shot commands.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Conn, Outcome};

pub const ADMIN_TOKEN: &str = "faults-admin-token";

/// The environment variables `ticketctl` reads, cleared so the caller's shell cannot leak in.
const CLEARED: [&str; 8] = [
    "DATABASE_URL",
    "ADMIN_TOKEN",
    "BIND_ADDR",
    "RUST_LOG",
    "LOG_FORMAT",
    "HTTP_WORKERS",
    "METRICS_BIND",
    "RATE_LIMIT_PER_SECOND",
];

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A `ticketctl serve` process.
pub struct Server {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts a server on `url` with extra environment variables and waits until it answers.
    pub fn start(
        ticketctl: &Path,
        url: &str,
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(ticketctl);
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", url)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HTTP_WORKERS", "2")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", ticketctl.display()))?;
        let mut server = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut conn = Conn::new(port, Duration::from_secs(2));
        loop {
            if let Outcome::Answered { status: 200, .. } = conn.send("GET", "/health/live", &[], "")
            {
                return Ok(server);
            }
            if let Ok(Some(exit)) = server.child.try_wait() {
                return Err(format!(
                    "ticketctl serve exited ({exit}): {}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                return Err("ticketctl serve did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, within: Duration) -> Result<ExitStatus, String> {
        signal(self.child.id(), "TERM")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(exit);
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("did not exit within {within:?} of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a signal (`TERM`, `STOP`, `CONT`, ...) to a process.
pub fn signal(pid: u32, name: &str) -> Result<(), String> {
    if signal_if_alive(pid, name)? {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid}: no such process"))
    }
}

/// Sends a signal to a process that may have exited: `false` when there was none.
pub fn signal_if_alive(pid: u32, name: &str) -> Result<bool, String> {
    let out = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(true)
    } else if stderr.contains("No such process") {
        Ok(false)
    } else {
        Err(format!("kill -{name} {pid}: {}", stderr.trim()))
    }
}

/// Runs a one-shot `ticketctl` command on `url`: its stdout, or the error it printed.
pub fn ticketctl(ticketctl: &Path, url: &str, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(ticketctl);
    for var in CLEARED {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Creates events of `capacity` through the API; their ids.
pub fn create_events(server: &Server, count: usize, capacity: i64) -> Result<Vec<i64>, String> {
    let mut conn = Conn::new(server.port, Duration::from_secs(10));
    (0..count)
        .map(|i| {
            let body = format!(r#"{{"name":"Faults {i}","capacity":{capacity}}}"#);
            let auth = format!("Bearer {ADMIN_TOKEN}");
            match conn.send("POST", "/api/events", &[("Authorization", &auth)], &body) {
                Outcome::Answered {
                    status: 201, body, ..
                } => serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_i64())
                    .ok_or_else(|| format!("no id in {body}")),
                other => Err(format!("creating an event: {other:?}")),
            }
        })
        .collect()
}
