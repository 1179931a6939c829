//! `POST /api/events` and `GET /api/events/{event}`.

use serde_json::json;

use crate::helpers::{timestamp, Body, TestApp, ADMIN_TOKEN};

#[actix_web::test]
async fn create_event_answers_201_with_the_event_and_its_counts() {
    let app = TestApp::spawn();
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

#[actix_web::test]
async fn create_event_answers_401_without_or_with_a_wrong_token() {
    let app = TestApp::spawn();
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

#[actix_web::test]
async fn create_event_answers_401_to_everyone_when_no_token_is_configured() {
    let app = TestApp::spawn_with(None);
    let answer = app
        .send(
            app.client.post(app.url("/api/events")).bearer_auth(""),
            Body::Json(json!({"name": "Gig", "capacity": 1})),
        )
        .await;
    answer.expect_error(401, "unauthorized");
}

#[actix_web::test]
async fn create_event_answers_422_listing_every_invalid_field() {
    let app = TestApp::spawn();
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

#[actix_web::test]
async fn show_event_counts_only_active_holds_and_adds_up_to_capacity() {
    let app = TestApp::spawn();
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

#[actix_web::test]
async fn show_event_answers_404_for_unknown_or_malformed_ids() {
    let app = TestApp::spawn();
    for id in ["999999", "abc", "0", "-1", "1.5", "99999999999999999999"] {
        app.get(&format!("/api/events/{id}"))
            .await
            .expect_error(404, "not_found");
    }
}
