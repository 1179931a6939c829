//! `POST /api/events` and `GET /api/events/{event}`.

use serde_json::json;

use crate::helpers::{timestamp, Backend, Body, Settings, TestApp, ADMIN_TOKEN};

pub async fn create_event_answers_201_with_the_event_and_its_counts(backend: Backend) {
    let app = TestApp::spawn(backend);
    let answer = app
        .send(
            app.client
                .post(app.url("/api/events"))
                .bearer_auth(ADMIN_TOKEN),
            Body::Json(json!({"name": "Opening night", "capacity": 250})),
        )
        .await;
    let body = answer.expect(201);
    assert!(body["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(body["name"], "Opening night");
    assert_eq!(
        (body["capacity"].clone(), body["purchased"].clone()),
        (json!(250), json!(0))
    );
    assert_eq!(
        (body["reserved"].clone(), body["available"].clone()),
        (json!(0), json!(250))
    );
    assert_eq!(timestamp(&body["created_at"]), app.now());
    assert_eq!(timestamp(&body["updated_at"]), app.now());

    let shown = app.get(&format!("/api/events/{}", body["id"])).await;
    assert_eq!(shown.expect(200), body);
}

pub async fn create_event_answers_401_without_or_with_a_wrong_token(backend: Backend) {
    let app = TestApp::spawn(backend);
    let good = json!({"name": "Gig", "capacity": 1});
    let none = app.post("/api/events", Body::Json(good.clone())).await;
    none.expect_error(401, "unauthorized");
    let wrong = app
        .send(
            app.client
                .post(app.url("/api/events"))
                .bearer_auth("not-the-token"),
            Body::Json(good.clone()),
        )
        .await;
    wrong.expect_error(401, "unauthorized");
    let basic = app
        .send(
            app.client
                .post(app.url("/api/events"))
                .insert_header(("Authorization", format!("Basic {ADMIN_TOKEN}"))),
            Body::Json(good),
        )
        .await;
    basic.expect_error(401, "unauthorized");
    // The 401 comes before any look at the body.
    let invalid = app.post("/api/events", Body::Json(json!({}))).await;
    invalid.expect_error(401, "unauthorized");
}

pub async fn create_event_answers_401_to_everyone_when_no_token_is_configured(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            admin_token: None,
            ..Settings::default()
        },
    );
    let answer = app
        .send(
            app.client.post(app.url("/api/events")).bearer_auth(""),
            Body::Json(json!({"name": "Gig", "capacity": 1})),
        )
        .await;
    answer.expect_error(401, "unauthorized");
}

pub async fn create_event_answers_422_listing_every_invalid_field(backend: Backend) {
    let app = TestApp::spawn(backend);
    let post = |body| {
        app.send(
            app.client
                .post(app.url("/api/events"))
                .bearer_auth(ADMIN_TOKEN),
            body,
        )
    };

    let empty = post(Body::None).await;
    assert_eq!(
        empty.expect(422),
        &json!({
            "message": "The given data was invalid.",
            "errors": {
                "name": ["The name field is required."],
                "capacity": ["The capacity field is required."]
            }
        })
    );
    let wrong = post(Body::Json(json!({"name": "x".repeat(201), "capacity": 0}))).await;
    assert_eq!(
        wrong.expect(422)["errors"],
        json!({
            "name": ["The name field must not be greater than 200 characters."],
            "capacity": ["The capacity field must be at least 1."]
        })
    );
    let types = post(Body::Json(json!({"name": ["a"], "capacity": "ten"}))).await;
    assert_eq!(
        types.expect(422)["errors"],
        json!({
            "name": ["The name field must be a string."],
            "capacity": ["The capacity field must be an integer."]
        })
    );
}

pub async fn show_event_counts_only_active_holds_and_adds_up_to_capacity(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(5).await;
    let bought = app.hold(event).await;
    app.purchase(&bought, Body::None).await.expect(200);
    app.hold(event).await;
    app.advance(60);
    app.hold(event).await;

    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (
            body["purchased"].clone(),
            body["reserved"].clone(),
            body["available"].clone()
        ),
        (json!(1), json!(2), json!(2))
    );

    // Once the first two holds run out, they stop counting at once, with no sweep.
    app.advance(i64::try_from(crate::helpers::TTL_SECONDS).unwrap() - 60);
    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (
            body["purchased"].clone(),
            body["reserved"].clone(),
            body["available"].clone()
        ),
        (json!(1), json!(1), json!(3))
    );
}

