//! Starting the app on a store of its own and talking to it over a real socket.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiConfig, Application};
use awc::http::header;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{Clock, FixedClock, HoldTtl, Policy, Store, Ticketing};
use postgres_adapter::{migrate_url, PgStore, PoolSettings, MIGRATIONS_DIR};
use serde_json::{json, Value};
use sqlite_adapter::{SqliteLocation, SqliteStore};
use test_support::TestDatabase;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const TTL_SECONDS: u64 = 600;

/// Which store a test runs on: every test of this suite runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// How the app under test is set up.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub admin_token: Option<&'static str>,
    pub batch_max: usize,
    pub max_tickets_per_customer: Option<u32>,
    pub request_deadline: Duration,
    /// Apply the migrations to the store (off: a store this build's schema is not on).
    pub migrate: bool,
    /// One more write every this long, and the burst, per client IP.
    pub rate_limit: Option<(Duration, u32)>,
    pub trusted_proxies: &'static [&'static str],
    pub cors_allowed_origins: &'static [&'static str],
    /// PostgreSQL `lock_timeout`.
    pub lock_timeout_ms: u32,
    /// PostgreSQL `statement_timeout`.
    pub statement_timeout_ms: u32,
    /// Whether webhooks may reach loopback receivers (the tests' own).
    pub webhook_allow_private_networks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admin_token: Some(ADMIN_TOKEN),
            batch_max: 256,
            max_tickets_per_customer: None,
            // Long enough that a test holding locks never meets it by accident.
            request_deadline: Duration::from_secs(30),
            migrate: true,
            rate_limit: None,
            trusted_proxies: &[],
            cors_allowed_origins: &[],
            lock_timeout_ms: PoolSettings::DEFAULT_LOCK_TIMEOUT_MS,
            statement_timeout_ms: PoolSettings::DEFAULT_STATEMENT_TIMEOUT_MS,
            webhook_allow_private_networks: true,
        }
    }
}

/// A store of the test's own, removed when the test ends.
pub enum Data {
    Postgres(TestDatabase),
    Sqlite(PathBuf),
}

impl Drop for Data {
    fn drop(&mut self) {
        if let Self::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: awc::Client,
    pub clock: Arc<FixedClock>,
    pub data: Data,
}

/// A JSON answer: status, content type, the headers tests look at, and the parsed body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub raw: String,
    pub allow: Option<String>,
    pub replayed: Option<String>,
    pub retry_after: Option<String>,
    pub headers: header::HeaderMap,
}

pub fn start_time() -> DateTime<Utc> {
    let now = Utc::now();
    now - TimeDelta::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000))
}

