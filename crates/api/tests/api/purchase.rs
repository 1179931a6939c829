//! `POST /api/reservations/{reservation}/purchase`.

use serde_json::json;

use crate::helpers::{timestamp, Backend, Body, TestApp, TTL_SECONDS};

pub async fn purchase_answers_200_with_the_purchased_reservation(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(2).await;
    let hold = app.reserve(event).await.expect(201).clone();
    let id = hold["id"].as_str().unwrap();
    app.advance(30);
    let answer = app
        .purchase(id, Body::Json(json!({"payment_reference": "pay_1234"})))
        .await;
    let body = answer.expect(200);
    assert_eq!(body["id"], hold["id"]);
    assert_eq!(body["event_id"], event);
    assert_eq!(body["status"], "purchased");
    assert_eq!(body["expires_at"], hold["expires_at"]);
    assert_eq!(body["created_at"], hold["created_at"]);
    assert_eq!(timestamp(&body["updated_at"]), app.now());
    assert_eq!(timestamp(&body["purchased_at"]), app.now());
    assert_eq!(body["payment_reference"], "pay_1234");

    let event_body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (
            event_body["purchased"].clone(),
            event_body["reserved"].clone()
        ),
        (json!(1), json!(0))
    );
}

pub async fn purchase_answers_200_without_a_body(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    let body = app.purchase(&id, Body::None).await.expect(200).clone();
    assert_eq!(body["payment_reference"], json!(null));
}

pub async fn purchase_answers_409_already_purchased_the_second_time(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    app.purchase(&id, Body::None).await.expect(200);
    app.purchase(&id, Body::None)
        .await
        .expect_error(409, "already_purchased");
}

pub async fn purchase_answers_409_invalid_or_expired_once_the_hold_ran_out(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    app.advance(i64::try_from(TTL_SECONDS).unwrap());
    app.purchase(&id, Body::None)
        .await
        .expect_error(409, "invalid_or_expired_reservation");
    // Its ticket is free again.
    app.hold(event).await;
}

pub async fn purchase_answers_409_invalid_or_expired_after_a_cancel(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    app.post(&format!("/api/reservations/{id}/cancel"), Body::None)
        .await
        .expect(200);
    app.purchase(&id, Body::None)
        .await
        .expect_error(409, "invalid_or_expired_reservation");
}

pub async fn purchase_answers_404_for_unknown_or_malformed_ids(backend: Backend) {
    let app = TestApp::spawn(backend);
    for id in [
        domain::ReservationId::generate(chrono::Utc::now(), domain::EventId::new(1))
            .to_string()
            .as_str(),
        "123",
        "not-a-uuid",
    ] {
        app.purchase(id, Body::None)
            .await
            .expect_error(404, "not_found");
    }
}

pub async fn purchase_answers_422_for_a_long_or_non_string_payment_reference(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    let too_long = app
        .purchase(
            &id,
            Body::Json(json!({"payment_reference": "x".repeat(65)})),
        )
        .await;
    assert_eq!(
        too_long.expect(422),
        &json!({
            "message": "The given data was invalid.",
            "errors": {"payment_reference": ["The payment reference must not be greater than 64 characters."]}
        })
    );
    for wrong in [json!(42), json!(true), json!({"a": 1}), json!(["x"])] {
        let answer = app
            .purchase(&id, Body::Json(json!({ "payment_reference": wrong })))
            .await;
        let body = answer.expect(422);
        assert_eq!(body["message"], "The given data was invalid.");
        assert!(body["errors"]["payment_reference"][0].is_string(), "{body}");
    }
    // Exactly 64 characters is fine, and the refused attempts changed nothing.
    app.purchase(
        &id,
        Body::Json(json!({"payment_reference": "y".repeat(64)})),
    )
    .await
    .expect(200);
}

pub async fn purchase_answers_422_for_control_characters_and_the_purchases_beside_it_succeed(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(11).await;
    let mut ids = Vec::new();
    for _ in 0..11 {
        ids.push(app.hold(event).await);
    }
    // Sent together, so that a reference PostgreSQL cannot store (a NUL) would share a batch
    // with the others if validation let it through.
    let answers = futures_util::future::join_all(ids.iter().enumerate().map(|(i, id)| {
        let reference = if i == 5 {
            "pay\u{0}1".to_owned()
        } else {
            format!("pay_{i}")
        };
        app.purchase(id, Body::Json(json!({ "payment_reference": reference })))
    }))
    .await;
    for (i, answer) in answers.iter().enumerate() {
        if i == 5 {
            assert_eq!(
                answer.expect(422),
                &json!({
                    "message": "The given data was invalid.",
                    "errors": {"payment_reference": ["The payment reference must not contain control characters."]}
                })
            );
        } else {
            assert_eq!(answer.expect(200)["payment_reference"], format!("pay_{i}"));
        }
    }
    for bad in ["line\nbreak", "\u{7f}", "tab\there"] {
        app.purchase(&ids[5], Body::Json(json!({ "payment_reference": bad })))
            .await
            .expect(422);
    }
    app.purchase(&ids[5], Body::None).await.expect(200);
}
