//! Quotas, ticket types, typed and multi-line reserves, extend and release, over HTTP.

use serde_json::{json, Value};

use crate::helpers::{Backend, Body, TestApp};

/// A festival: quotas Saturday (30) and Sunday (40) under 100; types Saturday, Sunday, a
/// weekend pass (both days) and a VIP table (the root only, at most 2 a hold).
struct Festival {
    event: i64,
    saturday: i64,
    sunday: i64,
    sat: i64,
    sun: i64,
    pass: i64,
    vip: i64,
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> crate::helpers::Answer {
    app.send(app.admin(app.client.post(app.url(path))), Body::Json(body))
        .await
}

async fn festival(app: &TestApp) -> Festival {
    let event = app.create_event(100).await;
    let quota = |name: &'static str, capacity: i64| async move {
        let answer = admin_post(
            app,
            &format!("/api/events/{event}/quotas"),
            json!({"name": name, "capacity": capacity}),
        )
        .await;
        answer.expect(201)["id"].as_i64().unwrap()
    };
    let saturday = quota("Saturday", 30).await;
    let sunday = quota("Sunday", 40).await;
    let kind = |name: &'static str, quotas: Vec<i64>, max: Option<u32>| async move {
        let answer = admin_post(
            app,
            &format!("/api/events/{event}/ticket-types"),
            json!({"name": name, "quotas": quotas, "max_per_reservation": max}),
        )
        .await;
        answer.expect(201)["id"].as_i64().unwrap()
    };
    Festival {
        event,
        saturday,
        sunday,
        sat: kind("Saturday", vec![saturday], None).await,
        sun: kind("Sunday", vec![sunday], None).await,
        pass: kind("Weekend pass", vec![saturday, sunday], None).await,
        vip: kind("VIP table", vec![], Some(2)).await,
    }
}

fn available(event: &Value, list: &str) -> Vec<i64> {
    event[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["available"].as_i64().unwrap())
        .collect()
}

pub async fn quotas_and_ticket_types_are_created_by_operators_and_listed_on_the_event(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let plain = app.create_event(5).await;
    let before = app.event(plain).await;
    assert!(before.get("quotas").is_none() && before.get("ticket_types").is_none());
    let fest = festival(&app).await;
    let event = app.event(fest.event).await;
    assert_eq!(
        event["quotas"][0],
        json!({"id": fest.saturday, "event_id": fest.event, "name": "Saturday",
               "capacity": 30, "purchased": 0, "reserved": 0, "available": 30})
    );
    assert_eq!(
        event["ticket_types"][2],
        json!({"id": fest.pass, "event_id": fest.event, "name": "Weekend pass",
               "quotas": [fest.saturday, fest.sunday], "purchased": 0, "reserved": 0,
               "available": 30, "max_per_reservation": null})
    );
    assert_eq!(event["ticket_types"][3]["max_per_reservation"], 2);
    // Strangers and bad fields.
    let stranger = app
        .post(
            &format!("/api/events/{}/quotas", fest.event),
            Body::Json(json!({"name": "X", "capacity": 1})),
        )
        .await;
    stranger.expect_error(401, "unauthorized");
    admin_post(
        &app,
        &format!("/api/events/{}/quotas", fest.event),
        json!({"name": "", "capacity": 0}),
    )
    .await
    .expect_validation(&["capacity", "name"]);
    admin_post(
        &app,
        "/api/events/999999/quotas",
        json!({"name": "X", "capacity": 1}),
    )
    .await
    .expect_error(404, "not_found");
    let other = app.create_event(5).await;
    let foreign = admin_post(
        &app,
        &format!("/api/events/{other}/quotas"),
        json!({"name": "Other", "capacity": 5}),
    )
    .await
    .expect(201)["id"]
        .as_i64()
        .unwrap();
    admin_post(
        &app,
        &format!("/api/events/{}/ticket-types", fest.event),
        json!({"name": "Odd", "quotas": [foreign]}),
    )
    .await
    .expect_validation(&["quotas"]);
}

