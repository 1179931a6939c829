//! A commit whose outcome the server cannot know (PostgreSQL only: the connection is killed
//! while `COMMIT` runs).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Integer;
use serde_json::json;

use crate::helpers::{Backend, Body, TestApp};

/// Makes every commit that inserted a reservation wait, inside `COMMIT`, for advisory lock 4242
/// (a deferred constraint trigger runs at commit time).
const GATE_SQL: &str = "
CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4242);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON reservations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_commit_gate();";

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::web::block(f).await.expect("blocking task")
}

pub async fn a_commit_cut_off_answers_503_outcome_unknown_and_a_retry_settles_it(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    let url = app.db().url().to_owned();
    let (gated_tx, gated_rx) = std::sync::mpsc::channel::<()>();
    let (open_tx, open_rx) = std::sync::mpsc::channel::<()>();
    // Install the gate and hold its lock from a connection of the test's own.
    let gate = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).expect("gate connection");
        diesel::connection::SimpleConnection::batch_execute(&mut conn, GATE_SQL).expect("gate");
        diesel::sql_query("SELECT pg_advisory_lock(4242)")
            .execute(&mut conn)
            .expect("lock");
        gated_tx.send(()).expect("signal");
        open_rx.recv().expect("open");
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "DROP TRIGGER test_commit_gate ON reservations; SELECT pg_advisory_unlock(4242);",
        )
        .expect("ungate");
    });
    off_thread(move || gated_rx.recv().expect("gated")).await;

    let path = format!("/api/events/{event}/reserve");
    let body = json!({"quantity": 3});
    let request = {
        let req = app
            .client
            .post(app.url(&path))
            .insert_header(("Idempotency-Key", "cut-off"));
        let body = body.clone();
        async move {
            let mut res = req.send_json(&body).await.expect("request");
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            let bytes = res.body().await.expect("body");
            (
                res.status().as_u16(),
                retry_after,
                serde_json::from_slice::<serde_json::Value>(&bytes).expect("JSON"),
            )
        }
    };
    let pending = actix_web::rt::spawn(request);

    // The server's COMMIT waits at the gate: kill its connection there.
    let url = app.db().url().to_owned();
    off_thread(move || {
        let mut conn = PgConnection::establish(&url).expect("admin connection");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: Vec<Pid> = diesel::sql_query(
                "SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND query = 'COMMIT'
                    AND wait_event_type = 'Lock'",
            )
            .load(&mut conn)
            .expect("pg_stat_activity");
            if let Some(p) = waiting.first() {
                diesel::sql_query(format!("SELECT pg_terminate_backend({})", p.pid))
                    .execute(&mut conn)
                    .expect("terminate");
                return;
            }
            assert!(Instant::now() < deadline, "no COMMIT came to the gate");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await;
    let (status, retry_after, answer) = pending.await.expect("task");
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("outcome_unknown")),
        "{answer}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));

    // The retry with the same key settles it: here the commit never finished, so the retry is
    // served afresh, once.
    open_tx.send(()).expect("open");
    off_thread(move || gate.join().expect("gate thread")).await;
    let retry = app
        .post_keyed(&path, "cut-off", Body::Json(body.clone()))
        .await;
    assert_eq!(retry.expect(201)["quantity"], 3);
    let replay = app.post_keyed(&path, "cut-off", Body::Json(body)).await;
    assert_eq!(replay.raw, retry.raw);
    assert_eq!(app.event(event).await["reserved"], 3);
    // The change and its message are one commit: the cut-off one left neither, the retry both.
    let path = format!("/api/events/{event}/messages");
    let listed = app
        .send(app.admin(app.client.get(app.url(&path))), Body::None)
        .await;
    let listed = listed.expect(200);
    assert_eq!(listed["last_seq"], 1, "{listed}");
    assert_eq!(listed["messages"][0]["type"], "reservation.created");
    assert_eq!(listed["messages"][0]["reservation_id"], retry.body["id"]);
}

/// A `COMMIT` that takes longer than the session's `statement_timeout` still commits and is
/// answered 201: the timeout never cuts a commit short (with synchronous replication, a
/// cancelled commit wait would report success for a write on one node only), while it still
/// cancels the statements before it.
pub async fn the_statement_timeout_never_cancels_a_commit(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        crate::helpers::Settings {
            statement_timeout_ms: 200,
            ..crate::helpers::Settings::default()
        },
    );
    let event = app.create_event(10).await;
    let url = app.db().url().to_owned();
    // Every commit that inserted a reservation sleeps 600 ms inside COMMIT.
    off_thread(move || {
        let mut conn = PgConnection::establish(&url).expect("connection");
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON reservations
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit();",
        )
        .expect("slow commit trigger");
    })
    .await;
    let started = Instant::now();
    app.reserve(event).await.expect(201);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(app.event(event).await["reserved"], 1);
    // The timeout still applies to the statements before the commit.
    let url = app.db().url().to_owned();
    off_thread(move || {
        let mut conn = PgConnection::establish(&url).expect("connection");
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "DROP TRIGGER test_slow_commit ON reservations;
             CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.6); RETURN NEW; END $$;
             CREATE TRIGGER test_slow_insert BEFORE INSERT ON reservations
                 FOR EACH ROW EXECUTE FUNCTION test_slow_insert();",
        )
        .expect("slow insert trigger");
    })
    .await;
    app.reserve(event)
        .await
        .expect_error(503, "service_unavailable");
    assert_eq!(
        app.event(event).await["reserved"],
        1,
        "the cancelled write left nothing"
    );
}
