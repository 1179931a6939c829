//! Metrics in the Prometheus text format at `GET /metrics`.
//!
//! The `metrics` facade records into one process-wide recorder (the facade's design: one
//! recorder per process), installed by the first [`Application`](crate::Application) built;
//! every server of the process renders it. What is recorded, and where:
//!
//! - `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}`:
//!   every answer ([`crate::request`]); `route` is the matched pattern, never the raw path, so
//!   the series stay few whatever clients send;
//! - `ticket_outcomes_total{operation,outcome}`: what each reserve, purchase and cancel came to
//!   ([`outcome_label`]);
//! - `batch_size{engine}`, `batch_duration_seconds{engine}` and
//!   `batch_queue_depth{engine}` (set when scraped);
//! - `store_pool_connections_open`, `store_pool_connections_in_use`,
//!   `store_pool_checkout_wait_seconds`, `store_pool_checkout_timeouts_total` (by the stores);
//! - `sweeper_runs_total{result}`, `sweeper_holds_expired_total`,
//!   `sweeper_idempotency_keys_purged_total`;
//! - `store_errors_total{kind}`: failed transactions and statements, by what the client is told.

use std::sync::OnceLock;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};
use domain::{CommandOutcome, DomainError, OperationKind, StoreErrorKind};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::batching::{Failure, Outcome};
use crate::error::ApiError;
use crate::state::AppState;

/// Latency buckets, in seconds: from a cached answer to the request deadline and beyond.
const SECONDS: [f64; 16] = [
    0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
    10.0,
];
/// Batch sizes: powers of two up to the largest batch size anyone configures.
const BATCH_SIZES: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's metrics recorder now, so that what happens before the server is
/// built (the store's first connections) is counted too. Building an
/// [`Application`](crate::Application) does it otherwise.
pub fn install_recorder() {
    let _ = recorder();
}

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (by a program embedding this crate), which then receives the metrics instead.
pub(crate) fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("batch_size".into()),
                        &BATCH_SIZES,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder);
            match built {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed: GET /metrics answers 404");
                    None
                }
            }
        })
        .as_ref()
}

/// Folds recent histogram samples into their buckets; called periodically so that memory does
/// not grow between scrapes, and before each scrape.
pub(crate) fn upkeep() {
    if let Some(handle) = recorder() {
        handle.run_upkeep();
    }
}

/// `GET /metrics`: every metric of the process in the Prometheus text format (0.0.4).
pub(crate) async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let handle = recorder().ok_or(ApiError::NotFound)?;
    for (engine, queued) in [
        ("write", state.writes.queued()),
        ("event read", state.event_reads.queued()),
        ("reservation read", state.reservation_reads.queued()),
    ] {
        #[allow(clippy::cast_precision_loss)] // queues are bounded far below 2^52
        metrics::gauge!("batch_queue_depth", "engine" => engine).set(queued as f64);
    }
    handle.run_upkeep();
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(
            "text/plain; version=0.0.4; charset=utf-8"
                .parse()
                .map_err(|_| ApiError::Internal)?,
        ))
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(handle.render()))
}

/// Counts a failure of a whole transaction or statement, by the kind the client is told.
pub(crate) fn count_store_error(err: &DomainError) {
    let kind = match err {
        DomainError::Store(store) => match store.kind {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::OutcomeUnknown => "outcome_unknown",
            StoreErrorKind::Internal => "internal",
        },
        _ => "other",
    };
    metrics::counter!("store_errors_total", "kind" => kind).increment(1);
}

/// The `outcome` label of what a reserve, purchase or cancel came to.
pub(crate) fn outcome_label(
    kind: OperationKind,
    outcome: &Outcome<CommandOutcome>,
) -> &'static str {
    match outcome {
        Ok(CommandOutcome::Decided(Ok(_))) => match kind {
            OperationKind::Reserve => "reserved",
            OperationKind::Purchase => "purchased",
            OperationKind::Cancel => "canceled",
            OperationKind::Extend => "extended",
            OperationKind::Release => "released",
        },
        Ok(CommandOutcome::Decided(Err(err))) => match err {
            DomainError::SoldOut | DomainError::TypesSoldOut(_) => "sold_out",
            DomainError::HoldLifetimeExceeded => "hold_lifetime_exceeded",
            DomainError::CustomerLimitReached => "customer_limit_reached",
            DomainError::InvalidOrExpired => "expired",
            DomainError::AlreadyPurchased => "already_purchased",
            DomainError::EventNotFound | DomainError::ReservationNotFound => "not_found",
            DomainError::IdempotencyKeyReused | DomainError::IdempotencyKeyInProgress => {
                "idempotency_conflict"
            }
            DomainError::Store(_) => "failed",
            _ => "refused",
        },
        Ok(CommandOutcome::Replayed(_)) => "replayed",
        Err(Failure::Overloaded) => "rejected_overload",
        Err(Failure::OutcomeUnknown) => "outcome_unknown",
        Err(Failure::Batch(_)) => "failed",
    }
}

/// Counts what a reserve, purchase or cancel came to.
pub(crate) fn count_outcome(kind: OperationKind, outcome: &Outcome<CommandOutcome>) {
    let operation = match kind {
        OperationKind::Reserve => "reserve",
        OperationKind::Purchase => "purchase",
        OperationKind::Cancel => "cancel",
        OperationKind::Extend => "extend",
        OperationKind::Release => "release",
    };
    metrics::counter!(
        "ticket_outcomes_total",
        "operation" => operation,
        "outcome" => outcome_label(kind, outcome)
    )
    .increment(1);
}
