//! The server: built once, run until stopped.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use domain::{Command, CommandOutcome, DomainError, Ticketing};

use crate::access_log::log_request;
use crate::commands::HttpAnswers;
use crate::error::json_error_envelope;
use crate::group_commit::{GroupCommit, Limits};
use crate::openapi::ApiDocs;
use crate::reads;
use crate::routes::configure;
use crate::state::{AppState, Writes};
use crate::sweeper;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen, `host:port`; port 0 picks a free one (see [`Application::port`]).
    pub bind: String,
    /// The bearer token of the operators' routes; `None` refuses everyone.
    pub admin_token: Option<String>,
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
}

impl ApiConfig {
    /// The defaults, listening on `bind`.
    pub fn new(bind: impl Into<String>) -> Self {
        Self {
            bind: bind.into(),
            admin_token: None,
            expire_interval: None,
            expire_batch: domain::DEFAULT_EXPIRE_BATCH,
            workers: None,
            batch_max: 256,
            write_lanes: 1,
            read_lanes: 1,
            queue_max: 4_096,
            request_deadline: Duration::from_secs(2),
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    ticketing: Ticketing,
    config: ApiConfig,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The write pipeline: every batch is one `Ticketing::execute`; a failed one is logged here,
/// once, with its cause.
fn writes(ticketing: Ticketing, config: &ApiConfig) -> Arc<Writes> {
    let limits = Limits {
        lanes: config.write_lanes,
        max_batch: config.batch_max,
        max_queue: config.queue_max,
    };
    GroupCommit::new(
        "write",
        limits,
        move |commands: Vec<Command>| -> Result<Vec<CommandOutcome>, DomainError> {
            let count = commands.len();
            ticketing
                .execute(&commands, &HttpAnswers)
                .inspect_err(|err| {
                    tracing::error!(requests = count, error = %err, "write batch failed");
                })
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

impl Application {
    /// Binds the listener and builds the server; nothing is served until
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// The bind error (address taken, bad address, no permission).
    pub fn build(config: ApiConfig, ticketing: Ticketing) -> std::io::Result<Self> {
        let max_quantity = ticketing.policy().max_tickets_per_reservation;
        let state = web::Data::new(AppState {
            ticketing: ticketing.clone(),
            writes: writes(ticketing.clone(), &config),
            event_reads: reads::event_reads(ticketing.clone(), read_limits(&config)),
            reservation_reads: reads::reservation_reads(ticketing.clone(), read_limits(&config)),
            read_lane: Arc::default(),
            in_flight: Arc::default(),
            admin_token: config.admin_token.clone(),
            deadline: config.request_deadline,
            max_quantity,
        });
        let docs = web::Data::new(ApiDocs::new(max_quantity));
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(ErrorHandlers::new().default_handler(json_error_envelope))
                .wrap(from_fn(log_request))
                .configure(configure(state.clone(), docs.clone()))
        })
        // The request deadline, not the socket, should end slow requests; but do not let a
        // stalled client keep a worker forever.
        .client_request_timeout(Duration::from_secs(10))
        // Room for a burst of new connections (an on-sale opening) in the kernel's accept
        // queue; the standard library's listeners keep only 128. The kernel caps it at
        // net.core.somaxconn.
        .backlog(8_192)
        .bind(&config.bind)?;
        let port = server
            .addrs()
            .first()
            .map(std::net::SocketAddr::port)
            .ok_or_else(|| std::io::Error::other("the server bound no address"))?;
        if let Some(workers) = config.workers {
            server = server.workers(workers.max(1));
        }
        Ok(Self {
            port,
            server: server.run(),
            ticketing,
            config,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process receives SIGINT or SIGTERM, then drains in-flight requests.
    ///
    /// # Errors
    /// An I/O error of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = self
            .config
            .expire_interval
            .map(|every| sweeper::spawn(self.ticketing.clone(), every, self.config.expire_batch));
        let result = self.server.await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        result
    }
}
