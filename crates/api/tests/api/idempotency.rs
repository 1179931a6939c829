//! `Idempotency-Key`: a retry gets the first answer again, never a second effect.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{Backend, Body, TestApp};

pub async fn a_retry_with_the_same_key_replays_the_first_answer_byte_for_byte(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(5).await;
    let path = format!("/api/events/{event}/reserve");
    let body = json!({"quantity": 2, "customer": "acct-9"});
    let first = app
        .post_keyed(&path, "order-77", Body::Json(body.clone()))
        .await;
    first.expect(201);
    assert_eq!(first.replayed, None);
    app.advance(30);
    // The same request, its JSON written differently.
    let again = app
        .post_keyed(
            &path,
            "order-77",
            Body::Raw(
                Some("application/json"),
                br#"{ "customer": "acct-9", "quantity": 2 }"#.to_vec(),
            ),
        )
        .await;
    assert_eq!(
        (again.status, again.raw.as_str()),
        (201, first.raw.as_str())
    );
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(app.event(event).await["reserved"], 2, "no second hold");
}

pub async fn purchase_and_cancel_retries_replay_their_first_answer(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(5).await;
    let bought = app.hold(event).await;
    let path = format!("/api/reservations/{bought}/purchase");
    let body = Body::Json(json!({"payment_reference": "pay_1"}));
    let first = app.post_keyed(&path, "pay-attempt-1", body.clone()).await;
    first.expect(200);
    let again = app.post_keyed(&path, "pay-attempt-1", body).await;
    assert_eq!(
        (again.status, again.raw.as_str()),
        (200, first.raw.as_str())
    );
    assert_eq!(again.replayed.as_deref(), Some("true"));
    // Without the key, a second purchase is refused as usual.
    app.purchase(&bought, Body::None)
        .await
        .expect_error(409, "already_purchased");

    let held = app.hold(event).await;
    let path = format!("/api/reservations/{held}/cancel");
    let first = app.post_keyed(&path, "drop-1", Body::None).await;
    assert_eq!(first.expect(200)["status"], "canceled");
    let again = app.post_keyed(&path, "drop-1", Body::None).await;
    assert_eq!(
        (again.status, again.raw.as_str()),
        (200, first.raw.as_str())
    );
}

pub async fn a_refusal_is_replayed_too(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let taken = app.hold(event).await;
    let path = format!("/api/events/{event}/reserve");
    let first = app.post_keyed(&path, "late", Body::None).await;
    first.expect_error(409, "sold_out");
    app.cancel(&taken).await.expect(200);
    // A ticket is free now, but the retry answers what the first request got.
    let again = app.post_keyed(&path, "late", Body::None).await;
    assert_eq!(
        (again.status, again.raw.as_str()),
        (409, first.raw.as_str())
    );
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(app.event(event).await["available"], 1);
}

pub async fn the_same_key_with_another_request_answers_422_idempotency_key_reused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    let other = app.create_event(10).await;
    let path = format!("/api/events/{event}/reserve");
    app.post_keyed(&path, "k", Body::Json(json!({"quantity": 1})))
        .await
        .expect(201);
    app.post_keyed(&path, "k", Body::Json(json!({"quantity": 2})))
        .await
        .expect_error(422, "idempotency_key_reused");
    app.post_keyed(&format!("/api/events/{other}/reserve"), "k", Body::None)
        .await
        .expect_error(422, "idempotency_key_reused");
    assert_eq!(app.event(event).await["reserved"], 1);
    assert_eq!(app.event(other).await["reserved"], 0);
}

pub async fn a_malformed_key_answers_422_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    let path = format!("/api/events/{event}/reserve");
    for key in [String::new(), "k".repeat(256), "with space".into()] {
        let answer = app.post_keyed(&path, &key, Body::None).await;
        let errors = &answer.expect(422)["errors"];
        assert!(
            errors["idempotency_key"][0].is_string(),
            "{key:?}: {answer:?}"
        );
    }
    app.post_keyed(&path, &"k".repeat(255), Body::None)
        .await
        .expect(201);
    assert_eq!(app.event(event).await["reserved"], 1);
}

pub async fn twenty_parallel_identical_reserves_with_one_key_make_one_reservation(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(100).await;
    let path = format!("/api/events/{event}/reserve");
    let answers = join_all(
        (0..20).map(|_| app.post_keyed(&path, "burst", Body::Json(json!({"quantity": 2})))),
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    let mut in_progress = 0;
    for answer in &answers {
        match answer.status {
            201 => {
                ids.insert(answer.body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                answer.expect_error(409, "idempotency_key_in_progress");
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
                in_progress += 1;
            }
            _ => panic!("{answer:?}"),
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "every 201 carries the one reservation: {answers:?}"
    );
    assert!(in_progress < 20);
    // Every answer is in, so the first request is done: a retry replays it.
    let retry = app
        .post_keyed(&path, "burst", Body::Json(json!({"quantity": 2})))
        .await;
    assert_eq!(
        retry.expect(201)["id"].as_str(),
        ids.iter().next().map(String::as_str)
    );
    assert_eq!(app.event(event).await["reserved"], 2);
}