pub async fn a_typed_reserve_takes_from_every_quota_and_answers_with_its_lines(backend: Backend) {
    let app = TestApp::spawn(backend);
    let fest = festival(&app).await;
    let answer = app
        .reserve_with(fest.event, json!({"ticket_type": fest.pass, "quantity": 3}))
        .await;
    let hold = answer.expect(201).clone();
    assert_eq!(hold["quantity"], 3);
    assert_eq!(
        hold["lines"],
        json!([{"ticket_type": fest.pass, "quantity": 3}])
    );
    let event = app.event(fest.event).await;
    assert_eq!(available(&event, "quotas"), vec![27, 37]);
    assert_eq!(available(&event, "ticket_types"), vec![27, 37, 27, 97]);
    assert_eq!(
        (event["reserved"].as_i64(), event["available"].as_i64()),
        (Some(3), Some(97))
    );
    let read = app
        .get(&format!(
            "/api/reservations/{}",
            hold["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read.expect(200)["lines"], hold["lines"]);
    // Several types in one hold, all or nothing.
    let multi = app
        .reserve_with(
            fest.event,
            json!({"lines": [{"ticket_type": fest.sun, "quantity": 2},
                             {"ticket_type": fest.vip, "quantity": 2}]}),
        )
        .await;
    assert_eq!(multi.expect(201)["quantity"], 4);
}

pub async fn a_short_typed_reserve_answers_sold_out_naming_the_short_types(backend: Backend) {
    let app = TestApp::spawn(backend);
    let fest = festival(&app).await;
    app.reserve_with(fest.event, json!({"ticket_type": fest.sat, "quantity": 10}))
        .await
        .expect(201);
    app.reserve_with(fest.event, json!({"ticket_type": fest.sat, "quantity": 10}))
        .await
        .expect(201);
    app.reserve_with(fest.event, json!({"ticket_type": fest.pass, "quantity": 8}))
        .await
        .expect(201);
    let short = app
        .reserve_with(
            fest.event,
            json!({"lines": [{"ticket_type": fest.sun, "quantity": 1},
                             {"ticket_type": fest.pass, "quantity": 3}]}),
        )
        .await;
    assert_eq!(short.status, 409);
    assert_eq!(
        short.raw,
        format!(
            r#"{{"error":"sold_out","message":"Event is sold out.","unavailable":[{{"available":2,"ticket_type":{}}}]}}"#,
            fest.pass
        )
    );
    // An untyped event keeps the seed's body byte for byte.
    let plain = app.create_event(1).await;
    app.reserve(plain).await.expect(201);
    let seed = app.reserve(plain).await;
    assert_eq!(
        seed.raw,
        r#"{"error":"sold_out","message":"Event is sold out."}"#
    );
}

pub async fn a_reserve_naming_types_wrongly_answers_422_on_its_field(backend: Backend) {
    let app = TestApp::spawn(backend);
    let fest = festival(&app).await;
    let plain = app.create_event(5).await;
    for (event, body, field) in [
        (fest.event, json!({}), "ticket_type"),
        (fest.event, json!({"quantity": 2}), "ticket_type"),
        (fest.event, json!({"ticket_type": 999_999}), "ticket_type"),
        (
            fest.event,
            json!({"ticket_type": fest.vip, "quantity": 3}),
            "ticket_type",
        ),
        (plain, json!({"ticket_type": fest.sat}), "ticket_type"),
        (
            fest.event,
            json!({"lines": [{"ticket_type": fest.sat}, {"ticket_type": 999_999}]}),
            "lines",
        ),
        (
            fest.event,
            json!({"lines": [{"ticket_type": fest.sat}, {"ticket_type": fest.sat}]}),
            "lines",
        ),
        (fest.event, json!({"lines": []}), "lines"),
        (
            fest.event,
            json!({"lines": [{"ticket_type": fest.sat, "quantity": 6},
                                       {"ticket_type": fest.sun, "quantity": 5}]}),
            "lines",
        ),
    ] {
        let answer = app.reserve_with(event, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {answer:?}");
        assert!(
            answer.body["errors"].get(field).is_some(),
            "{body}: {}",
            answer.raw
        );
    }
    let required = app.reserve_with(fest.event, json!({})).await;
    assert_eq!(
        required.body["errors"]["ticket_type"][0],
        "The ticket type field is required."
    );
}

pub async fn extend_and_release_change_a_hold_through_group_commit(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(5).await;
    let hold = app
        .reserve_with(event, json!({"quantity": 4}))
        .await
        .expect(201)
        .clone();
    let id = hold["id"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::TimeDelta::seconds(300));
    let extended = app
        .post_keyed(
            &format!("/api/reservations/{id}/extend"),
            "extend-1",
            Body::Json(json!({"seconds": 600})),
        )
        .await;
    let body = extended.expect(200).clone();
    let expires: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let created: chrono::DateTime<chrono::Utc> =
        body["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 900);
    let again = app
        .post_keyed(
            &format!("/api/reservations/{id}/extend"),
            "extend-1",
            Body::Json(json!({"seconds": 600})),
        )
        .await;
    assert_eq!(
        (again.status, again.replayed.as_deref()),
        (200, Some("true"))
    );
    app.post(
        &format!("/api/reservations/{id}/extend"),
        Body::Json(json!({"seconds": 601})),
    )
    .await
    .expect_validation(&["seconds"]);
    // At most 3 × the TTL (1,800 s) from creation: at 800 s, to 1,400 s; at 1,300 s, not to
    // 1,900 s.
    app.clock.advance(chrono::TimeDelta::seconds(500));
    app.post(&format!("/api/reservations/{id}/extend"), Body::None)
        .await
        .expect(200);
    app.clock.advance(chrono::TimeDelta::seconds(500));
    app.post(&format!("/api/reservations/{id}/extend"), Body::None)
        .await
        .expect_error(409, "hold_lifetime_exceeded");

    let kept = app
        .post(
            &format!("/api/reservations/{id}/release"),
            Body::Json(json!({"quantity": 3})),
        )
        .await;
    assert_eq!(kept.expect(200)["quantity"], 1);
    assert_eq!(app.event(event).await["available"], 4);
    let all = app
        .post(
            &format!("/api/reservations/{id}/release"),
            Body::Json(json!({"quantity": 1})),
        )
        .await;
    all.expect_validation(&["quantity"]);
    assert!(all.raw.contains("cancel releases them all"), "{}", all.raw);
    app.post(&format!("/api/reservations/{id}/release"), Body::None)
        .await
        .expect_validation(&["quantity"]);
    app.post(&format!("/api/reservations/{id}/purchase"), Body::None)
        .await
        .expect(200);
    app.post(
        &format!("/api/reservations/{id}/release"),
        Body::Json(json!({"quantity": 1})),
    )
    .await
    .expect_error(409, "already_purchased");
    app.post("/api/reservations/nope/extend", Body::None)
        .await
        .expect_error(404, "not_found");

    // A typed hold gives back lines.
    let fest = festival(&app).await;
    let typed = app
        .reserve_with(
            fest.event,
            json!({"lines": [{"ticket_type": fest.pass, "quantity": 2},
                             {"ticket_type": fest.sun, "quantity": 2}]}),
        )
        .await
        .expect(201)
        .clone();
    let typed_id = typed["id"].as_str().unwrap();
    let left = app
        .post(
            &format!("/api/reservations/{typed_id}/release"),
            Body::Json(json!({"lines": [{"ticket_type": fest.pass, "quantity": 2}]})),
        )
        .await;
    assert_eq!(
        left.expect(200)["lines"],
        json!([{"ticket_type": fest.sun, "quantity": 2}])
    );
    let event = app.event(fest.event).await;
    assert_eq!(available(&event, "quotas"), vec![30, 38]);
}

pub async fn update_quota_answers_409_below_sold_and_404_for_an_unknown_quota(backend: Backend) {
    let app = TestApp::spawn(backend);
    let fest = festival(&app).await;
    app.reserve_with(fest.event, json!({"ticket_type": fest.sat, "quantity": 8}))
        .await
        .expect(201);
    let patch = |quota: i64, body: Value| {
        let path = format!("/api/events/{}/quotas/{quota}", fest.event);
        app.send(
            app.admin(app.client.patch(app.url(&path))),
            Body::Json(body),
        )
    };
    patch(fest.saturday, json!({"capacity": 7}))
        .await
        .expect_error(409, "capacity_below_sold");
    let changed = patch(fest.saturday, json!({"capacity": 8, "name": "Samedi"})).await;
    assert_eq!(
        (
            changed.expect(200)["name"].clone(),
            changed.body["available"].clone()
        ),
        (json!("Samedi"), json!(0))
    );
    patch(999_999, json!({"capacity": 8}))
        .await
        .expect_error(404, "not_found");
    patch(fest.sunday, json!({"capacity": 0}))
        .await
        .expect_validation(&["capacity"]);
}
