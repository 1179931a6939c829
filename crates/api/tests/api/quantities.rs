//! Several tickets per hold, and the optional per-customer limit.

use serde_json::json;

use crate::helpers::{Backend, Body, Settings, TestApp};

pub async fn reserve_of_several_tickets_answers_201_with_the_quantity_and_counts_tickets(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(5).await;
    let hold = app.reserve_with(event, json!({"quantity": 3})).await;
    assert_eq!(hold.expect(201)["quantity"], 3);
    let single = app.reserve(event).await;
    assert_eq!(single.expect(201)["quantity"], 1);
    let body = app.event(event).await;
    assert_eq!(
        (body["reserved"].clone(), body["available"].clone()),
        (json!(4), json!(1))
    );
    let id = hold.body["id"].as_str().unwrap();
    let read = app.get(&format!("/api/reservations/{id}")).await;
    assert_eq!(read.expect(200)["quantity"], 3);
}

pub async fn reserve_answers_409_sold_out_with_the_seeds_body_when_fewer_than_asked_are_left(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(3).await;
    app.reserve_with(event, json!({"quantity": 2}))
        .await
        .expect(201);
    let refused = app.reserve_with(event, json!({"quantity": 2})).await;
    refused.expect(409);
    assert_eq!(
        refused.raw,
        r#"{"error":"sold_out","message":"Event is sold out."}"#
    );
    // All or nothing: the one ticket left is still there.
    assert_eq!(app.event(event).await["available"], 1);
    app.reserve_with(event, json!({"quantity": 1}))
        .await
        .expect(201);
}

pub async fn reserve_answers_422_for_a_bad_quantity_or_customer(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(50).await;
    for (body, field) in [
        (json!({"quantity": 0}), "quantity"),
        (json!({"quantity": 11}), "quantity"),
        (json!({"quantity": "2"}), "quantity"),
        (json!({"quantity": 1.5}), "quantity"),
        (json!({"customer": ""}), "customer"),
        (json!({"customer": "c".repeat(129)}), "customer"),
        (json!({"customer": 7}), "customer"),
    ] {
        let answer = app.reserve_with(event, body.clone()).await;
        let errors = &answer.expect(422)["errors"];
        assert!(errors[field][0].is_string(), "{body}: {answer:?}");
    }
    let both = app
        .reserve_with(event, json!({"quantity": 99, "customer": ""}))
        .await;
    let errors = both.expect(422)["errors"].as_object().unwrap().clone();
    assert_eq!(errors.len(), 2, "every bad field at once: {errors:?}");
    assert_eq!(app.event(event).await["reserved"], 0);
}

pub async fn purchase_and_cancel_move_every_ticket_of_a_hold(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    let bought = app.reserve_with(event, json!({"quantity": 4})).await;
    let bought = bought.expect(201)["id"].as_str().unwrap().to_owned();
    let dropped = app.reserve_with(event, json!({"quantity": 3})).await;
    let dropped = dropped.expect(201)["id"].as_str().unwrap().to_owned();
    let purchased = app.purchase(&bought, Body::None).await;
    assert_eq!(purchased.expect(200)["quantity"], 4);
    app.cancel(&dropped).await.expect(200);
    let body = app.event(event).await;
    assert_eq!(
        (
            body["purchased"].clone(),
            body["reserved"].clone(),
            body["available"].clone()
        ),
        (json!(4), json!(0), json!(6))
    );
}

pub async fn the_customer_limit_answers_409_customer_limit_reached(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            max_tickets_per_customer: Some(4),
            ..Settings::default()
        },
    );
    let event = app.create_event(100).await;
    let first = app
        .reserve_with(event, json!({"quantity": 3, "customer": "acct-1"}))
        .await;
    assert_eq!(first.expect(201)["quantity"], 3);
    app.reserve_with(event, json!({"quantity": 2, "customer": "acct-1"}))
        .await
        .expect_error(409, "customer_limit_reached");
    app.reserve_with(event, json!({"quantity": 1, "customer": "acct-1"}))
        .await
        .expect(201);
    app.reserve_with(event, json!({"quantity": 4, "customer": "acct-2"}))
        .await
        .expect(201);
    // Without a customer no limit applies.
    app.reserve_with(event, json!({"quantity": 10}))
        .await
        .expect(201);
    // A canceled hold no longer counts.
    let id = first.body["id"].as_str().unwrap();
    app.cancel(id).await.expect(200);
    app.reserve_with(event, json!({"quantity": 3, "customer": "acct-1"}))
        .await
        .expect(201);
}
