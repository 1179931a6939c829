//! Every answer is JSON: unknown routes, wrong methods, broken bodies, a lost database.

use serde_json::json;

use crate::helpers::{Backend, Body, TestApp};

pub async fn unknown_routes_answer_404_in_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend);
    for path in [
        "/",
        "/api",
        "/api/events/",
        "/api/events/1/reserve/now",
        "/nope",
    ] {
        app.get(path).await.expect_error(404, "not_found");
    }
    app.post("/api/unknown", Body::None)
        .await
        .expect_error(404, "not_found");
}

pub async fn wrong_methods_answer_405_naming_the_allowed_ones(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let cases = [
        (
            app.client
                .get(app.url(&format!("/api/events/{event}/reserve"))),
            "POST",
        ),
        (
            app.client.delete(app.url(&format!("/api/events/{event}"))),
            "GET, PATCH",
        ),
        (app.client.put(app.url("/api/events")), "GET, POST"),
        (
            app.client.get(app.url("/api/reservations/x/purchase")),
            "POST",
        ),
    ];
    for (req, allow) in cases {
        let answer = app.send(req, Body::None).await;
        answer.expect_error(405, "method_not_allowed");
        assert_eq!(answer.allow.as_deref(), Some(allow));
    }
}

pub async fn malformed_json_answers_400(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let answer = app
        .post(
            &format!("/api/events/{event}/reserve"),
            Body::Raw(Some("application/json"), b"{\"a\":".to_vec()),
        )
        .await;
    answer.expect_error(400, "malformed_json");
    // Nothing was reserved by the refused request.
    assert_eq!(
        app.get(&format!("/api/events/{event}")).await.expect(200)["reserved"],
        json!(0)
    );
}

pub async fn bodies_over_64_kib_answer_413(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let big = format!("{{\"payment_reference\":\"{}\"}}", "x".repeat(70 * 1024));
    let answer = app
        .post(
            &format!("/api/events/{event}/reserve"),
            Body::Raw(Some("application/json"), big.into_bytes()),
        )
        .await;
    answer.expect_error(413, "payload_too_large");
}

pub async fn bodies_of_another_content_type_answer_415(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let answer = app
            .post(
                &format!("/api/events/{event}/reserve"),
                Body::Raw(content_type, b"{}".to_vec()),
            )
            .await;
        answer.expect_error(415, "unsupported_media_type");
    }
}

pub async fn a_lost_database_answers_503_in_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    app.drop_database();
    app.reserve(event)
        .await
        .expect_error(503, "service_unavailable");
    app.get(&format!("/api/events/{event}"))
        .await
        .expect_error(503, "service_unavailable");
}

pub async fn health_answers_200(backend: Backend) {
    let app = TestApp::spawn(backend);
    assert_eq!(
        app.get("/health").await.expect(200),
        &json!({"status": "ok"})
    );
}
