//! What an API on the open internet needs: request ids, safe headers, CORS, rate limits,
//! limits on requests, timeouts on the database.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, Settings, TestApp};

pub async fn a_sane_request_id_is_echoed_and_any_other_is_replaced_by_a_new_one(backend: Backend) {
    let app = TestApp::spawn(backend);
    let answer = app
        .send(
            app.client
                .get(app.url("/health"))
                .insert_header(("X-Request-Id", "lb-7f3a.2")),
            crate::helpers::Body::None,
        )
        .await;
    assert_eq!(answer.header("x-request-id").unwrap(), "lb-7f3a.2");
    let mut seen = Vec::new();
    for bad in [None, Some("has space"), Some("{\"json\":1}")] {
        let req = app.client.get(app.url("/health"));
        let req = match bad {
            Some(id) => req.insert_header(("X-Request-Id", id)),
            None => req,
        };
        let answer = app.send(req, crate::helpers::Body::None).await;
        let id = answer.header("x-request-id").unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} → {id}");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each request gets an id of its own");
}

pub async fn every_answer_is_nosniff_and_no_store(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    for answer in [
        app.get(&format!("/api/events/{event}")).await,
        app.get("/nowhere").await,
        app.reserve(event).await,
    ] {
        assert_eq!(
            answer.header("x-content-type-options").unwrap(),
            "nosniff",
            "{}",
            answer.raw
        );
        assert_eq!(
            answer.header("cache-control").unwrap(),
            "no-store",
            "{}",
            answer.raw
        );
    }
}

pub async fn cors_lets_allowed_origins_in_and_tells_others_nothing(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            cors_allowed_origins: &["https://shop.example"],
            ..Settings::default()
        },
    );
    let event = app.create_event(5).await;
    let path = format!("/api/events/{event}/reserve");
    let preflight = |origin: &'static str| {
        app.client
            .request(awc::http::Method::OPTIONS, app.url(&path))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "content-type, idempotency-key",
            ))
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://shop.example"
    );
    let methods = allowed
        .headers()
        .get("access-control-allow-methods")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("idempotency-key"), "{headers}");

    let stranger = preflight("https://evil.example").await.unwrap();
    assert!(stranger
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let answer = app
        .send(
            app.client
                .post(app.url(&path))
                .insert_header(("Origin", "https://shop.example")),
            crate::helpers::Body::Json(json!({})),
        )
        .await;
    answer.expect(201);
    assert_eq!(
        answer.header("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    let exposed = answer
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    let answer = app
        .send(
            app.client
                .post(app.url(&path))
                .insert_header(("Origin", "https://evil.example")),
            crate::helpers::Body::Json(json!({})),
        )
        .await;
    // Served (a browser hides it from the script), but without a CORS grant.
    answer.expect(201);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

pub async fn without_allowed_origins_no_cors_header_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend);
    let answer = app
        .send(
            app.client
                .get(app.url("/health"))
                .insert_header(("Origin", "https://shop.example")),
            crate::helpers::Body::None,
        )
        .await;
    answer.expect(200);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

pub async fn writes_over_the_rate_limit_answer_429_with_retry_after_and_reads_pass(
    backend: Backend,
) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            // One request every 3 s: the burst below spans milliseconds, but a busy machine
            // must not refill a token before the fourth write.
            rate_limit: Some((Duration::from_secs(3), 3)),
            ..Settings::default()
        },
    );
    // Creating the event is a write too: one of the burst of 3.
    let event = app.create_event(100).await;
    app.reserve(event).await.expect(201);
    app.reserve(event).await.expect(201);
    let limited = app.reserve(event).await;
    limited.expect_error(429, "rate_limited");
    let wait: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=3).contains(&wait), "{wait}");
    for _ in 0..20 {
        app.get(&format!("/api/events/{event}")).await.expect(200);
    }
    assert_eq!(
        app.event(event).await["reserved"],
        2,
        "the refused reserve did nothing"
    );
    actix_web::rt::time::sleep(Duration::from_millis(3_100)).await;
    app.reserve(event).await.expect(201);
}

pub async fn x_forwarded_for_picks_the_bucket_only_behind_a_trusted_proxy(backend: Backend) {
    async fn reserve(app: &TestApp, event: i64, forwarded: &'static str) -> crate::helpers::Answer {
        app.send(
            app.client
                .post(app.url(&format!("/api/events/{event}/reserve")))
                .insert_header(("X-Forwarded-For", forwarded)),
            crate::helpers::Body::Json(json!({})),
        )
        .await
    }
    // The test client is 127.0.0.1: trusted here, so each forwarded client has its bucket.
    let app = TestApp::spawn_with(
        backend,
        Settings {
            rate_limit: Some((Duration::from_secs(60), 1)),
            trusted_proxies: &["127.0.0.0/8"],
            ..Settings::default()
        },
    );
    let event = app.create_event(100).await;
    reserve(&app, event, "198.51.100.1").await.expect(201);
    reserve(&app, event, "198.51.100.2").await.expect(201);
    reserve(&app, event, "198.51.100.1")
        .await
        .expect_error(429, "rate_limited");
    // Not trusted: the header is the client's own claim and is ignored.
    let app = TestApp::spawn_with(
        backend,
        Settings {
            rate_limit: Some((Duration::from_secs(60), 2)),
            ..Settings::default()
        },
    );
    let event = app.create_event(100).await;
    reserve(&app, event, "198.51.100.1").await.expect(201);
    reserve(&app, event, "198.51.100.2")
        .await
        .expect_error(429, "rate_limited");
}

pub async fn oversized_headers_are_refused_without_reaching_a_handler(backend: Backend) {
    use std::io::{Read, Write};
    let app = TestApp::spawn(backend);
    let address = app.address.trim_start_matches("http://").to_owned();
    // On a raw socket, so that what the server does is seen as it is: the connection is
    // accepted, and the server either answers 431 or closes it before the client has sent
    // everything (a reset, or an end of stream); never any other answer.
    let answered = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("the server accepts");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let padding = "a".repeat(160 * 1024);
        let request =
            format!("GET /health HTTP/1.1\r\nHost: {address}\r\nX-Padding: {padding}\r\n\r\n");
        // The server may stop reading (and reset) before the whole request is written.
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => String::from_utf8_lossy(&answer).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::new(),
            Err(e) => panic!("neither an answer nor a closed connection: {e}"),
        }
    })
    .await
    .expect("the client thread");
    assert!(
        answered.is_empty() || answered.starts_with("HTTP/1.1 431"),
        "{answered}"
    );
    app.get("/health").await.expect(200);
}

/// A batch that waits on a row lock longer than `lock_timeout` is cancelled by PostgreSQL and
/// answered 503: nothing was done, and the lock holder is not blocked forever.
pub async fn a_batch_stuck_on_a_row_lock_answers_503_after_the_lock_timeout(backend: Backend) {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn_with(
        backend,
        Settings {
            lock_timeout_ms: 200,
            ..Settings::default()
        },
    );
    let event = app.create_event(5).await;
    let url = app.db().url().to_owned();
    let (locked, locked_rx) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query(format!(
                "SELECT id FROM events WHERE id = {event} FOR UPDATE"
            ))
            .execute(conn)?;
            locked.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            Ok(())
        })
        .unwrap();
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let answer = app.reserve(event).await;
    answer.expect_error(503, "service_unavailable");
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    app.reserve(event).await.expect(201);
    assert_eq!(app.event(event).await["reserved"], 1);
}
