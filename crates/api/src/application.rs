//! The server: built once, run until stopped.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use actix_cors::Cors;
use actix_rt::{Arbiter, ArbiterHandle};
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use domain::{Command, CommandOutcome, DomainError, Ticketing};
use ipnet::IpNet;
use tracing_actix_web::TracingLogger;

use crate::auth::AdminToken;
use crate::batching::{Batcher, Limits};
use crate::commands::HttpAnswers;
use crate::drain;
use crate::error::{json_error_envelope, ApiError};
use crate::openapi::ApiDocs;
use crate::rate_limit::{self, RateLimit};
use crate::reads;
use crate::request::{self, RequestSpan, REQUEST_ID};
use crate::routes::configure;
use crate::state::{AppState, ReadinessChecks, Writes};
use crate::{sweeper, telemetry};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen, `host:port`; port 0 picks a free one (see [`Application::port`]).
    pub bind: String,
    /// Where `GET /metrics` is served instead of `bind` (`None`: on `bind`).
    pub metrics_bind: Option<String>,
    /// The bearer token of the operators' routes; `None` refuses everyone.
    pub admin_token: Option<AdminToken>,
    /// How often the background sweep marks past-due holds expired; `None` turns it off.
    pub expire_interval: Option<Duration>,
    /// How many holds one sweep transaction marks at most.
    pub expire_batch: u32,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Most requests committed in one transaction (1: no batching).
    pub batch_max: usize,
    /// Write transactions in flight at most (lanes of the write pipeline).
    pub write_lanes: usize,
    /// Read statements in flight at most, per kind of read (lanes of read coalescing).
    pub read_lanes: usize,
    /// Requests waiting per lane at most; more are answered 503 at once.
    pub queue_max: usize,
    /// How long a request may take before it is answered 503.
    pub request_deadline: Duration,
    /// After SIGTERM or SIGINT, how long in-flight requests may take before their connections
    /// are closed.
    pub shutdown_grace: Duration,
    /// Open client connections at most, over all workers; more wait in the kernel's queue.
    pub max_connections: usize,
    /// Writes per second per client IP (`None`: no limit).
    pub rate_limit: Option<RateLimitConfig>,
    /// Origins whose browser scripts may call the API (CORS); empty: none but the API's own.
    pub cors_allowed_origins: Vec<String>,
    /// Availability streams open at most; more are answered 503.
    pub max_streams: usize,
    /// How webhooks are delivered; `None`: this server delivers none (others may).
    pub webhooks: Option<crate::deliver::DeliveryConfig>,
}

/// The per-client limit on writes.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// One more request allowed every this long, sustained (a second / the rate).
    pub interval: Duration,
    /// Requests at once, after a quiet spell.
    pub burst: NonZeroU32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
}

