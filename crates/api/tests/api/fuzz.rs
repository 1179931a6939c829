//! Request fuzzing at scale: random methods, paths, bodies and headers against the real app over
//! a real socket. Whatever arrives, the answer is JSON, never a 500, never a hang; a 503 carries
//! `Retry-After`. `FUZZ_CASES` sets the number of requests (default 1,500).

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, ADMIN_TOKEN};

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    admin: bool,
    idempotency_key: Option<String>,
    request_id: Option<String>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("1".to_owned()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "[0-9a-f-]{36}",
        1 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
    .prop_map(|s| percent(&s))
}

/// Percent-encodes everything but unreserved characters, so any string fits in a path.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("quantity".to_owned()),
                    Just("customer".to_owned()),
                    Just("payment_reference".to_owned()),
                    Just("name".to_owned()),
                    Just("capacity".to_owned()),
                    any::<String>(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn case() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        3 => Just("GET"),
        6 => Just("POST"),
        1 => Just("PATCH"),
        1 => Just("PUT"),
        1 => Just("DELETE"),
        1 => Just("OPTIONS"),
    ];
    let path = (
        prop::sample::select(vec![
            "/api/events/{}/reserve",
            "/api/events/{}",
            "/api/reservations/{}/purchase",
            "/api/reservations/{}/cancel",
            "/api/reservations/{}/extend",
            "/api/reservations/{}/release",
            "/api/reservations/{}",
            "/api/events/{}/quotas",
            "/api/events/{}/quotas/{}",
            "/api/events/{}/ticket-types",
            "/api/events?limit={}&after={}",
            "/api/events",
            "/{}",
            "/health/{}",
        ]),
        segment(),
        segment(),
    )
        .prop_map(|(template, a, b)| template.replacen("{}", &a, 1).replacen("{}", &b, 1));
    let body = prop_oneof![
        2 => Just(Vec::new()),
        2 => json().prop_map(|v| v.to_string().into_bytes()),
        2 => (1..4_u32).prop_map(|q| format!(r#"{{"quantity":{q}}}"#).into_bytes()),
        1 => (0..4_i64, 0..4_u32).prop_map(|(t, q)| {
            format!(r#"{{"lines":[{{"ticket_type":{t},"quantity":{q}}}],"seconds":{q}}}"#)
                .into_bytes()
        }),
        1 => (0..4_i64, 0..40_i64).prop_map(|(q, c)| {
            format!(r#"{{"name":"q","capacity":{c},"quotas":[{q}],"ticket_type":{q}}}"#)
                .into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    let content_type = prop::option::weighted(
        0.8,
        prop::sample::select(vec![
            "application/json",
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
        ]),
    );
    let header = prop::option::of(prop_oneof!["[!-~]{1,300}", "[ -~]{0,20}"]);
    (
        method,
        path,
        content_type,
        body,
        any::<bool>(),
        header.clone(),
        header,
    )
        .prop_map(
            |(method, path, content_type, body, admin, idempotency_key, request_id)| Case {
                method,
                path,
                content_type,
                body,
                admin,
                idempotency_key,
                request_id,
            },
        )
}

pub async fn any_request_gets_a_json_answer_never_a_500_or_a_hang(backend: Backend) {
    let app = TestApp::spawn(backend);
    // Few tickets: reserves sell it out, so refusals are reached too.
    app.create_event(5).await;
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500);
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..cases {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let method = awc::http::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut req = app
            .client
            .request(method, app.url(&case.path))
            .timeout(Duration::from_secs(10));
        if let Some(ct) = case.content_type {
            req = req.insert_header(("Content-Type", ct));
        }
        if case.admin {
            req = req.insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")));
        }
        // Header values the client itself refuses to send are skipped, as a server never sees them.
        for (name, value) in [
            ("Idempotency-Key", &case.idempotency_key),
            ("X-Request-Id", &case.request_id),
        ] {
            if let Some(v) = value
                .as_ref()
                .filter(|v| awc::http::header::HeaderValue::from_str(v).is_ok())
            {
                req = req.insert_header((name, v.as_str()));
            }
        }
        let mut res = req
            .send_body(case.body.clone())
            .await
            .unwrap_or_else(|e| panic!("no answer to {case:?}: {e}"));
        let status = res.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let retry_after = res.headers().contains_key("retry-after");
        let bytes = res.body().limit(1 << 20).await.unwrap();
        assert!(
            status < 500 || (status == 503 && retry_after),
            "{status} for {case:?}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(
            content_type.starts_with("application/json"),
            "{content_type} for {case:?}"
        );
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("not JSON for {case:?}: {}", String::from_utf8_lossy(&bytes))
        });
        if status >= 400 {
            assert!(
                body.get("error").is_some() || body.get("message").is_some(),
                "{status} without an envelope for {case:?}: {body}"
            );
        }
    }
    // The fuzzer reached past the router and the parsers, not only 404s.
    for reached in [201, 400, 404, 405, 409, 415, 422] {
        assert!(
            statuses.contains_key(&reached),
            "no {reached} in {statuses:?}"
        );
    }
    eprintln!("{cases} requests: {statuses:?}");
}