pub async fn show_event_answers_404_for_unknown_or_malformed_ids(backend: Backend) {
    let app = TestApp::spawn(backend);
    for id in ["999999", "abc", "0", "-1", "1.5", "99999999999999999999"] {
        app.get(&format!("/api/events/{id}"))
            .await
            .expect_error(404, "not_found");
    }
}

pub async fn list_events_pages_newest_first_with_a_next_cursor(backend: Backend) {
    let app = TestApp::spawn(backend);
    let mut ids = Vec::new();
    for capacity in 1..=5 {
        ids.push(app.create_event(capacity).await);
    }
    app.reserve(ids[4]).await.expect(201);
    let first = app.get("/api/events?limit=2").await;
    let page = first.expect(200);
    let listed: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[4], ids[3]]);
    assert_eq!(page["events"][0]["reserved"], 1);
    assert_eq!(page["next"], ids[3]);
    let second = app
        .get(&format!("/api/events?limit=2&after={}", ids[3]))
        .await;
    assert_eq!(second.expect(200)["next"], ids[1]);
    let last = app
        .get(&format!("/api/events?limit=2&after={}", ids[1]))
        .await;
    let last = last.expect(200);
    assert_eq!(last["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["next"], json!(null));
    let all = app.get("/api/events").await;
    assert_eq!(all.expect(200)["events"].as_array().map(Vec::len), Some(5));
}

pub async fn list_events_answers_422_for_a_bad_limit_or_cursor(backend: Backend) {
    let app = TestApp::spawn(backend);
    for query in ["limit=0", "limit=101", "limit=ten", "after=0", "after=-4"] {
        let answer = app.get(&format!("/api/events?{query}")).await;
        assert_eq!(
            answer.expect(422)["message"],
            "The given data was invalid.",
            "{query}"
        );
    }
}

pub async fn update_event_changes_name_and_capacity(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    app.reserve(event).await.expect(201);
    app.advance(5);
    let answer = app
        .send(
            app.admin(app.client.patch(app.url(&format!("/api/events/{event}")))),
            Body::Json(json!({"name": "Matinee", "capacity": 4})),
        )
        .await;
    let body = answer.expect(200).clone();
    assert_eq!(
        (
            body["name"].clone(),
            body["capacity"].clone(),
            body["available"].clone()
        ),
        (json!("Matinee"), json!(4), json!(3))
    );
    assert_eq!(timestamp(&body["updated_at"]), app.now());
    assert_eq!(app.event(event).await, body);
    // An empty patch changes nothing.
    let same = app
        .send(
            app.admin(app.client.patch(app.url(&format!("/api/events/{event}")))),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(same.expect(200), &body);
}

pub async fn update_event_refuses_below_sold_unknown_events_bad_fields_and_strangers(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    for _ in 0..3 {
        app.reserve(event).await.expect(201);
    }
    let patch = |path: String, body| {
        app.send(
            app.admin(app.client.patch(app.url(&path))),
            Body::Json(body),
        )
    };
    patch(format!("/api/events/{event}"), json!({"capacity": 2}))
        .await
        .expect_error(409, "capacity_below_sold");
    patch("/api/events/999999".into(), json!({"capacity": 2}))
        .await
        .expect_error(404, "not_found");
    let invalid = patch(
        format!("/api/events/{event}"),
        json!({"capacity": 0, "name": ""}),
    )
    .await;
    assert_eq!(
        invalid.expect(422)["errors"]
            .as_object()
            .map(|e| e.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["capacity".to_owned(), "name".to_owned()])
    );
    let stranger = app
        .send(
            app.client.patch(app.url(&format!("/api/events/{event}"))),
            Body::Json(json!({"capacity": 20})),
        )
        .await;
    stranger.expect_error(401, "unauthorized");
    let body = app.event(event).await;
    assert_eq!(
        (body["capacity"].clone(), body["reserved"].clone()),
        (json!(10), json!(3))
    );
}
