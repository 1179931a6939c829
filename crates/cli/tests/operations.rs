//! Running `ticketctl serve` in production: metrics, logs and request ids, graceful shutdown
//! under load, PostgreSQL going away and coming back, TLS to PostgreSQL. Each test runs the
//! server as a process of its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::type_complexity
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    assert_one_line_failure, exchange, migrated, run, stderr, ticketctl, Server, TempDir,
};
use prom_text_format_parser::Scrape;
use serde_json::Value;
use test_support::PrivateCluster;

/// An HTTP/1.1 client on one keep-alive connection.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// What one request on a keep-alive connection got: its status and whether the server said
/// it closes the connection after it.
struct Reply {
    status: u16,
    close: bool,
}

impl KeepAlive {
    fn connect(port: u16) -> Self {
        let writer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Each request leaves in one segment, as real clients send it.
        writer.set_nodelay(true).unwrap();
        writer
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    fn send(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<Reply> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let (mut length, mut close) = (0, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if header == "connection: close" {
                close = true;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Reply { status, close })
    }
}

fn create_event(server: &Server, capacity: i64) -> i64 {
    let (status, event) = server.request(
        "POST",
        "/api/events",
        &format!(r#"{{"name":"Ops","capacity":{capacity}}}"#),
    );
    assert_eq!(status, 201, "{event}");
    event["id"].as_i64().unwrap()
}

fn sigterm(server: &Server) {
    assert!(Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Stops a server started with `Stdio::piped()` stderr: SIGTERM, exit 0 within 30 s, and
/// everything it logged.
fn stop_and_read_logs(server: &mut Server) -> String {
    sigterm(server);
    assert_eq!(wait_exit(server, Duration::from_secs(30)).code(), Some(0));
    let mut logs = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    logs
}

fn wait_exit(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            return exit;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The body of a plain-text answer (`GET /metrics`).
fn text(port: u16, path: &str) -> (u16, String) {
    let raw = exchange(port, "GET", path, &[], "").expect("an answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .metrics
        .iter()
        .filter(|m| m.name == name)
        .flat_map(|m| &m.samples)
        .find(|s| {
            labels.len() == s.labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
        })
        .map(|s| s.value.value.as_f64())
}

#[test]
fn metrics_on_their_own_port_count_exactly_what_was_served() {
    let db = migrated();
    let metrics_port = common::free_port();
    let server = Server::start(
        db.url(),
        &[("METRICS_BIND", &format!("127.0.0.1:{metrics_port}"))],
    );
    let event = create_event(&server, 2);
    let reserve = format!("/api/events/{event}/reserve");
    for _ in 0..3 {
        server.request("POST", &reserve, "");
    }
    // Not on the public port.
    let (status, body) = server.request("GET", "/metrics", "");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    let (status, body) = text(metrics_port, "/metrics");
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body).unwrap_or_else(|e| panic!("{e:?} in\n{body}"));
    let route = "/api/events/{event}/reserve";
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("method", "POST"), ("route", route), ("status", "201")]
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("method", "POST"), ("route", route), ("status", "409")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "ticket_outcomes_total",
            &[("operation", "reserve"), ("outcome", "reserved")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "ticket_outcomes_total",
            &[("operation", "reserve"), ("outcome", "sold_out")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0),
        "the public /metrics is an unmatched route there"
    );
    // Three reserves, each alone: three write batches of one.
    let batches = scrape
        .metrics
        .iter()
        .find(|m| m.name == "batch_size")
        .unwrap();
    let count = batches
        .samples
        .iter()
        .find(|s| {
            s.value.value_type == prom_text_format_parser::ValueType::Count
                && s.labels.iter().any(|l| l.value == "write")
        })
        .map(|s| s.value.value.as_f64());
    assert_eq!(count, Some(3.0), "{body}");
}

#[test]
fn json_logs_name_each_request_and_its_batch_and_never_a_secret() {
    let db = migrated();
    // The server ignores a password it does not need (trust); the logs must not show it. The
    // URL may name a TCP host or a Unix socket (`postgresql://postgres@/postgres?host=/dir`,
    // which no URL parser takes for a host): the parameter is appended to the text.
    let separator = if db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}password=hunter2-in-query", db.url());
    let mut server = Server::spawn(
        ticketctl(Some(&url)),
        &[
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "info,access=debug,api=debug"),
        ],
        Stdio::piped(),
    );
    let event = create_event(&server, 5);
    let (status, _, hold) = server.request_with(
        "POST",
        &format!("/api/events/{event}/reserve"),
        &[("X-Request-Id", "trace-me-42")],
        "",
    );
    assert_eq!(status, 201);
    let (status, head, _) = server.request_with(
        "POST",
        &format!(
            "/api/reservations/{}/purchase",
            hold["id"].as_str().unwrap()
        ),
        &[("X-Request-Id", "trace-me-43")],
        r#"{"payment_reference":"pay-SECRET-123"}"#,
    );
    assert_eq!(status, 200);
    assert!(head.contains("x-request-id: trace-me-43"), "{head}");
    let (status, _) = server.request("GET", "/api/events/999999", "");
    assert_eq!(status, 404);
    let logs = stop_and_read_logs(&mut server);

    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["message"] == "answered" && l["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no access line of trace-me-42 in\n{logs}"));
    assert_eq!(answered["span"]["status"], 201, "{answered}");
    assert_eq!(answered["span"]["route"], "/api/events/{event}/reserve");
    let batch = answered["span"]["batch"]
        .as_u64()
        .unwrap_or_else(|| panic!("no batch in {answered}"));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "batch done" && l["batch"] == batch && l["engine"] == "write"),
        "no line of write batch {batch} in\n{logs}"
    );
    // A client's mistake is not a warning.
    assert!(
        !lines
            .iter()
            .any(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "{logs}"
    );
    for secret in ["hunter2-in-query", "cli-test-token", "pay-SECRET-123"] {
        assert!(!logs.contains(secret), "{secret} in\n{logs}");
    }
    assert!(logs.contains("password=***"), "{logs}");
}

#[test]
fn sigterm_under_load_answers_every_request_sent_before_it_and_exits_0() {
    let db = migrated();
    let mut server = Server::start(db.url(), &[("SHUTDOWN_GRACE_SECONDS", "20")]);
    let event = create_event(&server, 100_000_000);
    let path = format!("/api/events/{event}/reserve");
    let answered = Arc::new(AtomicUsize::new(0));
    // (sent at, status or None for no answer)
    let log: Arc<Mutex<Vec<(Instant, Option<u16>)>>> = Arc::default();
    let started = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (path, answered, log, port) =
                (path.clone(), answered.clone(), log.clone(), server.port);
            std::thread::spawn(move || {
                let mut conn = KeepAlive::connect(port);
                for _ in 0..20_000 {
                    if started.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    let sent = Instant::now();
                    let Ok(reply) = conn.send("POST", &path, "") else {
                        log.lock().unwrap().push((sent, None));
                        break;
                    };
                    answered.fetch_add(1, Ordering::Relaxed);
                    log.lock().unwrap().push((sent, Some(reply.status)));
                    if reply.close {
                        break;
                    }
                }
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < 2_000 {
        assert!(started.elapsed() < Duration::from_secs(30), "no load");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    sigterm(&server);
    for client in clients {
        client.join().unwrap();
    }
    let exit = wait_exit(&mut server, Duration::from_secs(25));
    let stopped_in = signalled.elapsed();

    assert_eq!(exit.code(), Some(0), "{exit:?}");

    let log = log.lock().unwrap();
    let before: Vec<_> = log.iter().filter(|(sent, _)| *sent < signalled).collect();
    let unanswered = before.iter().filter(|(_, status)| status.is_none()).count();
    assert_eq!(
        unanswered, 0,
        "requests sent before SIGTERM left without an answer"
    );
    assert!(
        before.iter().all(|(_, status)| *status == Some(201)),
        "{:?}",
        before
            .iter()
            .filter(|(_, s)| *s != Some(201))
            .take(5)
            .collect::<Vec<_>>()
    );
    let after = log.iter().filter(|(sent, _)| *sent >= signalled).count();
    // Connections close after their next answer: the server empties out well inside its grace.
    assert!(stopped_in < Duration::from_secs(15), "{stopped_in:?}");
    eprintln!(
        "{} requests before SIGTERM, all answered 201; {after} sent after; exited in {stopped_in:?}",
        before.len()
    );
    let out = run(ticketctl(Some(db.url())).args(["events", "check", &event.to_string()]));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// One request on a fresh connection, timed: status, whether `Retry-After` came, how long.
fn timed(port: u16, method: &str, path: &str) -> (Option<u16>, bool, Duration) {
    let started = Instant::now();
    let raw = exchange(port, method, path, &[], "");
    let elapsed = started.elapsed();
    let status = raw
        .as_deref()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    let retry_after = raw
        .as_deref()
        .is_some_and(|r| r.to_ascii_lowercase().contains("\r\nretry-after: "));
    (status, retry_after, elapsed)
}

#[test]
fn postgresql_stopped_under_load_gets_503_in_time_and_the_server_recovers_by_itself() {
    let mut cluster = PrivateCluster::init();
    cluster.start_with("");
    let url = cluster.url("127.0.0.1", "");
    let server = Server::start(
        &url,
        &[
            ("REQUEST_DEADLINE_MS", "1000"),
            ("DATABASE_POOL_TIMEOUT_SECONDS", "2"),
            ("EXPIRE_INTERVAL_SECONDS", "0"),
        ],
    );
    let event = create_event(&server, 100_000_000);
    let path = format!("/api/events/{event}/reserve");
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<(Instant, Option<u16>, bool, Duration)>>> = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (path, stop, log, port) = (path.clone(), stop.clone(), log.clone(), server.port);
            std::thread::spawn(move || {
                let started = Instant::now();
                for _ in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(90) {
                        break;
                    }
                    let at = Instant::now();
                    let (status, retry_after, took) = timed(port, "POST", &path);
                    log.lock().unwrap().push((at, status, retry_after, took));
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    // The load is being served before PostgreSQL goes.
    let started = Instant::now();
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|(_, status, ..)| *status == Some(201))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no 201 before the outage"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(timed(server.port, "GET", "/health/ready").0, Some(200));

    cluster.stop();
    let down = Instant::now();
    let mut not_ready = None;
    while down.elapsed() < Duration::from_secs(10) {
        let (status, retry_after, took) = timed(server.port, "GET", "/health/ready");
        if status == Some(503) {
            assert!(retry_after);
            assert!(took < Duration::from_millis(1_500), "{took:?}");
            not_ready = Some(down.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(not_ready.is_some(), "/health/ready kept answering 200");
    assert_eq!(timed(server.port, "GET", "/health/live").0, Some(200));
    // The clients have met the outage (a 503 to a reserve sent after PostgreSQL stopped).
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|(at, status, ..)| *at > down && *status == Some(503))
    {
        assert!(
            down.elapsed() < Duration::from_secs(20),
            "no reserve answered 503 while down"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    cluster.start();
    let up = Instant::now();
    while timed(server.port, "GET", "/health/ready").0 != Some(200) {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "not ready 30 s after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let recovered = Instant::now();
    loop {
        let served_again = log
            .lock()
            .unwrap()
            .iter()
            .any(|(at, status, _, _)| *at > recovered && *status == Some(201));
        if served_again {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(30),
            "no 201 after recovery"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    let log = log.lock().unwrap();
    let during: Vec<_> = log
        .iter()
        .filter(|(at, ..)| *at > down && *at < up)
        .collect();
    assert!(
        during.iter().any(|(_, status, ..)| *status == Some(503)),
        "no 503 while PostgreSQL was down"
    );
    for (_, status, retry_after, took) in log.iter() {
        assert!(
            matches!(status, Some(201 | 503)),
            "answer {status:?} (none: the client gave up or the connection broke)"
        );
        if *status == Some(503) {
            assert!(retry_after, "503 without Retry-After");
        }
        // Within the deadline, plus room for a loaded machine.
        assert!(*took < Duration::from_millis(2_500), "{took:?}");
    }
    eprintln!(
        "{} requests: {} answered 503 while PostgreSQL was down; ready 503 after {:?}",
        log.len(),
        during.len(),
        not_ready.unwrap()
    );
    let out = run(ticketctl(Some(&url)).args(["events", "check", &event.to_string()]));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A certificate authority and a server certificate for `localhost` only.
fn certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("this test needs the openssl command (Debian: apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=Test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn tls_to_postgresql_require_and_verify_full_connect_and_a_wrong_host_name_fails_in_one_line() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let mut cluster = PrivateCluster::init();
    let read = |name: &str| std::fs::read(certs.0.join(name)).unwrap();
    let cert = cluster.write_server_file("server.crt", &read("server.crt"), false);
    let key = cluster.write_server_file("server.key", &read("server.key"), true);
    cluster.start_with(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert.display(),
        key.display()
    ));
    let ca = certs.0.join("ca.crt");
    let verify = format!("sslmode=verify-full&sslrootcert={}", ca.display());

    let out = run(ticketctl(Some(&cluster.url("localhost", "sslmode=require"))).arg("migrate"));
    assert!(out.status.success(), "require: {}", stderr(&out));
    let out = run(ticketctl(Some(&cluster.url("localhost", &verify))).arg("migrate"));
    assert!(out.status.success(), "verify-full: {}", stderr(&out));

    let out = run(ticketctl(Some(&cluster.url("127.0.0.1", &verify))).arg("migrate"));
    assert_one_line_failure(&out, "does not match host name");
    assert!(stderr(&out).contains("127.0.0.1"), "{}", stderr(&out));

    // The server says what protects its connections.
    let mut server = Server::spawn(
        ticketctl(Some(&cluster.url("localhost", &verify))),
        &[],
        Stdio::piped(),
    );
    let logs = stop_and_read_logs(&mut server);
    assert!(logs.contains("(TLS: TLSv1."), "{logs}");
}

#[test]
fn bad_operations_settings_fail_at_start_in_one_line() {
    let db = migrated();
    for (var, value, mentions) in [
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip", "TRUSTED_PROXIES"),
        ("CORS_ALLOWED_ORIGINS", "*", "CORS_ALLOWED_ORIGINS"),
    ] {
        let out = run(ticketctl(Some(db.url()))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env(var, value)
            .env("RATE_LIMIT_PER_SECOND", "5"));
        assert_one_line_failure(&out, mentions);
    }
}
