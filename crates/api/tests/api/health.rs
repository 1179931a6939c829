//! `GET /health`, `/health/live`, `/health/ready`.

use serde_json::json;

use crate::helpers::{Backend, Settings, TestApp};

pub async fn live_and_ready_answer_200_when_the_store_is_up(backend: Backend) {
    let app = TestApp::spawn(backend);
    for path in ["/health", "/health/live"] {
        assert_eq!(
            app.get(path).await.expect(200),
            &json!({"status": "ok"}),
            "{path}"
        );
    }
    // Ready also tells how many webhook deliveries wait.
    assert_eq!(
        app.get("/health/ready").await.expect(200),
        &json!({"status": "ok", "webhook_backlog": 0})
    );
}

pub async fn ready_answers_503_while_migrations_are_pending_and_live_stays_200(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            migrate: false,
            ..Settings::default()
        },
    );
    let answer = app.get("/health/ready").await;
    answer.expect_error(503, "service_unavailable");
    let message = answer.body["message"].as_str().unwrap();
    assert!(message.contains("migrations"), "{message}");
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    app.get("/health/live").await.expect(200);
}

pub async fn ready_answers_503_within_a_second_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend);
    app.get("/health/ready").await.expect(200);
    app.drop_database();
    let started = std::time::Instant::now();
    let answer = app.get("/health/ready").await;
    answer.expect_error(503, "service_unavailable");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    app.get("/health/live").await.expect(200);
}