fn open(backend: Backend, settings: &Settings) -> (Data, Arc<dyn Store>) {
    let migrate = settings.migrate;
    let lock_timeout_ms = settings.lock_timeout_ms;
    let statement_timeout_ms = settings.statement_timeout_ms;
    match backend {
        Backend::Postgres => {
            let db = if migrate {
                TestDatabase::create(MIGRATIONS_DIR, &|url| {
                    migrate_url(url).map(drop).map_err(|e| e.to_string())
                })
            } else {
                TestDatabase::empty()
            };
            let settings = PoolSettings {
                max_size: 8,
                checkout_timeout: Duration::from_secs(5),
                lock_timeout_ms,
                statement_timeout_ms,
                ..PoolSettings::default()
            };
            let store = Arc::new(PgStore::connect(db.url(), settings).unwrap());
            (Data::Postgres(db), store)
        }
        Backend::Sqlite => {
            let dir = std::env::temp_dir()
                .join(format!("ticketing-api-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let store = SqliteStore::open(
                SqliteLocation::File(dir.join("tickets.db")),
                8,
                Duration::from_secs(5),
            )
            .unwrap();
            if migrate {
                store.migrate().unwrap();
            }
            (Data::Sqlite(dir), Arc::new(store))
        }
    }
}

impl TestApp {
    pub fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Settings::default())
    }

    /// Starts the app on port 0, on a fresh store, with a clock the test moves by hand.
    pub fn spawn_with(backend: Backend, settings: Settings) -> Self {
        api::install_metrics_recorder();
        let (data, store) = open(backend, &settings);
        let clock = Arc::new(FixedClock::at(start_time()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let policy = Policy {
            max_tickets_per_customer: settings.max_tickets_per_customer,
            ..Policy::with_hold_ttl(HoldTtl::from_seconds(TTL_SECONDS).unwrap())
        };
        let ticketing = Ticketing::new(store, dyn_clock, policy);
        let mut config = ApiConfig::new("127.0.0.1:0");
        config.admin_token = settings.admin_token.and_then(api::AdminToken::new);
        config.workers = Some(2);
        config.batch_max = settings.batch_max;
        config.request_deadline = settings.request_deadline;
        config.rate_limit = settings
            .rate_limit
            .map(|(interval, burst)| api::RateLimitConfig {
                interval,
                burst: burst.try_into().unwrap(),
                trusted_proxies: settings
                    .trusted_proxies
                    .iter()
                    .map(|p| p.parse().unwrap())
                    .collect(),
            });
        config.cors_allowed_origins = settings
            .cors_allowed_origins
            .iter()
            .map(|o| (*o).to_owned())
            .collect();
        config.webhooks = Some(api::deliver::DeliveryConfig {
            allow_private_networks: settings.webhook_allow_private_networks,
            schedule: domain::webhook::RetrySchedule::new(vec![Duration::from_secs(1); 3]),
            timeout: Duration::from_secs(2),
            poll: Duration::from_millis(20),
            ..api::deliver::DeliveryConfig::default()
        });
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
            data,
        }
    }

    /// The PostgreSQL database, for tests that reach under the app.
    pub fn db(&self) -> &TestDatabase {
        match &self.data {
            Data::Postgres(db) => db,
            Data::Sqlite(_) => panic!("this test needs PostgreSQL"),
        }
    }

    /// Takes the PostgreSQL database away under the running server.
    pub fn drop_database(&self) {
        let admin_url = test_support::server_url().to_owned();
        let name = self.db().name().to_owned();
        std::thread::spawn(move || {
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::PgConnection::establish(&admin_url).unwrap();
            diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .unwrap();
        })
        .join()
        .unwrap();
    }

    /// How many write requests wait in this server's queues, from its `GET /metrics` (the
    /// scrape sets the gauge from this server's own queues just before rendering it).
    pub async fn queued_writes(&self) -> usize {
        let mut res = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scrape");
        let text = String::from_utf8(res.body().await.expect("body").to_vec()).expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("batch_queue_depth{engine=\"write\"} "))
            // Prometheus renders the gauge as a float: `30`, never a fraction.
            .and_then(|v| v.trim().trim_end_matches(".0").parse::<usize>().ok())
            .unwrap_or(0)
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
        let text = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = text("content-type").unwrap_or_default();
        let allow = text("allow");
        let replayed = text("idempotent-replayed");
        let retry_after = text("retry-after");
        let headers = res.headers().clone();
        let bytes = res.body().limit(1 << 20).await.expect("read body");
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {raw:?}"));
        Answer {
            status,
            content_type,
            body,
            raw,
            allow,
            replayed,
            retry_after,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path)), Body::None).await
    }

    pub async fn post(&self, path: &str, body: Body) -> Answer {
        self.send(self.client.post(self.url(path)), body).await
    }

    /// A POST with an `Idempotency-Key`.
    pub async fn post_keyed(&self, path: &str, key: &str, body: Body) -> Answer {
        self.send(
            self.client
                .post(self.url(path))
                .insert_header(("Idempotency-Key", key)),
            body,
        )
        .await
    }

    /// A request with the operators' token.
    #[allow(clippy::unused_self)] // reads as app.admin(app.client.patch(...)) at call sites
    pub fn admin(&self, req: awc::ClientRequest) -> awc::ClientRequest {
        req.bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_event(&self, capacity: i64) -> i64 {
        let answer = self
            .send(
                self.admin(self.client.post(self.url("/api/events"))),
                Body::Json(json!({"name": "Test event", "capacity": capacity})),
            )
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["id"].as_i64().expect("event id")
    }

    pub async fn event(&self, event: i64) -> Value {
        self.get(&format!("/api/events/{event}"))
            .await
            .expect(200)
            .clone()
    }

    pub async fn reserve(&self, event: i64) -> Answer {
        self.post(&format!("/api/events/{event}/reserve"), Body::None)
            .await
    }

    pub async fn reserve_with(&self, event: i64, body: Value) -> Answer {
        self.post(&format!("/api/events/{event}/reserve"), Body::Json(body))
            .await
    }

    pub async fn purchase(&self, reservation: &str, body: Body) -> Answer {
        self.post(&format!("/api/reservations/{reservation}/purchase"), body)
            .await
    }

    pub async fn cancel(&self, reservation: &str) -> Answer {
        self.post(
            &format!("/api/reservations/{reservation}/cancel"),
            Body::None,
        )
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
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Raw(Option<&'static str>, Vec<u8>),
}

impl Answer {
    /// A header of the answer as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

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

    /// Asserts a 422 in the validation shape naming exactly these fields.
    #[track_caller]
    pub fn expect_validation(&self, fields: &[&str]) {
        let body = self.expect(422);
        assert_eq!(body["message"], "The given data was invalid.", "{self:?}");
        let mut named: Vec<&str> = body["errors"]
            .as_object()
            .unwrap_or_else(|| panic!("no errors: {self:?}"))
            .keys()
            .map(String::as_str)
            .collect();
        named.sort_unstable();
        assert_eq!(named, fields, "{self:?}");
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
