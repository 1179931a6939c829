//! `GET /metrics`: Prometheus text, read back with a Prometheus text parser. The recorder is
//! the process's, shared by every test of this binary, so counts here are lower bounds; the
//! CLI suite checks exact counts against a server process of its own.

use prom_text_format_parser::{Scrape, Type, ValueType};

use crate::helpers::{Backend, Body, TestApp};

/// The samples of family `name` (counters and gauges: their values; histograms: their counts)
/// whose labels include `labels`, summed.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .metrics
        .iter()
        .filter(|m| m.name == name)
        .flat_map(|m| m.samples.iter().map(move |s| (m.kind, s)))
        .filter(|(kind, s)| *kind != Type::Histogram || s.value.value_type == ValueType::Count)
        .filter(|(_, s)| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
        })
        .map(|(_, s)| s.value.value.as_f64())
        .sum()
}

fn kind(scrape: &Scrape, name: &str) -> Option<Type> {
    scrape
        .metrics
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.kind)
}

pub async fn metrics_are_prometheus_text_with_requests_outcomes_batches_and_the_pool(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(2).await;
    let bought = app.hold(event).await;
    let canceled = app.hold(event).await;
    app.reserve(event).await.expect_error(409, "sold_out");
    app.purchase(&bought, Body::None).await.expect(200);
    app.cancel(&canceled).await.expect(200);
    app.get(&format!("/api/events/{event}")).await.expect(200);
    app.post("/api/reservations/nope/purchase", Body::None)
        .await
        .expect_error(404, "not_found");
    // A made-up method: answered, counted, but never a label of its own.
    let odd = actix_web::http::Method::from_bytes(b"XMETHODX").unwrap();
    let answer = app
        .client
        .request(odd, app.url(&format!("/api/events/{event}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 405);

    let mut res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = String::from_utf8(res.body().limit(1 << 22).await.unwrap().to_vec()).unwrap();
    let scrape = Scrape::parse(&text).unwrap_or_else(|e| panic!("{e:?} in\n{text}"));
    let samples = &scrape;

    let reserve = "/api/events/{event}/reserve";
    for (labels, at_least) in [
        (
            vec![("route", reserve), ("status", "201"), ("method", "POST")],
            1.0,
        ),
        (vec![("route", reserve), ("status", "409")], 1.0),
        (
            vec![("route", "/api/events/{event}"), ("status", "200")],
            1.0,
        ),
        (
            vec![
                ("route", "/api/reservations/{reservation}/purchase"),
                ("status", "404"),
            ],
            1.0,
        ),
    ] {
        assert!(
            value(samples, "http_requests_total", &labels) >= at_least,
            "{labels:?} in\n{text}"
        );
    }
    assert!(!text.contains("XMETHODX"), "{text}");
    assert!(
        value(
            samples,
            "http_requests_total",
            &[("method", "OTHER"), ("status", "405")]
        ) >= 1.0,
        "{text}"
    );
    // Raw paths never become labels: only route patterns do.
    assert!(
        !text.contains(&format!("/api/events/{event}/reserve")),
        "{text}"
    );
    assert!(
        value(
            samples,
            "http_request_duration_seconds",
            &[("route", reserve)]
        ) >= 2.0
    );
    assert_eq!(
        kind(samples, "http_request_duration_seconds"),
        Some(Type::Histogram)
    );
    assert_eq!(kind(samples, "batch_size"), Some(Type::Histogram));
    assert_eq!(kind(samples, "http_requests_total"), Some(Type::Counter));
    for (outcome, operation) in [
        ("reserved", "reserve"),
        ("sold_out", "reserve"),
        ("purchased", "purchase"),
        ("canceled", "cancel"),
    ] {
        assert!(
            value(
                samples,
                "ticket_outcomes_total",
                &[("outcome", outcome), ("operation", operation)]
            ) >= 1.0,
            "{outcome} in\n{text}"
        );
    }
    assert!(value(samples, "batch_size", &[("engine", "write")]) >= 1.0);
    assert!(value(samples, "batch_size", &[("engine", "event read")]) >= 1.0);
    assert_eq!(kind(samples, "batch_queue_depth"), Some(Type::Gauge));
    let depths = samples
        .metrics
        .iter()
        .find(|m| m.name == "batch_queue_depth")
        .unwrap();
    for engine in ["write", "event read", "reservation read"] {
        assert!(
            depths.samples.iter().any(|s| s
                .labels
                .iter()
                .any(|l| l.key == "engine" && l.value == engine)),
            "{engine}"
        );
    }
    let store = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    assert!(
        value(samples, "store_pool_connections_open", &[("store", store)]) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            samples,
            "store_pool_checkout_wait_seconds",
            &[("store", store)]
        ) >= 1.0
    );
}
