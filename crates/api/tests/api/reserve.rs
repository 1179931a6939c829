//! `POST /api/events/{event}/reserve`.

use serde_json::json;

use crate::helpers::{timestamp, Backend, Body, TestApp, TTL_SECONDS};

pub async fn reserve_answers_201_with_a_hold_that_expires_after_the_ttl(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(3).await;
    // Whitespace alone is not a JSON body.
    app.post(
        &format!("/api/events/{event}/reserve"),
        Body::Raw(Some("application/json"), b"  \n".to_vec()),
    )
    .await
    .expect_error(400, "malformed_json");
    for body in [Body::None, Body::Json(json!({}))] {
        let answer = app
            .post(&format!("/api/events/{event}/reserve"), body)
            .await;
        let hold = answer.expect(201);
        assert!(uuid_like(hold["id"].as_str().unwrap()), "{hold}");
        assert_eq!(hold["event_id"], event);
        assert_eq!(hold["status"], "reserved");
        assert_eq!(timestamp(&hold["created_at"]), app.now());
        let ttl = chrono::TimeDelta::seconds(i64::try_from(TTL_SECONDS).unwrap());
        assert_eq!(timestamp(&hold["expires_at"]), app.now() + ttl);
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.chars().filter(|c| *c == '-').count() == 4
        && s.parse::<domain::ReservationId>().is_ok()
}

pub async fn reserve_answers_409_sold_out_when_no_ticket_is_left(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    app.hold(event).await;
    let answer = app.reserve(event).await;
    assert_eq!(
        answer.expect(409),
        &json!({"error": "sold_out", "message": "Event is sold out."})
    );
}

pub async fn reserve_answers_422_for_an_unknown_or_malformed_event(backend: Backend) {
    let app = TestApp::spawn(backend);
    let expected = json!({
        "message": "The given data was invalid.",
        "errors": {"event": ["The selected event is invalid."]}
    });
    for id in ["424242", "abc", "0", "-3", "1e3"] {
        let answer = app.reserve_raw(id).await;
        assert_eq!(answer.expect(422), &expected, "{id}");
    }
}

pub async fn a_past_due_hold_frees_its_ticket_at_once_without_any_sweep(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let first = app.hold(event).await;
    app.reserve(event).await.expect_error(409, "sold_out");
    app.advance(i64::try_from(TTL_SECONDS).unwrap());
    app.hold(event).await;
    let old = app.get(&format!("/api/reservations/{first}")).await;
    assert_eq!(old.expect(200)["status"], "expired");
}

impl TestApp {
    async fn reserve_raw(&self, id: &str) -> crate::helpers::Answer {
        self.post(&format!("/api/events/{id}/reserve"), Body::None)
            .await
    }
}
