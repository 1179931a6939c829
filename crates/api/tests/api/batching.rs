//! Group commit: batching never changes an answer, only how many transactions serve them.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use futures_util::future::join_all;

use crate::helpers::{Answer, Backend, Settings, TestApp};

pub async fn five_hundred_parallel_reserves_on_capacity_one_hundred_grant_exactly_one_hundred_across_batches(
    backend: Backend,
) {
    // Batches of at most 64: the 100th ticket is granted across a batch boundary.
    let app = TestApp::spawn_with(
        backend,
        Settings {
            batch_max: 64,
            ..Settings::default()
        },
    );
    let event = app.create_event(100).await;
    let answers = join_all((0..500).map(|_| app.reserve(event))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let sold_out = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["error"] == "sold_out")
        .count();
    assert_eq!(
        (created, sold_out),
        (100, 400),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let mut ids: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.body["id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every granted hold has its own id");
    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (body["reserved"].as_i64(), body["available"].as_i64()),
        (Some(100), Some(0))
    );
}

pub async fn parallel_purchases_of_many_holds_are_each_won_once(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(30).await;
    let holds = join_all((0..30).map(|_| app.hold(event))).await;
    // Every hold is bought three times at once: one 200 and two 409 each.
    let attempts = holds.iter().flat_map(|id| std::iter::repeat_n(id, 3));
    let answers = join_all(attempts.map(|id| app.purchase(id, crate::helpers::Body::None))).await;
    let won = answers.iter().filter(|a| a.status == 200).count();
    let already = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["error"] == "already_purchased")
        .count();
    assert_eq!((won, already), (30, 60));
    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (body["purchased"].as_i64(), body["reserved"].as_i64()),
        (Some(30), Some(0))
    );
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// Runs blocking database work off the test's runtime.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::web::block(f).await.expect("blocking task")
}

/// The backends of `db` waiting on a lock, once there are `at_least` of them.
async fn waiting_backends(admin_url: String, db: String, at_least: usize) -> Vec<i32> {
    off_thread(move || {
        let mut conn = PgConnection::establish(&admin_url).expect("admin connection");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pids: Vec<Pid> = diesel::sql_query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            )
            .bind::<Text, _>(&db)
            .load(&mut conn)
            .expect("pg_stat_activity");
            if pids.len() >= at_least {
                return pids.into_iter().map(|p| p.pid).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no transaction came to wait on the lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
}

async fn terminate(admin_url: String, pids: Vec<i32>) {
    off_thread(move || {
        let mut conn = PgConnection::establish(&admin_url).expect("admin connection");
        for pid in pids {
            diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
                .execute(&mut conn)
                .expect("terminate");
        }
    })
    .await;
}

pub async fn a_batch_whose_transaction_fails_answers_all_its_requests_503_and_grants_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(100).await;
    let admin = test_support::server_url().to_owned();
    let db = app.db().name().to_owned();

    // Hold the event's row lock from outside, so the service's transactions queue behind it.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = app.db().url().to_owned();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).expect("lock holder");
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query(format!(
                "SELECT id FROM events WHERE id = {event} FOR UPDATE"
            ))
            .execute(conn)?;
            locked_tx.send(()).expect("signal");
            release_rx.recv().expect("release");
            Ok(())
        })
        .expect("lock holder transaction");
    });
    off_thread(move || locked_rx.recv().expect("locked")).await;

    let reserve = |app: &TestApp| {
        let req = app
            .client
            .post(app.url(&format!("/api/events/{event}/reserve")));
        async move {
            let mut res = req.send().await.expect("request");
            let bytes = res.body().await.expect("body");
            (
                res.status().as_u16(),
                serde_json::from_slice::<serde_json::Value>(&bytes).expect("JSON"),
            )
        }
    };
    // A lone request's transaction queues on the lock; thirty more queue behind it, in the server.
    let first = actix_web::rt::spawn(reserve(&app));
    let in_flight = waiting_backends(admin.clone(), db.clone(), 1).await;
    let queued: Vec<_> = (0..30)
        .map(|_| actix_web::rt::spawn(reserve(&app)))
        .collect();
    // All thirty wait in the server's queue before the lock holder goes.
    let waited = std::time::Instant::now();
    while app.queued_writes().await < 30 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the thirty never all queued"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    // Kill that transaction: its request fails; the thirty become one batch, which queues on
    // the lock in turn, and is killed too.
    terminate(admin.clone(), in_flight.clone()).await;
    let big_batch = loop {
        let pids = waiting_backends(admin.clone(), db.clone(), 1).await;
        let fresh: Vec<i32> = pids
            .into_iter()
            .filter(|p| !in_flight.contains(p))
            .collect();
        if !fresh.is_empty() {
            break fresh;
        }
    };
    // (That the thirty share one transaction is the engine's unit tests' to show: here one
    // lane has one transaction in flight, so a single waiting backend proves nothing.)
    terminate(admin.clone(), big_batch).await;

    let mut answers = vec![first.await.expect("task")];
    for task in queued {
        answers.push(task.await.expect("task"));
    }
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"], "service_unavailable");
    }
    release_tx.send(()).expect("release");
    holder.join().expect("lock holder");

    // Nothing was granted by the failed batches, and the service works again.
    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (body["reserved"].as_i64(), body["available"].as_i64()),
        (Some(0), Some(100))
    );
    let rows: Vec<Pid> = off_thread({
        let url = app.db().url().to_owned();
        move || {
            let mut conn = PgConnection::establish(&url).expect("connection");
            diesel::sql_query("SELECT count(*)::int4 AS pid FROM reservations")
                .load(&mut conn)
                .expect("count")
        }
    })
    .await;
    assert_eq!(rows[0].pid, 0, "a failed batch left rows behind");
    let after: Answer = app.reserve(event).await;
    after.expect(201);
}
