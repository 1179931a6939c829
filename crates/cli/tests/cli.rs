//! `ticketctl` as operators run it: a separate process, its exit code, its output, and a server
//! answering HTTP from outside the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use domain::{EventId, Quantity, ReservationStatus, Reserve, Ticketing};
use serde_json::Value;
use test_support::TestDatabase;

#[test]
fn help_shows_every_flag_with_its_environment_variable() {
    let serve = stdout(&run(ticketctl(None).args(["serve", "--help"])));
    for var in [
        "DATABASE_URL",
        "BIND_ADDR",
        "RESERVATION_TTL_SECONDS",
        "ADMIN_TOKEN",
        "EXPIRE_INTERVAL_SECONDS",
        "DATABASE_POOL_SIZE",
        "LOG_FORMAT",
        "NO_MIGRATE",
        "BATCH_MAX",
        "WRITE_LANES",
        "QUEUE_MAX",
        "REQUEST_DEADLINE_MS",
        "MAX_TICKETS_PER_RESERVATION",
        "MAX_TICKETS_PER_CUSTOMER",
        "IDEMPOTENCY_TTL_SECONDS",
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
        "MAX_HOLD_SECONDS",
    ] {
        assert!(
            serve.contains(&format!("[env: {var}")),
            "serve --help lacks {var}:\n{serve}"
        );
    }
    assert!(
        serve.contains("[default: 127.0.0.1:8080]") && serve.contains("[default: 600]"),
        "{serve}"
    );
    let expire = stdout(&run(ticketctl(None).args([
        "reservations",
        "expire",
        "--help",
    ])));
    assert!(
        expire.contains("[env: DATABASE_POOL_SIZE") && expire.contains("[env: DATABASE_URL"),
        "{expire}"
    );
}

