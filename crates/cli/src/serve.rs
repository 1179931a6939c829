//! `ticketctl serve`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use api::{ApiConfig, Application, RateLimitConfig};
use domain::{HoldTtl, Policy};
use ipnet::IpNet;

use crate::args::ServeArgs;
use crate::error::CliError;
use crate::store::Store;

pub fn run(args: &ServeArgs, database_url: &str) -> Result<(), CliError> {
    let ttl = HoldTtl::from_seconds(args.reservation_ttl_seconds)
        .ok_or_else(|| CliError::Config("--reservation-ttl-seconds is out of range".into()))?;
    // Settings first: a mistake fails at once, before any connection is made.
    let rate_limit = rate_limit(args)?;
    let cors_allowed_origins = cors_origins(&args.cors_allowed_origins)?;
    // Before the store opens, so its first connections are counted.
    api::install_metrics_recorder();
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
        metrics_bind: args.metrics_bind.clone().filter(|b| !b.is_empty()),
        admin_token: args.admin_token.clone().and_then(api::AdminToken::new),
        expire_interval: (args.expire_interval_seconds > 0)
            .then(|| Duration::from_secs(args.expire_interval_seconds)),
        expire_batch: args.expire_batch_size,
        workers: args.workers.map(usize::from),
        batch_max: usize::try_from(args.batch_max).unwrap_or(1),
        write_lanes: usize::try_from(args.write_lanes).unwrap_or(1),
        read_lanes: usize::try_from(args.read_lanes).unwrap_or(1),
        queue_max: usize::try_from(args.queue_max).unwrap_or(1),
        request_deadline: Duration::from_millis(args.request_deadline_ms),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        rate_limit,
        cors_allowed_origins,
        max_streams: usize::try_from(args.max_streams).unwrap_or(usize::MAX),
        webhooks: if args.webhook_delivery {
            Some(api::deliver::DeliveryConfig {
                schedule: domain::webhook::RetrySchedule::parse(&args.webhook_retry_schedule)
                    .map_err(|e| CliError::Config(format!("WEBHOOK_RETRY_SCHEDULE: {e}")))?,
                allow_private_networks: args.webhook_allow_private_networks,
                timeout: Duration::from_secs(args.webhook_timeout_seconds),
                ..api::deliver::DeliveryConfig::default()
            })
        } else {
            None
        },
    };
    let max_hold = match args.max_hold_seconds {
        Some(seconds) if seconds < args.reservation_ttl_seconds => {
            return Err(CliError::Config(
                "--max-hold-seconds must be at least --reservation-ttl-seconds".into(),
            ))
        }
        Some(seconds) => chrono::TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)),
        None => Policy::with_hold_ttl(ttl).max_hold,
    };
    let policy = Policy {
        hold_ttl: ttl,
        max_tickets_per_reservation: args.max_tickets_per_reservation,
        max_tickets_per_customer: args.max_tickets_per_customer,
        idempotency_ttl: chrono::TimeDelta::seconds(
            i64::try_from(args.idempotency_ttl_seconds).unwrap_or(i64::MAX),
        ),
        max_hold,
        outbox_retention: chrono::TimeDelta::hours(i64::from(args.outbox_retention_hours)),
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
            metrics = %app.metrics_port().map_or_else(
                || "GET /metrics on the API port".to_owned(),
                |p| format!("GET /metrics on port {p}")
            ),
            "listening"
        );
        app.run_until_stopped().await.map_err(CliError::Server)
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// The rate limit the flags ask for, if any.
fn rate_limit(args: &ServeArgs) -> Result<Option<RateLimitConfig>, CliError> {
    let Some(per_second) = NonZeroU32::new(args.rate_limit_per_second) else {
        return Ok(None);
    };
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    CliError::Config(format!(
                        "TRUSTED_PROXIES: {p:?} is neither an IP address nor a CIDR range"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(RateLimitConfig {
        interval: Duration::from_secs(1) / per_second.get(),
        burst: NonZeroU32::new(args.rate_limit_burst).unwrap_or(per_second),
        trusted_proxies,
    }))
}

/// The CORS origins, checked: a scheme and a host, nothing else (`*` is refused: answers carry
/// per-client state).
fn cors_origins(origins: &[String]) -> Result<Vec<String>, CliError> {
    origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let url = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.username().is_empty()
            });
            match url {
                Some(_) => Ok(origin.to_owned()),
                None => Err(CliError::Config(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin like https://shop.example"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_scheme_and_host_only() {
        let ok = cors_origins(&[
            "https://shop.example/".into(),
            " http://localhost:3000".into(),
        ]);
        assert_eq!(
            ok.ok(),
            Some(vec![
                "https://shop.example".to_owned(),
                "http://localhost:3000".to_owned()
            ])
        );
        for bad in ["*", "shop.example", "https://shop.example/path", "ftp://x"] {
            assert!(cors_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
