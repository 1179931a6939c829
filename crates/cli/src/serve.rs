//! `ticketctl serve`.

use std::time::Duration;

use api::{ApiConfig, Application};
use domain::{HoldTtl, Policy};

use crate::args::ServeArgs;
use crate::error::CliError;
use crate::store::Store;

pub fn run(args: &ServeArgs, database_url: &str) -> Result<(), CliError> {
    let ttl = HoldTtl::from_seconds(args.reservation_ttl_seconds)
        .ok_or_else(|| CliError::Config("--reservation-ttl-seconds is out of range".into()))?;
    let store = Store::open(database_url, Some(&args.pool))?;
    tracing::info!(
        store = store.describe(),
        pool_size = store.max_connections(),
        "store opened"
    );
    if args.no_migrate {
        tracing::info!("migrations skipped (--no-migrate)");
    } else {
        let applied = store.migrate()?;
        tracing::info!(applied = applied.len(), "migrations up to date");
    }
    if args.admin_token.is_none() {
        tracing::warn!("no ADMIN_TOKEN: POST /api/events answers 401 to everyone");
    }
    let config = ApiConfig {
        bind: args.bind.clone(),
        admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
        expire_interval: (args.expire_interval_seconds > 0)
            .then(|| Duration::from_secs(args.expire_interval_seconds)),
        expire_batch: args.expire_batch_size,
        workers: args.workers.map(usize::from),
        batch_max: usize::try_from(args.batch_max).unwrap_or(1),
        write_lanes: usize::try_from(args.write_lanes).unwrap_or(1),
        read_lanes: usize::try_from(args.read_lanes).unwrap_or(1),
        queue_max: usize::try_from(args.queue_max).unwrap_or(1),
        request_deadline: Duration::from_millis(args.request_deadline_ms),
    };
    let policy = Policy {
        hold_ttl: ttl,
        max_tickets_per_reservation: args.max_tickets_per_reservation,
        max_tickets_per_customer: args.max_tickets_per_customer,
        idempotency_ttl: chrono::TimeDelta::seconds(
            i64::try_from(args.idempotency_ttl_seconds).unwrap_or(i64::MAX),
        ),
    };
    let ticketing = store.ticketing(policy);
    actix_web::rt::System::new().block_on(async move {
        let app =
            Application::build(config.clone(), ticketing).map_err(|source| CliError::Bind {
                addr: config.bind.clone(),
                source,
            })?;
        let host = config
            .bind
            .rsplit_once(':')
            .map_or(config.bind.as_str(), |(h, _)| h);
        tracing::info!(
            url = %format!("http://{host}:{}", app.port()),
            hold_ttl_seconds = args.reservation_ttl_seconds,
            expire_interval_seconds = args.expire_interval_seconds,
            batch_max = args.batch_max,
            write_lanes = args.write_lanes,
            max_tickets_per_reservation = args.max_tickets_per_reservation,
            max_tickets_per_customer = ?args.max_tickets_per_customer,
            "listening"
        );
        app.run_until_stopped().await.map_err(CliError::Server)
    })?;
    tracing::info!("stopped");
    Ok(())
}
