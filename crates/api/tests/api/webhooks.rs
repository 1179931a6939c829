//! Webhooks over HTTP, to a real receiver on a socket of the test's own: endpoints for
//! operators only, signed deliveries (checked here with an HMAC of the test's own), retries
//! with the same `webhook-id`, a 410 that turns the endpoint off, private targets refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{Backend, Body, Settings, TestApp};

/// What the receiver got: headers of interest and the body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver answering each POST with the next of `answers` (the last one again after).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

fn receiver(answers: Vec<u16>) -> Receiver {
    receiver_with(answers, None, Duration::ZERO)
}

/// A receiver that answers each POST with the next of `answers`, after `delay`, with a
/// `Location` header when `location` is set.
fn receiver_with(answers: Vec<u16>, location: Option<String>, delay: Duration) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = Arc::clone(&got);
    let answers = Arc::new(answers);
    let server = HttpServer::new(move || {
        let (seen, answers, location) = (Arc::clone(&seen), Arc::clone(&answers), location.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (seen, answers, location) =
                (Arc::clone(&seen), Arc::clone(&answers), location.clone());
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let status = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8(body.to_vec()).unwrap(),
                    });
                    answers[(seen.len() - 1).min(answers.len() - 1)]
                };
                actix_web::rt::time::sleep(delay).await;
                let mut answer =
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
                if let Some(to) = &location {
                    answer.insert_header(("location", to.as_str()));
                }
                answer.finish()
            }
        }))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    Receiver {
        url: format!("http://127.0.0.1:{port}/hooks"),
        got,
    }
}

impl Receiver {
    async fn until(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the receiver got {:?}", self.got.lock().unwrap());
    }
}