#[test]
fn events_update_and_list_print_json_and_refuse_a_capacity_below_sold() {
    let db = migrated();
    let create = |name: &str, capacity: &str| {
        let out = run(ticketctl(Some(db.url())).args([
            "events",
            "create",
            "--name",
            name,
            "--capacity",
            capacity,
        ]));
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["id"].to_string()
    };
    let old = create("Old", "5");
    let new = create("New", "8");
    let (t, _) = ticketing_at(db.url(), Utc::now(), 600);
    t.reserve(Reserve::untyped(
        old.parse().unwrap(),
        Quantity::new(3, 10).unwrap(),
        None,
    ))
    .unwrap();

    let out = run(ticketctl(Some(db.url())).args([
        "events",
        "update",
        &old,
        "--name",
        "Renamed",
        "--capacity",
        "4",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let updated: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["capacity"].as_i64(),
            updated["available"].as_i64()
        ),
        (Some("Renamed"), Some(4), Some(1))
    );
    let below = run(ticketctl(Some(db.url())).args(["events", "update", &old, "--capacity", "2"]));
    assert_one_line_failure(&below, "capacity");
    let nothing = run(ticketctl(Some(db.url())).args(["events", "update", &old]));
    assert_one_line_failure(&nothing, "nothing to change");

    let out = run(ticketctl(Some(db.url())).args(["events", "list", "--limit", "1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let page: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(page["events"][0]["id"].to_string(), new);
    assert_eq!(page["next"].to_string(), new);
    let out = run(ticketctl(Some(db.url())).args(["events", "list", "--after", &new]));
    let rest: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rest["events"][0]["name"], "Renamed");
    assert_eq!(rest["next"], Value::Null);
}

#[test]
fn quotas_and_ticket_types_are_managed_from_the_command_line_by_flag_or_variable() {
    let db = migrated();
    let event = stdout(&run(ticketctl(Some(db.url())).args([
        "events",
        "create",
        "--name",
        "Fest",
        "--capacity",
        "100",
    ])));
    let event: Value = serde_json::from_str(&event).unwrap();
    let id = event["id"].to_string();
    let quota = |name: &str, capacity: &str| {
        let out = run(ticketctl(Some(db.url()))
            .args(["quotas", "create", "--event", &id])
            .env("QUOTA_NAME", name)
            .env("QUOTA_CAPACITY", capacity));
        assert!(out.status.success(), "{}", stderr(&out));
        let quota: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            (quota["name"].as_str(), quota["available"].as_i64()),
            (Some(name), capacity.parse().ok())
        );
        quota["id"].to_string()
    };
    let (saturday, sunday) = (quota("Saturday", "30"), quota("Sunday", "40"));
    let out = run(ticketctl(Some(db.url())).args([
        "ticket-types",
        "create",
        "--event",
        &id,
        "--name",
        "Weekend pass",
        "--quotas",
        &format!("{saturday},{sunday}"),
        "--max-per-reservation",
        "4",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let pass: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(pass["available"], 30);
    assert_eq!(pass["max_per_reservation"], 4);
    let out = run(ticketctl(Some(db.url()))
        .args(["ticket-types", "create", "--name", "Odd"])
        .env("EVENT_ID", &id)
        .env("TICKET_TYPE_QUOTAS", "999999"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("quotas"), "{}", stderr(&out));
    let list = run(ticketctl(Some(db.url())).args(["ticket-types", "list", "--event", &id]));
    let types: Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(types.as_array().map(Vec::len), Some(1), "{types}");
    let out = run(ticketctl(Some(db.url())).args([
        "quotas",
        "update",
        "--event",
        &id,
        "--quota",
        &saturday,
        "--capacity",
        "25",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let check = run(ticketctl(Some(db.url())).args(["events", "check", &id]));
    assert!(check.status.success(), "{}", stderr(&check));
    let report: Value = serde_json::from_str(&stdout(&check)).unwrap();
    assert_eq!(report["quotas"][0]["capacity"], 25, "{report}");
    assert_eq!(report["ticket_types"].as_array().map(Vec::len), Some(1));
    let nothing =
        run(ticketctl(Some(db.url()))
            .args(["quotas", "update", "--event", &id, "--quota", &saturday]));
    assert_eq!(nothing.status.code(), Some(1));
}

#[test]
fn two_servers_on_one_database_never_oversell_a_quota_under_typed_and_multi_line_reserves() {
    let db = migrated();
    let servers = Arc::new([Server::start(db.url(), &[]), Server::start(db.url(), &[])]);
    let (_, event) = servers[0].request("POST", "/api/events", r#"{"name":"Fest","capacity":60}"#);
    let id = event["id"].as_i64().unwrap();
    let post = |path: &str, body: String| {
        servers[0].request("POST", path, &body).1["id"]
            .as_i64()
            .unwrap()
    };
    let quotas = format!("/api/events/{id}/quotas");
    let saturday = post(&quotas, r#"{"name":"Saturday","capacity":30}"#.into());
    let sunday = post(&quotas, r#"{"name":"Sunday","capacity":40}"#.into());
    let types = format!("/api/events/{id}/ticket-types");
    let kind = |name: &str, quotas: &[i64]| {
        post(
            &types,
            format!(r#"{{"name":"{name}","quotas":{quotas:?}}}"#),
        )
    };
    let (sat, sun, pass, vip) = (
        kind("Saturday", &[saturday]),
        kind("Sunday", &[sunday]),
        kind("Weekend pass", &[saturday, sunday]),
        kind("VIP", &[]),
    );
    let orders = Arc::new([
        format!(r#"{{"ticket_type":{sat},"quantity":2}}"#),
        format!(r#"{{"ticket_type":{pass}}}"#),
        format!(r#"{{"lines":[{{"ticket_type":{sun},"quantity":2}},{{"ticket_type":{pass}}}]}}"#),
        format!(r#"{{"lines":[{{"ticket_type":{vip},"quantity":2}},{{"ticket_type":{sat}}}]}}"#),
    ]);
    let threads = 120;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (servers, barrier, orders) = (
                Arc::clone(&servers),
                Arc::clone(&barrier),
                Arc::clone(&orders),
            );
            std::thread::spawn(move || {
                barrier.wait();
                servers[i % 2].request(
                    "POST",
                    &format!("/api/events/{id}/reserve"),
                    &orders[i % orders.len()],
                )
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 201 || (*s == 409 && b["error"] == "sold_out")),
        "{answers:?}"
    );
    // The tickets granted, counted from the answers: per quota, the lines of its types.
    let granted = |types: &[i64]| -> i64 {
        answers
            .iter()
            .filter(|(s, _)| *s == 201)
            .flat_map(|(_, b)| b["lines"].as_array().cloned().unwrap_or_default())
            .filter(|l| types.contains(&l["ticket_type"].as_i64().unwrap()))
            .map(|l| l["quantity"].as_i64().unwrap())
            .sum()
    };
    let (on_saturday, on_sunday) = (granted(&[sat, pass]), granted(&[sun, pass]));
    let total = granted(&[sat, sun, pass, vip]);
    let read = servers[1]
        .request("GET", &format!("/api/events/{id}"), "")
        .1;
    let reserved = |i: usize| read["quotas"][i]["reserved"].as_i64().unwrap();
    assert_eq!(
        (reserved(0), reserved(1), read["reserved"].as_i64().unwrap()),
        (on_saturday, on_sunday, total)
    );
    assert!(on_saturday <= 30 && on_sunday <= 40 && total <= 60);
    assert!(
        answers.iter().any(|(s, _)| *s == 409),
        "the festival sold out"
    );
    let out = run(ticketctl(Some(db.url())).args(["events", "check", &id.to_string()]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Reads Server-Sent Events frames from `stream` until one whose `data` has `available` equal
/// to `wanted`, within 10 s.
fn frame_with_available(
    reader: &mut std::io::BufReader<std::net::TcpStream>,
    wanted: i64,
) -> Value {
    use std::io::BufRead;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let body: Value = serde_json::from_str(data).unwrap();
            if body["available"] == wanted {
                return body;
            }
        }
    }
    panic!("no frame with {wanted} available");
}

#[test]
fn a_change_made_through_one_server_reaches_the_stream_of_another() {
    let db = migrated();
    let watched = Server::start(db.url(), &[]);
    let writer = Server::start(db.url(), &[]);
    let (status, event) = writer.request("POST", "/api/events", r#"{"name":"Hall","capacity":4}"#);
    assert_eq!(status, 201);
    let id = event["id"].as_i64().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", watched.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/events/{id}/stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    frame_with_available(&mut reader, 4);
    let (status, _) = writer.request(
        "POST",
        &format!("/api/events/{id}/reserve"),
        r#"{"quantity":3}"#,
    );
    assert_eq!(status, 201);
    let seen = frame_with_available(&mut reader, 1);
    assert_eq!(seen["reserved"], 3);
}

#[test]
fn webhooks_are_added_listed_and_removed_from_the_command_line() {
    let db = migrated();
    let out = run(ticketctl(Some(db.url()))
        .args(["webhooks", "add", "--url", "https://shop.example/hooks"])
        .env("WEBHOOK_EVENTS", "reservation.purchased,event.sold_out"));
    assert!(out.status.success(), "{}", stderr(&out));
    let added: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(added["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        added["events"],
        serde_json::json!(["reservation.purchased", "event.sold_out"])
    );
    let id = added["id"].to_string();
    let out = run(ticketctl(Some(db.url())).args(["webhooks", "list"]));
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["webhooks"][0]["url"], "https://shop.example/hooks");
    assert!(!stdout(&out).contains("whsec_"), "the secret is shown once");
    let out = run(ticketctl(Some(db.url()))
        .args(["webhooks", "remove"])
        .env("WEBHOOK_ID", &id));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(ticketctl(Some(db.url())).args(["webhooks", "list"]));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["webhooks"],
        serde_json::json!([])
    );
    let out = run(ticketctl(Some(db.url())).args(["webhooks", "add", "--url", "ftp://x"]));
    assert_one_line_failure(&out, "url");
}

#[test]
fn seats_are_loaded_and_shown_from_the_command_line_by_flag_or_variable() {
    let db = migrated();
    let dir = TempDir::new();
    let out = run(ticketctl(Some(db.url())).args([
        "events",
        "create",
        "--name",
        "Hall",
        "--capacity",
        "1",
    ]));
    let id = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["id"].to_string();
    let plan = dir.0.join("plan.json");
    std::fs::write(
        &plan,
        r#"{"sections":[{"name":"A","rows":[{"name":"1","seats":3},{"name":"2","seats":["x","y"]}]}]}"#,
    )
    .unwrap();
    let out = run(ticketctl(Some(db.url()))
        .args(["seats", "load", "--event", &id])
        .env("SEATS_FILE", &plan));
    assert!(out.status.success(), "{}", stderr(&out));
    let map: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = &map["sections"][0]["rows"];
    assert_eq!(
        (rows[0]["status"].as_str(), rows[1]["status"].as_str()),
        (Some("FFF"), Some("FF"))
    );
    assert_eq!(rows[1]["labels"], serde_json::json!(["x", "y"]));
    let server = Server::start(db.url(), &[]);
    let (status, hold) = server.request(
        "POST",
        &format!("/api/events/{id}/reserve"),
        r#"{"seats":["A-2-y"]}"#,
    );
    assert_eq!(
        (status, hold["seats"].clone()),
        (201, serde_json::json!(["A-2-y"]))
    );
    let out = run(ticketctl(Some(db.url()))
        .args(["seats", "show"])
        .env("EVENT_ID", &id));
    assert!(out.status.success(), "{}", stderr(&out));
    let map: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(map["sections"][0]["rows"][1]["status"], "FH");
    // A held seat locks the plan; a bad plan is refused on one line.
    assert_one_line_failure(
        &run(ticketctl(Some(db.url()))
            .args(["seats", "load", "--event", &id, "--file"])
            .arg(&plan)),
        "seating plan",
    );
    std::fs::write(
        &plan,
        r#"{"sections":[{"name":"A-B","rows":[{"name":"1","seats":1}]}]}"#,
    )
    .unwrap();
    assert_one_line_failure(
        &run(ticketctl(Some(db.url()))
            .args(["seats", "load", "--event", &id, "--file"])
            .arg(&plan)),
        "sections",
    );
}

/// The seats granted by `answers` to the reserves of `bodies` (best-available or not): each
/// at most once, every best pair adjacent in one row, every refusal the expected one.
fn granted_seats(
    bodies: &[(bool, String)],
    answers: &[(u16, Value)],
) -> std::collections::HashSet<String> {
    let mut seats = std::collections::HashSet::new();
    for ((best, _), (status, body)) in bodies.iter().zip(answers) {
        match status {
            201 => {
                let held: Vec<&str> = body["seats"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                assert_eq!(held.len(), 2, "{body}");
                for seat in &held {
                    assert!(
                        seats.insert((*seat).to_owned()),
                        "seat {seat} granted twice"
                    );
                }
                if *best {
                    let parts: Vec<Vec<&str>> =
                        held.iter().map(|l| l.split('-').collect()).collect();
                    let place = |p: &Vec<&str>| p[2].parse::<u32>().unwrap();
                    assert!(
                        parts[0][1] == parts[1][1] && place(&parts[1]) == place(&parts[0]) + 1,
                        "a best pair is adjacent in one row: {held:?}"
                    );
                }
            }
            409 => assert!(
                (!best && body["error"] == "seat_unavailable")
                    || (*best && body["error"] == "sold_out"),
                "{body}"
            ),
            other => panic!("answer {other}: {body}"),
        }
    }
    seats
}

/// 300 reserves of two pseudo-random seats of a 100-seat plan and 100 best-available pairs,
/// all at once over two server processes on one database: no seat in two holds, every pair
/// the service chose adjacent in one row, and the counters and the seat map equal the seats
/// granted.
#[test]
fn two_servers_on_one_database_never_give_a_seat_twice_under_a_storm_of_seat_reserves() {
    let db = migrated();
    let servers = Arc::new([Server::start(db.url(), &[]), Server::start(db.url(), &[])]);
    let (_, event) = servers[0].request("POST", "/api/events", r#"{"name":"Hall","capacity":1}"#);
    let id = event["id"].as_i64().unwrap();
    let plan = r#"{"sections":[{"name":"A","rows":[
        {"name":"1","seats":10},{"name":"2","seats":10},{"name":"3","seats":10},{"name":"4","seats":10},
        {"name":"5","seats":10},{"name":"6","seats":10},{"name":"7","seats":10},{"name":"8","seats":10},
        {"name":"9","seats":10},{"name":"10","seats":10}]}]}"#;
    let (status, _) = servers[0].request("PUT", &format!("/api/events/{id}/seats"), plan);
    assert_eq!(status, 200);
    let label = |n: u64| format!("A-{}-{}", n / 10 + 1, n % 10 + 1);
    let bodies: Vec<(bool, String)> = (0..400_u64)
        .map(|i| {
            if i % 4 == 3 {
                (true, r#"{"best_available":{"quantity":2}}"#.to_owned())
            } else {
                // A fixed pseudo-random pair of distinct seats per request.
                let x = i
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let (a, b) = ((x >> 33) % 100, (x >> 17) % 99);
                let b = if b >= a { b + 1 } else { b };
                (
                    false,
                    format!(r#"{{"seats":["{}","{}"]}}"#, label(a), label(b)),
                )
            }
        })
        .collect();
    let bodies = Arc::new(bodies);
    let threads = bodies.len();
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (servers, barrier, bodies) = (
                Arc::clone(&servers),
                Arc::clone(&barrier),
                Arc::clone(&bodies),
            );
            std::thread::spawn(move || {
                barrier.wait();
                servers[i % 2].request("POST", &format!("/api/events/{id}/reserve"), &bodies[i].1)
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let seats = granted_seats(&bodies, &answers);
    assert!(
        answers.iter().any(|(s, _)| *s == 409),
        "seats ran out or clashed"
    );
    let bests = answers
        .iter()
        .zip(bodies.iter())
        .filter(|((s, _), (best, _))| *s == 201 && *best)
        .count();
    eprintln!(
        "{} seats granted, {bests} of them in best-available pairs",
        seats.len()
    );
    assert!(
        seats.len() >= 80 && bests > 0,
        "most seats go: {}",
        seats.len()
    );
    let read = servers[1]
        .request("GET", &format!("/api/events/{id}"), "")
        .1;
    assert_eq!(read["reserved"].as_u64(), Some(seats.len() as u64));
    let map = servers[0]
        .request("GET", &format!("/api/events/{id}/seats"), "")
        .1;
    let held: usize = map["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().matches('H').count())
        .sum();
    assert_eq!(held, seats.len());
    let out = run(ticketctl(Some(db.url())).args(["events", "check", &id.to_string()]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        vec!["frobnicate"],
        vec!["serve", "--reservation-ttl-seconds", "0"],
        vec!["serve", "--log-format", "xml"],
        vec!["events", "create", "--name", "x"],
    ] {
        let out = run(ticketctl(Some("postgres://unused")).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_wrong_or_unreachable_database_fails_with_one_line_and_exit_1() {
    let out = run(ticketctl(Some("mysql://root:secret@localhost/x")).arg("migrate"));
    assert_one_line_failure(&out, "postgres://");
    assert_only_line(&out);
    assert!(
        !stderr(&out).contains("secret"),
        "password leaked: {}",
        stderr(&out)
    );

    let out = run(ticketctl(Some("postgres://postgres@127.0.0.1:1/nowhere"))
        .env("DATABASE_POOL_TIMEOUT_SECONDS", "1")
        .args(["reservations", "expire"]));
    assert_one_line_failure(&out, "cannot connect to PostgreSQL");
    assert_only_line(&out);

    let out = run(ticketctl(Some("redis://localhost")).args(["events", "show", "1"]));
    assert_one_line_failure(
        &out,
        "use postgres://, postgresql://, sqlite://PATH or sqlite::memory:",
    );
    assert_only_line(&out);

    let out =
        run(ticketctl(Some("sqlite:///nonexistent-dir/sub/tickets.db"))
            .args(["events", "show", "1"]));
    assert_one_line_failure(
        &out,
        "cannot open SQLite database /nonexistent-dir/sub/tickets.db",
    );
    assert_only_line(&out);
}

#[test]
fn no_password_appears_in_an_error_even_where_libpq_quotes_it() {
    // libpq quotes an invalid percent-encoded value whole, and a value with a space.
    for (url, secret, said) in [
        (
            "postgres://app:50%off@127.0.0.1:1/x",
            "50%off",
            "invalid percent-encoded token",
        ),
        (
            "postgres://app:two words@127.0.0.1:1/x",
            "two words",
            "unexpected spaces",
        ),
        (
            "postgres://app@127.0.0.1:1/x?sslpassword=k%zzey",
            "k%zzey",
            "invalid percent-encoded token",
        ),
        (
            "postgres://app:s3cr3t-pw@h1.invalid:1,h2.invalid:2/x?connect_timeout=1",
            "s3cr3t-pw",
            "cannot connect to PostgreSQL",
        ),
    ] {
        for args in [&["migrate"][..], &["reservations", "expire"][..]] {
            let out = run(ticketctl(Some(url))
                .env("DATABASE_POOL_TIMEOUT_SECONDS", "1")
                .args(args));
            assert_one_line_failure(&out, said);
            assert!(
                !stderr(&out).contains(secret),
                "password leaked: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn migrate_applies_pending_migrations_then_reports_up_to_date() {
    let db = TestDatabase::empty();
    let first = run(ticketctl(Some(db.url())).arg("migrate"));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("migrations: applied"),
        "{}",
        stdout(&first)
    );
    let second = run(ticketctl(Some(db.url())).arg("migrate"));
    assert!(second.status.success());
    assert_eq!(stdout(&second).trim(), "migrations: up to date");
}

#[test]
fn events_create_and_show_print_the_event_as_json() {
    let db = migrated();
    let out = run(ticketctl(Some(db.url())).args([
        "events",
        "create",
        "--name",
        "Jazz night",
        "--capacity",
        "40",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (created["name"].as_str(), created["capacity"].as_i64()),
        (Some("Jazz night"), Some(40))
    );
    assert_eq!(created["available"].as_i64(), Some(40));

    let id = created["id"].to_string();
    let out = run(ticketctl(Some(db.url())).args(["events", "show", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        created
    );

    let out = run(ticketctl(Some(db.url())).args(["events", "check", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["counters_match"],
        true
    );

    assert_one_line_failure(
        &run(ticketctl(Some(db.url())).args(["events", "show", "987654"])),
        "not found",
    );
    assert_one_line_failure(
        &run(ticketctl(Some(db.url())).args([
            "events",
            "create",
            "--name",
            "x",
            "--capacity",
            "0",
        ])),
        "capacity",
    );
}

#[test]
fn reservations_expire_marks_past_due_holds_prints_the_count_and_is_idempotent() {
    let db = migrated();
    let store = store(db.url());
    let long_ago = Utc::now() - TimeDelta::hours(1);
    let (past, _) = ticketing_at(db.url(), long_ago, 1);
    let event = past
        .create_event(&domain::NewEvent {
            name: domain::EventName::parse("Past").unwrap(),
            capacity: domain::Capacity::new(10).unwrap(),
        })
        .unwrap()
        .event;
    let reserve = |t: &Ticketing| {
        t.reserve(Reserve::untyped(event.id, Quantity::ONE, None))
            .unwrap()
    };
    let due: Vec<_> = (0..3).map(|_| reserve(&past)).collect();
    let (later, _) = ticketing_at(db.url(), long_ago, 2 * 3600);
    let live = reserve(&later);

    let out = run(ticketctl(Some(db.url())).args(["reservations", "expire", "--batch-size", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "expired 3");
    let status = |id| stored(&store, &[id])[0].status;
    for hold in &due {
        assert_eq!(status(hold.id), ReservationStatus::Expired);
    }
    assert_eq!(status(live.id), ReservationStatus::Reserved);

    let again = run(ticketctl(Some(db.url())).args(["reservations", "expire"]));
    assert!(again.status.success());
    assert_eq!(stdout(&again).trim(), "expired 0");
    let audit = audit(&store, event.id);
    assert!(
        audit.counters_match() && audit.within_capacity(),
        "{audit:?}"
    );
}

/// A `ticketctl serve` child process, killed when dropped.
#[test]
fn serve_answers_every_endpoint_from_outside_the_process() {
    let db = TestDatabase::empty();
    // serve migrates the empty database itself.
    let server = Server::start(db.url(), &[]);
    let (status, event) = server.request("POST", "/api/events", r#"{"name":"Live","capacity":1}"#);
    assert_eq!(status, 201, "{event}");
    let id = event["id"].as_i64().unwrap();
    let (status, hold) = server.request("POST", &format!("/api/events/{id}/reserve"), "");
    assert_eq!(status, 201, "{hold}");
    let (status, body) = server.request("POST", &format!("/api/events/{id}/reserve"), "{}");
    assert_eq!((status, body["error"].as_str()), (409, Some("sold_out")));
    let hold_id = hold["id"].as_str().unwrap();
    let (status, bought) = server.request(
        "POST",
        &format!("/api/reservations/{hold_id}/purchase"),
        r#"{"payment_reference":"p1"}"#,
    );
    assert_eq!(
        (status, bought["status"].as_str()),
        (200, Some("purchased"))
    );
    let (status, shown) = server.request("GET", &format!("/api/events/{id}"), "");
    assert_eq!(
        (
            status,
            shown["purchased"].as_i64(),
            shown["available"].as_i64()
        ),
        (200, Some(1), Some(0))
    );
    let (status, body) = server.request("GET", "/nowhere", "");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[test]
fn serve_drains_and_exits_0_on_sigterm() {
    let db = migrated();
    let mut server = Server::start(db.url(), &[]);
    let (status, _) = server.request("POST", "/api/events", r#"{"name":"Bye","capacity":1}"#);
    assert_eq!(status, 201);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn serve_fails_with_one_line_when_the_port_is_taken() {
    let db = migrated();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(ticketctl(Some(db.url())).args(["serve", "--bind", &addr]));
    assert_one_line_failure(&out, "cannot listen on");
}

#[test]
fn serve_sweeps_past_due_holds_in_the_background() {
    let db = migrated();
    let server = Server::start(
        db.url(),
        &[
            ("EXPIRE_INTERVAL_SECONDS", "1"),
            ("RESERVATION_TTL_SECONDS", "1"),
        ],
    );
    let (_, event) = server.request("POST", "/api/events", r#"{"name":"Sweep","capacity":5}"#);
    let (status, hold) =
        server.request("POST", &format!("/api/events/{}/reserve", event["id"]), "");
    assert_eq!(status, 201);
    let id: domain::ReservationId = hold["id"].as_str().unwrap().parse().unwrap();
    let store = store(db.url());
    let deadline = Instant::now() + Duration::from_secs(15);
    // The stored status, which only the sweep changes (a read would show `expired` at once).
    while stored(&store, &[id])[0].status != ReservationStatus::Expired {
        assert!(
            Instant::now() < deadline,
            "the background sweep never expired the hold"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_servers_on_one_database_never_oversell_between_them() {
    let db = migrated();
    let servers = Arc::new([Server::start(db.url(), &[]), Server::start(db.url(), &[])]);
    let (_, event) = servers[0].request("POST", "/api/events", r#"{"name":"Rush","capacity":20}"#);
    let id = event["id"].as_i64().unwrap();
    let threads = 80;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (servers, barrier) = (Arc::clone(&servers), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                servers[i % 2]
                    .request("POST", &format!("/api/events/{id}/reserve"), "")
                    .0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        60,
        "{statuses:?}"
    );
    let out = run(ticketctl(Some(db.url())).args(["events", "check", &id.to_string()]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let audit = audit(&store(db.url()), EventId::new(id));
    assert_eq!((audit.reserved_tickets, audit.held_counter), (20, 20));
}

#[test]
fn serve_without_any_setup_uses_an_embedded_sqlite_file_in_the_working_directory() {
    let dir = TempDir::new();
    let log = std::fs::File::create(dir.0.join("serve.log")).unwrap();
    let mut cmd = ticketctl(None);
    cmd.current_dir(&dir.0);
    let server = Server::spawn(cmd, &[], Stdio::from(log));
    let (status, event) = server.request(
        "POST",
        "/api/events",
        r#"{"name":"Zero setup","capacity":2}"#,
    );
    assert_eq!(status, 201, "{event}");
    let (status, hold) =
        server.request("POST", &format!("/api/events/{}/reserve", event["id"]), "");
    assert_eq!((status, hold["status"].as_str()), (201, Some("reserved")));
    assert!(
        dir.0.join("tickets.db").is_file(),
        "no tickets.db in the working directory"
    );
    let logged = std::fs::read_to_string(dir.0.join("serve.log")).unwrap();
    assert!(
        logged.contains("SQLite file ./tickets.db"),
        "the store is not logged at start: {logged}"
    );

    // One-shot commands on the same file see the same data.
    drop(server);
    let out =
        run(ticketctl(None)
            .current_dir(&dir.0)
            .args(["events", "show", &event["id"].to_string()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (shown["reserved"].as_i64(), shown["available"].as_i64()),
        (Some(1), Some(1))
    );
}

#[test]
fn events_check_all_checks_every_event_and_names_the_inconsistent_ones() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let db = migrated();
    let ids: Vec<i64> = (0..3)
        .map(|i| {
            let out = run(ticketctl(Some(db.url())).args([
                "events",
                "create",
                "--name",
                &format!("Night {i}"),
                "--capacity",
                "10",
            ]));
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_str::<Value>(&stdout(&out)).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let checked = |out: &std::process::Output| -> Vec<(i64, bool)> {
        stdout(out)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["event_id"].as_i64().unwrap(),
                    v["counters_match"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let out = run(ticketctl(Some(db.url())).args(["events", "check", "--all"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let newest_first: Vec<(i64, bool)> = ids.iter().rev().map(|&id| (id, true)).collect();
    assert_eq!(checked(&out), newest_first);

    // A counter that no longer matches its rows, as only a writer outside the service could
    // leave it.
    let mut conn = diesel::PgConnection::establish(db.url()).unwrap();
    conn.batch_execute(&format!(
        "UPDATE events SET reserved_count = 2 WHERE id = {}",
        ids[1]
    ))
    .unwrap();
    let out = run(ticketctl(Some(db.url())).args(["events", "check", "--all"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        checked(&out),
        vec![(ids[2], true), (ids[1], false), (ids[0], true)]
    );
    assert!(
        stderr(&out).contains(&format!("1 of 3 events ({}) are inconsistent", ids[1])),
        "{}",
        stderr(&out)
    );
    let usage = run(ticketctl(Some(db.url())).args(["events", "check"]));
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
}

#[test]
fn one_shot_commands_work_on_a_new_sqlite_file() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("ops.db").display());
    let out =
        run(ticketctl(Some(&url)).args(["events", "create", "--name", "Ops", "--capacity", "3"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let expire = run(ticketctl(Some(&url)).args(["reservations", "expire"]));
    assert!(expire.status.success(), "{}", stderr(&expire));
    assert_eq!(stdout(&expire).trim(), "expired 0");
    let check = run(ticketctl(Some(&url)).args(["events", "check", "1"]));
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn two_servers_on_one_sqlite_file_never_oversell_under_a_storm() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("shared.db").display());
    // The first server creates and migrates the file; the second finds it ready.
    let first = Server::start(&url, &[]);
    let second = Server::start(&url, &[]);
    let servers = Arc::new([first, second]);
    let (_, event) = servers[0].request("POST", "/api/events", r#"{"name":"Rush","capacity":25}"#);
    let id = event["id"].as_i64().unwrap();
    let threads = 16;
    let per_thread = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (servers, barrier) = (Arc::clone(&servers), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|j| {
                        let server = &servers[(i + j) % 2];
                        let (status, body) =
                            server.request("POST", &format!("/api/events/{id}/reserve"), "");
                        // Buy every other hold we get, through the other server.
                        if status == 201 && j % 2 == 0 {
                            let hold = body["id"].as_str().unwrap_or_default().to_owned();
                            let (bought, _) = servers[(i + j + 1) % 2].request(
                                "POST",
                                &format!("/api/reservations/{hold}/purchase"),
                                "",
                            );
                            assert_eq!(bought, 200);
                        }
                        status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(statuses.len(), threads * per_thread);
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        25,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        threads * per_thread - 25,
        "{statuses:?}"
    );
    let (_, shown) = servers[1].request("GET", &format!("/api/events/{id}"), "");
    let counts = (
        shown["purchased"].as_i64().unwrap(),
        shown["reserved"].as_i64().unwrap(),
        shown["available"].as_i64(),
    );
    assert_eq!(counts.0 + counts.1, 25, "{shown}");
    assert_eq!(counts.2, Some(0));
    let out = run(ticketctl(Some(&url)).args(["events", "check", &id.to_string()]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn bench_loads_a_server_reports_json_and_verifies_the_counts() {
    let db = migrated();
    let server = Server::start(db.url(), &[]);
    let out = run(ticketctl(None).args([
        "bench",
        "--url",
        &format!("http://127.0.0.1:{}", server.port),
        "--capacity",
        "50",
        "--admin-token",
        "cli-test-token",
        "--concurrency",
        "8",
        "--requests",
        "300",
        "--mix",
        "reserve=80,purchase=10,read=10",
        "--json",
        "--verify",
    ]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["requests"], 300);
    assert_eq!(report["reservations_granted"], 50, "{report}");
    assert_eq!(report["verify"]["ok"], true, "{report}");
    let reserve_409 = report["statuses"]["reserve"]["409"].as_u64().unwrap_or(0);
    assert!(
        reserve_409 > 0,
        "the event sold out, so some reserves must answer 409: {report}"
    );
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(
            report["latency_ms"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }

    let table = run(ticketctl(None).args([
        "bench",
        "--url",
        &format!("http://127.0.0.1:{}", server.port),
        "--event",
        &report["event"].to_string(),
        "--concurrency",
        "4",
        "--duration",
        "0.5",
        "--verify",
    ]));
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.contains("latency (ms)") && text.contains("verify        ok"),
        "{text}"
    );
}

/// A fake server whose event counts do not add up: `--verify` must catch it.
#[test]
fn bench_verify_fails_when_the_counts_do_not_add_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let request_line = line.clone();
                    while line != "\r\n" {
                        line.clear();
                        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    let (status, body) = if request_line.starts_with("GET") {
                        (
                            "200 OK",
                            r#"{"id":1,"capacity":10,"purchased":3,"reserved":9,"available":0}"#,
                        )
                    } else {
                        ("201 Created", r#"{"id":"x","status":"reserved"}"#)
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let out = run(ticketctl(None).args([
        "bench",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--event",
        "1",
        "--concurrency",
        "2",
        "--requests",
        "20",
        "--verify",
    ]));
    assert_one_line_failure(&out, "verification failed");
    let err = stderr(&out);
    assert!(
        err.contains("!= capacity 10") && err.contains("20 tickets granted, capacity is 10"),
        "{err}"
    );
}

/// Makes every commit that inserted a reservation wait, inside `COMMIT`, for advisory lock 4242
/// (a deferred constraint trigger runs at commit time).
const COMMIT_GATE_SQL: &str = "
CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4242);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON reservations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_commit_gate();";

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut diesel::PgConnection, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .expect(sql)
        .n
}

#[test]
fn a_retry_after_the_server_was_killed_between_commit_and_answer_replays_the_201() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let db = migrated();
    let first = Server::start(db.url(), &[]);
    let (_, event) = first.request("POST", "/api/events", r#"{"name":"Crash","capacity":5}"#);
    let path = format!("/api/events/{}/reserve", event["id"]);
    let body = r#"{"quantity":2}"#;
    let key = [("Idempotency-Key", "crash-test-1")];

    // Hold the gate: the server's COMMIT will wait inside the commit.
    let mut gate = diesel::PgConnection::establish(db.url()).unwrap();
    gate.batch_execute(COMMIT_GATE_SQL).unwrap();
    gate.batch_execute("SELECT pg_advisory_lock(4242)").unwrap();
    let port = first.port;
    let (path2, body2) = (path.clone(), body.to_owned());
    let client = std::thread::spawn(move || exchange(port, "POST", &path2, &key, &body2));
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &mut gate,
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND query = 'COMMIT' AND wait_event_type = 'Lock'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "no COMMIT came to the gate");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Kill the server while it waits for its COMMIT, then let the commit finish.
    drop(first);
    assert_eq!(client.join().unwrap(), None, "the client got no answer");
    gate.batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&mut gate, "SELECT count(*) AS n FROM reservations") == 0 {
        assert!(Instant::now() < deadline, "the commit never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    gate.batch_execute("DROP TRIGGER test_commit_gate ON reservations")
        .unwrap();

    // The client retries on a new server with the same key: it gets the 201 the first one
    // committed, marked as a replay, and no second hold is made.
    let second = Server::start(db.url(), &[]);
    let (status, head, hold) = second.request_with("POST", &path, &key, body);
    assert_eq!(status, 201, "{hold}");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    assert_eq!(hold["quantity"], 2);
    let id: domain::ReservationId = hold["id"].as_str().unwrap().parse().unwrap();
    let stored = stored(&store(db.url()), &[id]);
    assert_eq!(stored.len(), 1, "the replayed id is the committed hold");
    assert_eq!(
        count(&mut gate, "SELECT count(*) AS n FROM reservations"),
        1
    );
    let (_, event) = second.request("GET", &format!("/api/events/{}", event["id"]), "");
    assert_eq!(event["reserved"], 2);
}
