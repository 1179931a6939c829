//! Starting the app and talking to it.

use std::sync::Arc;
use std::time::Duration;

use api::{ApiConfig, Application};
use awc::http::header;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{Clock, FixedClock, HoldTtl, Ticketing};
use postgres_adapter::{migrate_url, PgStore, PoolSettings, MIGRATIONS_DIR};
use serde_json::{json, Value};
use test_support::TestDatabase;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const TTL_SECONDS: u64 = 600;

pub struct TestApp {
    pub address: String,
    pub client: awc::Client,
    pub clock: Arc<FixedClock>,
    pub db: TestDatabase,
}

/// A JSON answer: status, content type and parsed body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub allow: Option<String>,
}

fn fresh_database() -> TestDatabase {
    TestDatabase::create(MIGRATIONS_DIR, &|url| {
        migrate_url(url).map(drop).map_err(|e| e.to_string())
    })
}

pub fn start_time() -> DateTime<Utc> {
    let now = Utc::now();
    now - TimeDelta::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000))
}

impl TestApp {
    pub fn spawn() -> Self {
        Self::spawn_with(Some(ADMIN_TOKEN))
    }

    pub fn spawn_with(admin_token: Option<&str>) -> Self {
        Self::build(admin_token, 256)
    }

    /// With group commit batches of at most `batch_max` requests.
    pub fn spawn_with_batch_max(batch_max: usize) -> Self {
        Self::build(Some(ADMIN_TOKEN), batch_max)
    }

    /// Starts the app on port 0 with a clock the test moves by hand.
    fn build(admin_token: Option<&str>, batch_max: usize) -> Self {
        let db = fresh_database();
        let settings = PoolSettings {
            max_size: 8,
            checkout_timeout: Duration::from_secs(5),
        };
        let store = Arc::new(PgStore::connect(db.url(), settings).unwrap());
        let clock = Arc::new(FixedClock::at(start_time()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let ticketing = Ticketing::new(
            store.clone(),
            store.clone(),
            dyn_clock,
            HoldTtl::from_seconds(TTL_SECONDS).unwrap(),
        );
        let config = ApiConfig {
            bind: "127.0.0.1:0".into(),
            admin_token: admin_token.map(str::to_owned),
            expire_interval: None,
            expire_batch: 1_000,
            workers: Some(2),
            batch_max,
        };
        let app = Application::build(config, ticketing).unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(1_000))
            .timeout(Duration::from_secs(60))
            .finish();
        Self {
            address,
            client,
            clock,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends a request and reads the answer, which must be JSON whatever its status.
    pub async fn send(&self, req: awc::ClientRequest, body: Body) -> Answer {
        let sent = match body {
            Body::None => req.send().await,
            Body::Json(value) => req.send_json(&value).await,
            Body::Raw(content_type, bytes) => {
                let req = match content_type {
                    Some(ct) => req.insert_header((header::CONTENT_TYPE, ct)),
                    None => req,
                };
                req.send_body(bytes).await
            }
        };
        let mut res = sent.expect("request failed");
        let status = res.status().as_u16();
        let text = |name| {
            res.headers()
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
        let allow = text(header::ALLOW);
        let bytes = res.body().limit(1 << 20).await.expect("read body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "status {status}: body is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Answer {
            status,
            content_type,
            body,
            allow,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path)), Body::None).await
    }

    pub async fn post(&self, path: &str, body: Body) -> Answer {
        self.send(self.client.post(self.url(path)), body).await
    }

    pub async fn create_event(&self, capacity: i64) -> i64 {
        let answer = self
            .send(
                self.client
                    .post(self.url("/api/events"))
                    .bearer_auth(ADMIN_TOKEN),
                Body::Json(json!({"name": "Test event", "capacity": capacity})),
            )
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["id"].as_i64().expect("event id")
    }

    pub async fn reserve(&self, event: i64) -> Answer {
        self.post(&format!("/api/events/{event}/reserve"), Body::None)
            .await
    }

    pub async fn purchase(&self, reservation: &str, body: Body) -> Answer {
        self.post(&format!("/api/reservations/{reservation}/purchase"), body)
            .await
    }

    /// Reserves one ticket and returns the reservation id.
    pub async fn hold(&self, event: i64) -> String {
        let answer = self.reserve(event).await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["id"]
            .as_str()
            .expect("reservation id")
            .to_owned()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A request body.
#[derive(Debug)]
pub enum Body {
    None,
    Json(Value),
    Raw(Option<&'static str>, Vec<u8>),
}

impl Answer {
    /// Asserts the status and that the answer is JSON.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        assert!(
            self.content_type.starts_with("application/json"),
            "not JSON: {self:?}"
        );
        &self.body
    }

    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        let body = self.expect(status);
        assert_eq!(body["error"], code, "{self:?}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {self:?}"
        );
    }
}

/// The time a JSON timestamp denotes.
pub fn timestamp(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    assert!(text.ends_with('Z'), "not UTC: {text}");
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}
