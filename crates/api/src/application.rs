//! The server: built once, run until stopped.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use domain::Ticketing;

use crate::access_log::log_request;
use crate::error::json_error_envelope;
use crate::group_commit::{purchase_group, reserve_group};
use crate::routes::configure;
use crate::state::AppState;
use crate::sweeper;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen, `host:port`; port 0 picks a free one (see [`Application::port`]).
    pub bind: String,
    /// The bearer token of `POST /api/events`; `None` refuses everyone.
    pub admin_token: Option<String>,
    /// How often the background sweep marks past-due holds expired; `None` turns it off.
    pub expire_interval: Option<Duration>,
    /// How many holds one sweep transaction marks at most.
    pub expire_batch: u32,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Most reserve (per event) or purchase requests committed in one transaction (1: no
    /// batching).
    pub batch_max: usize,
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

impl Application {
    /// Binds the listener and builds the server; nothing is served until
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// The bind error (address taken, bad address, no permission).
    pub fn build(config: ApiConfig, ticketing: Ticketing) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&config.bind)?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            ticketing: ticketing.clone(),
            reservations: reserve_group(ticketing.clone(), config.batch_max),
            purchases: purchase_group(ticketing.clone(), config.batch_max),
            admin_token: config.admin_token.clone(),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(ErrorHandlers::new().default_handler(json_error_envelope))
                .wrap(from_fn(log_request))
                .configure(configure(state.clone()))
        })
        // The hold timeout, not the socket, should end slow requests; but do not let a
        // stalled client keep a worker forever.
        .client_request_timeout(Duration::from_secs(10))
        .listen(listener)?;
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