impl ApiConfig {
    /// The defaults, listening on `bind`.
    pub fn new(bind: impl Into<String>) -> Self {
        Self {
            bind: bind.into(),
            metrics_bind: None,
            admin_token: None,
            expire_interval: None,
            expire_batch: domain::DEFAULT_EXPIRE_BATCH,
            workers: None,
            batch_max: 256,
            write_lanes: 1,
            read_lanes: 1,
            queue_max: 4_096,
            request_deadline: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 16_384,
            rate_limit: None,
            cors_allowed_origins: Vec::new(),
            max_streams: 10_000,
            webhooks: Some(crate::deliver::DeliveryConfig::default()),
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
    ticketing: Ticketing,
    config: ApiConfig,
    batches: Arbiter,
    draining: Arc<AtomicBool>,
    requests_in_flight: Arc<AtomicUsize>,
    rate_limit: Option<web::Data<RateLimit>>,
    streams: Arc<crate::stream::Streams>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The write pipeline: every batch is one `Ticketing::execute` (a failed one is logged once,
/// by the engine).
fn writes(ticketing: Ticketing, config: &ApiConfig, runtime: ArbiterHandle) -> Arc<Writes> {
    let limits = Limits {
        lanes: config.write_lanes,
        max_batch: config.batch_max,
        max_queue: config.queue_max,
    };
    Batcher::on_runtime(
        "write",
        limits,
        Some(runtime),
        move |commands: Vec<Command>| -> Result<Vec<CommandOutcome>, DomainError> {
            ticketing.execute(&commands, &HttpAnswers)
        },
    )
}

/// Read batches: as many ids per statement as write batches hold requests.
fn read_limits(config: &ApiConfig) -> Limits {
    Limits {
        lanes: config.read_lanes,
        max_batch: config.batch_max,
        max_queue: config.queue_max,
    }
}

/// Readiness probes: one lane, every waiting probe answered by one check.
fn readiness(
    ticketing: Ticketing,
    config: &ApiConfig,
    runtime: ArbiterHandle,
) -> Arc<ReadinessChecks> {
    let limits = Limits {
        lanes: 1,
        max_batch: config.queue_max,
        max_queue: config.queue_max,
    };
    Batcher::on_runtime("readiness", limits, Some(runtime), move |probes: Vec<()>| {
        let readiness = ticketing.readiness()?;
        Ok(vec![readiness; probes.len()])
    })
}

/// CORS for the configured origins; `None` when there are none (browsers then keep scripts of
/// other origins away from the answers).
fn cors(origins: &[String]) -> Option<Cors> {
    if origins.is_empty() {
        return None;
    }
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    Some(
        cors.allowed_methods(["GET", "POST", "PATCH"])
            .allowed_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static("idempotency-key"),
                REQUEST_ID,
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::LOCATION,
                REQUEST_ID,
                header::HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(3_600)
            // Others get answers without CORS headers, which their browsers hide from
            // scripts; non-browser clients never send Origin anyway.
            .block_on_origin_mismatch(false),
    )
}

/// Headers on every answer: never sniffed as another type, never cached (ticket counts and
/// holds change by the millisecond; a cached answer would be a stale one).
fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CACHE_CONTROL, "no-store"))
}

impl Application {
    /// Binds the listeners and builds the server; nothing is served until
    /// [`Application::run_until_stopped`]. Must be called inside an actix system (as
    /// `#[actix_web::main]` and `#[actix_web::test]` provide).
    ///
    /// # Errors
    /// The bind error (address taken, bad address, no permission).
    pub fn build(config: ApiConfig, ticketing: Ticketing) -> std::io::Result<Self> {
        let max_quantity = ticketing.policy().max_tickets_per_reservation;
        // Installed before the first request, so the first request is counted.
        let _ = telemetry::recorder();
        let batches = Arbiter::new();
        let state = web::Data::new(app_state(&config, &ticketing, &batches));
        let draining = Arc::clone(&state.draining);
        let streams = Arc::clone(&state.streams);
        let requests_in_flight = Arc::clone(&state.requests_in_flight);
        let rate_limit = config.rate_limit.as_ref().map(|limit| {
            web::Data::new(RateLimit::new(
                limit.interval,
                limit.burst,
                limit.trusted_proxies.clone(),
            ))
        });
        let docs = web::Data::new(ApiDocs::new(max_quantity, state.ttl_seconds));
        let workers = config
            .workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            })
            .max(1);
        let metrics_here = config.metrics_bind.is_none();
        let app_state = state.clone();
        let app_rate_limit = rate_limit.clone();
        let origins = config.cors_allowed_origins.clone();
        let server = HttpServer::new(move || {
            let cors = cors(&origins);
            App::new()
                .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
                .wrap(from_fn(rate_limit::limit_writes))
                .wrap(ErrorHandlers::new().default_handler(json_error_envelope))
                .wrap(from_fn(drain::close_when_draining))
                .wrap(default_headers())
                .wrap(from_fn(request::echo_request_id))
                .wrap(TracingLogger::<RequestSpan>::new())
                .configure(|cfg| {
                    if let Some(limit) = &app_rate_limit {
                        cfg.app_data(limit.clone());
                    }
                    if metrics_here {
                        cfg.route("/metrics", web::get().to(telemetry::scrape));
                    }
                })
                .configure(configure(app_state.clone(), docs.clone()))
        })
        .workers(workers)
        // The request deadline, not the socket, should end slow requests; but do not let a
        // stalled client keep a worker forever.
        .client_request_timeout(Duration::from_secs(10))
        .max_connections((config.max_connections / workers).max(1))
        // Shutdown waits for in-flight requests itself (`run_until`); by the time the server is
        // told to stop, only idle connections are left to close.
        .shutdown_timeout(1)
        // This server handles SIGTERM and SIGINT itself (see `run_until_stopped`).
        .disable_signals()
        // Room for a burst of new connections (an on-sale opening) in the kernel's accept
        // queue; the standard library's listeners keep only 128. The kernel caps it at
        // net.core.somaxconn.
        .backlog(8_192)
        .bind(&config.bind)?;
        let port = first_port(&server.addrs())?;
        let (metrics_server, metrics_port) = match &config.metrics_bind {
            Some(bind) => {
                let (server, port) = metrics_server(bind, state.clone())?;
                (Some(server), Some(port))
            }
            None => (None, None),
        };
        Ok(Self {
            port,
            metrics_port,
            server: server.run(),
            metrics_server,
            ticketing,
            config,
            batches,
            draining,
            requests_in_flight,
            rate_limit,
            streams,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `GET /metrics` when it has its own listener.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until the process receives SIGINT or SIGTERM, then shuts down gracefully: stops
    /// accepting connections, answers `GET /health/ready` 503, closes each connection after
    /// its answer, finishes in-flight requests and their batches (for at most the shutdown
    /// grace), stops the sweeper.
    ///
    /// # Errors
    /// An I/O error of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// As [`Application::run_until_stopped`], but shuts down when `stop` completes.
    ///
    /// # Errors
    /// An I/O error of the server.
    pub async fn run_until(self, stop: impl Future<Output = ()> + 'static) -> std::io::Result<()> {
        let sweeper = self
            .config
            .expire_interval
            .map(|every| sweeper::spawn(self.ticketing.clone(), every, self.config.expire_batch));
        let upkeep = actix_web::rt::spawn(upkeep(self.rate_limit.clone()));
        let dispatcher = self.config.webhooks.clone().map(|config| {
            actix_web::rt::spawn(crate::deliver::run(
                self.ticketing.clone(),
                config,
                Arc::clone(&self.draining),
            ))
        });
        let streams = actix_web::rt::spawn(crate::stream::poll(
            Arc::clone(&self.streams),
            self.ticketing.clone(),
            Arc::clone(&self.draining),
        ));
        let handle = self.server.handle();
        let metrics_handle = self.metrics_server.as_ref().map(Server::handle);
        let draining = Arc::clone(&self.draining);
        let in_flight = Arc::clone(&self.requests_in_flight);
        let grace = self.config.shutdown_grace;
        let stopper = actix_web::rt::spawn(async move {
            stop.await;
            tracing::info!(
                grace_seconds = grace.as_secs(),
                in_flight = in_flight.load(Ordering::Acquire),
                "shutting down: finishing in-flight requests"
            );
            draining.store(true, Ordering::Release);
            handle.pause().await;
            // Until no request has been in flight for a moment (one that was on its way when
            // the last one ended gets in), or the grace is over.
            let deadline = Instant::now() + grace;
            let mut quiet_since = None;
            while Instant::now() < deadline {
                if in_flight.load(Ordering::Acquire) > 0 {
                    quiet_since = None;
                } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= QUIET {
                    break;
                }
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
            let left = in_flight.load(Ordering::Acquire);
            if left > 0 {
                tracing::warn!(requests = left, "shutdown grace over: cutting requests off");
            }
            if let Some(metrics) = metrics_handle {
                metrics.stop(true).await;
            }
            handle.stop(true).await;
        });
        let result = match self.metrics_server {
            Some(metrics) => {
                let (served, _) = futures_util::future::join(self.server, metrics).await;
                served
            }
            None => self.server.await,
        };
        stopper.abort();
        upkeep.abort();
        streams.abort();
        if let Some(dispatcher) = dispatcher {
            dispatcher.abort();
        }
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        // Every request has its answer by now: the batch runtime has nothing left to do.
        self.batches.stop();
        result
    }
}

/// What every handler reaches: the use cases behind their engines, on the `batches` runtime.
fn app_state(config: &ApiConfig, ticketing: &Ticketing, batches: &Arbiter) -> AppState {
    let max_quantity = ticketing.policy().max_tickets_per_reservation;
    AppState {
        ticketing: ticketing.clone(),
        writes: writes(ticketing.clone(), config, batches.handle()),
        event_reads: reads::event_reads(ticketing.clone(), read_limits(config), batches.handle()),
        reservation_reads: reads::reservation_reads(
            ticketing.clone(),
            read_limits(config),
            batches.handle(),
        ),
        seat_reads: reads::seat_reads(ticketing.clone(), read_limits(config), batches.handle()),
        streams: Arc::new(crate::stream::Streams::new(config.max_streams)),
        seat_bodies: Arc::default(),
        readiness: readiness(ticketing.clone(), config, batches.handle()),
        read_lane: Arc::default(),
        keys_in_use: Arc::default(),
        admin_token: config.admin_token.clone(),
        deadline: config.request_deadline,
        max_quantity,
        ttl_seconds: u32::try_from(ticketing.policy().hold_ttl.get().num_seconds())
            .unwrap_or(u32::MAX),
        draining: Arc::default(),
        requests_in_flight: Arc::default(),
    }
}

/// A listener of its own for `GET /metrics` (`METRICS_BIND`), off the public port.
fn metrics_server(bind: &str, state: web::Data<AppState>) -> std::io::Result<(Server, u16)> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(telemetry::scrape))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound)
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(bind)?;
    let port = first_port(&server.addrs())?;
    Ok((server.run(), port))
}

fn first_port(addrs: &[std::net::SocketAddr]) -> std::io::Result<u16> {
    addrs
        .first()
        .map(std::net::SocketAddr::port)
        .ok_or_else(|| std::io::Error::other("the server bound no address"))
}

/// How long shutdown waits with no request in flight before closing idle connections.
const QUIET: Duration = Duration::from_millis(100);

/// SIGTERM (what service managers and orchestrators send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = actix_web::rt::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = actix_web::rt::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_web::rt::signal::ctrl_c().await;
    }
}

/// Periodic housekeeping: histogram samples folded into buckets (memory stays flat between
/// scrapes), idle clients dropped from the rate limiter.
async fn upkeep(rate_limit: Option<web::Data<RateLimit>>) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        telemetry::upkeep();
        if let Some(limit) = &rate_limit {
            limit.forget_idle_clients();
        }
    }
}
