//! `GET /api/reservations/{reservation}` and `POST /api/reservations/{reservation}/cancel`.

use serde_json::json;

use crate::helpers::{Backend, Body, TestApp};

pub async fn show_reservation_answers_200_and_404(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    let body = app
        .get(&format!("/api/reservations/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(id.as_str()), Some("reserved"))
    );
    app.get("/api/reservations/nope")
        .await
        .expect_error(404, "not_found");
    let unknown = domain::ReservationId::generate(chrono::Utc::now(), domain::EventId::new(1));
    app.get(&format!("/api/reservations/{unknown}"))
        .await
        .expect_error(404, "not_found");
}

pub async fn cancel_releases_the_ticket_and_cannot_be_repeated(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    let canceled = app
        .post(&format!("/api/reservations/{id}/cancel"), Body::None)
        .await;
    assert_eq!(canceled.expect(200)["status"], "canceled");
    let event_body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(event_body["available"], json!(1));
    app.post(&format!("/api/reservations/{id}/cancel"), Body::None)
        .await
        .expect_error(409, "invalid_or_expired_reservation");
    let other = app.hold(event).await;
    app.purchase(&other, Body::None).await.expect(200);
    app.post(&format!("/api/reservations/{other}/cancel"), Body::None)
        .await
        .expect_error(409, "already_purchased");
}