/// The Standard Webhooks check, written here from the specification.
fn verify(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.signature
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

async fn add(app: &TestApp, url: &str, events: Value) -> crate::helpers::Answer {
    let body = json!({"url": url, "events": events});
    app.send(
        app.admin(app.client.post(app.url("/api/webhooks"))),
        Body::Json(body),
    )
    .await
}

async fn deliveries(app: &TestApp, webhook: i64) -> Value {
    let path = format!("/api/webhooks/{webhook}/deliveries");
    app.send(app.admin(app.client.get(app.url(&path))), Body::None)
        .await
        .expect(200)
        .clone()
}

async fn until_delivered(app: &TestApp, webhook: i64, n: usize) -> Value {
    for _ in 0..500 {
        let listed = deliveries(app, webhook).await;
        let done = listed["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "delivered")
            .count();
        if done >= n {
            return listed;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not delivered: {}", deliveries(app, webhook).await);
}

pub async fn deliveries_arrive_signed_and_a_failure_is_retried_with_the_same_id(backend: Backend) {
    let app = TestApp::spawn(backend);
    let shop = receiver(vec![500, 204]);
    let created = add(&app, &shop.url, json!(["*"])).await;
    let created = created.expect(201).clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let webhook = created["id"].as_i64().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["events"], json!(["*"]));
    let listed = app
        .send(
            app.admin(app.client.get(app.url("/api/webhooks"))),
            Body::None,
        )
        .await;
    let listed = listed.expect(200);
    assert_eq!(listed["webhooks"][0]["id"], webhook);
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let event = app.create_event(5).await;
    let hold = app.hold(event).await;
    let first = shop.until(1).await;
    // Refused with a 500: tried again after the schedule's second, with the same id.
    app.advance(2);
    let both = shop.until(2).await;
    assert_eq!(both[0].id, format!("msg_{event}_1"));
    assert_eq!(both[1].id, both[0].id);
    for r in &both {
        assert!(verify(&secret, r), "{r:?}");
        assert!(!verify(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            r
        ));
    }
    let body: Value = serde_json::from_str(&first[0].body).unwrap();
    assert_eq!(body["type"], "reservation.created");
    assert_eq!(
        (body["event_id"].as_i64(), body["seq"].as_i64()),
        (Some(event), Some(1))
    );
    assert_eq!(body["data"]["id"], hold.as_str());
    assert_eq!(body["data"]["event_id"], event);
    let now = chrono::Utc::now().timestamp();
    let sent: i64 = first[0].timestamp.parse().unwrap();
    assert!(
        (now - sent).abs() < 60,
        "webhook-timestamp is Unix seconds: {sent}"
    );

    let listed = until_delivered(&app, webhook, 1).await;
    let d = &listed["deliveries"][0];
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_i64()),
        (Some("delivered"), Some(2))
    );
    assert_eq!(
        (d["seq"].as_i64(), d["type"].as_str()),
        (Some(1), Some("reservation.created"))
    );

    // A manual retry sends it once more, with the same id.
    let id = d["id"].as_i64().unwrap();
    let path = format!("/api/webhooks/{webhook}/deliveries/{id}/retry");
    app.send(app.admin(app.client.post(app.url(&path))), Body::None)
        .await
        .expect(202);
    let three = shop.until(3).await;
    assert_eq!(three[2].id, three[0].id);
}

pub async fn a_410_turns_the_endpoint_off_and_removed_endpoints_get_nothing(backend: Backend) {
    let app = TestApp::spawn(backend);
    let gone = receiver(vec![410]);
    let created = add(&app, &gone.url, json!(["reservation.created"])).await;
    let webhook = created.expect(201)["id"].as_i64().unwrap();
    let event = app.create_event(5).await;
    app.hold(event).await;
    gone.until(1).await;
    for _ in 0..200 {
        let listed = app
            .send(
                app.admin(app.client.get(app.url("/api/webhooks"))),
                Body::None,
            )
            .await;
        if listed.body["webhooks"][0]["enabled"] == false {
            let reason = listed.body["webhooks"][0]["disabled_reason"]
                .as_str()
                .unwrap();
            assert!(reason.contains("410"), "{reason}");
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    app.hold(event).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.got.lock().unwrap().len(), 1, "nothing after the 410");

    let path = format!("/api/webhooks/{webhook}");
    app.send(app.admin(app.client.delete(app.url(&path))), Body::None)
        .await
        .expect(200);
    app.send(app.admin(app.client.delete(app.url(&path))), Body::None)
        .await
        .expect_error(404, "not_found");
}

pub async fn a_private_target_is_refused_unless_allowed(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            webhook_allow_private_networks: false,
            ..Settings::default()
        },
    );
    let inside = receiver(vec![204]);
    let webhook = add(&app, &inside.url, json!(["*"])).await.expect(201)["id"]
        .as_i64()
        .unwrap();
    let event = app.create_event(5).await;
    app.hold(event).await;
    for _ in 0..300 {
        let listed = deliveries(&app, webhook).await;
        if let Some(error) = listed["deliveries"][0]["last_error"].as_str() {
            assert!(error.contains("not a public address"), "{error}");
            assert_eq!(inside.got.lock().unwrap().len(), 0);
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no attempt was recorded");
}

pub async fn webhooks_are_for_operators_and_bad_requests_are_named(backend: Backend) {
    let app = TestApp::spawn(backend);
    let stranger = app
        .send(
            app.client.post(app.url("/api/webhooks")),
            Body::Json(json!({"url": "https://a.example/", "events": ["*"]})),
        )
        .await;
    stranger.expect_error(401, "unauthorized");
    add(&app, "ftp://a.example/", json!(["*"]))
        .await
        .expect_validation(&["url"]);
    add(&app, "https://a.example/", json!(["reservation.deleted"]))
        .await
        .expect_validation(&["events"]);
    add(&app, "https://user:pw@a.example/", json!("*"))
        .await
        .expect_validation(&["events", "url"]);
    let path = "/api/webhooks/999/deliveries";
    app.send(app.admin(app.client.get(app.url(path))), Body::None)
        .await
        .expect_error(404, "not_found");
}

async fn last_attempt(app: &TestApp, webhook: i64) -> Value {
    for _ in 0..400 {
        let listed = deliveries(app, webhook).await;
        let first = listed["deliveries"][0].clone();
        if first["attempts"].as_i64().unwrap_or(0) >= 1 {
            return first;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no attempt was recorded: {}",
        deliveries(app, webhook).await
    );
}

pub async fn a_hung_receiver_times_out_and_never_holds_up_reserves(backend: Backend) {
    let app = TestApp::spawn(backend);
    // Answers only after 30 s: the attempt's 2-second timeout ends it first.
    let hung = receiver_with(vec![204], None, Duration::from_secs(30));
    let webhook = add(&app, &hung.url, json!(["*"])).await.expect(201)["id"]
        .as_i64()
        .unwrap();
    let event = app.create_event(100).await;
    // Every reserve is answered while the deliveries of the earlier ones hang.
    for _ in 0..40 {
        app.reserve(event).await.expect(201);
    }
    assert_eq!(app.event(event).await["reserved"], 40);
    let attempt = last_attempt(&app, webhook).await;
    assert_eq!(attempt["status"], "pending", "{attempt}");
    assert!(attempt["last_status"].is_null(), "{attempt}");
    let error = attempt["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("timeout") || error.contains("timed out"),
        "{error}"
    );
}

pub async fn redirects_are_not_followed_and_names_are_checked_where_they_resolve(backend: Backend) {
    let app = TestApp::spawn(backend);
    let elsewhere = receiver(vec![204]);
    let redirecting = receiver_with(vec![307], Some(elsewhere.url.clone()), Duration::ZERO);
    let webhook = add(&app, &redirecting.url, json!(["*"])).await.expect(201)["id"]
        .as_i64()
        .unwrap();
    let event = app.create_event(5).await;
    app.hold(event).await;
    let attempt = last_attempt(&app, webhook).await;
    assert_eq!(
        (attempt["status"].as_str(), attempt["last_status"].as_i64()),
        (Some("pending"), Some(307))
    );
    assert!(
        elsewhere.got.lock().unwrap().is_empty(),
        "the redirect was followed"
    );

    // A name (not an address) that resolves to loopback is refused when it is resolved.
    let strict = TestApp::spawn_with(
        backend,
        Settings {
            webhook_allow_private_networks: false,
            ..Settings::default()
        },
    );
    let inside = receiver(vec![204]);
    let named = inside.url.replace("127.0.0.1", "localhost");
    let webhook = add(&strict, &named, json!(["*"])).await.expect(201)["id"]
        .as_i64()
        .unwrap();
    let event = strict.create_event(5).await;
    strict.hold(event).await;
    let attempt = last_attempt(&strict, webhook).await;
    let error = attempt["last_error"].as_str().unwrap();
    assert!(error.contains("not a public address"), "{error}");
    assert!(inside.got.lock().unwrap().is_empty());
}
