//! The background expiry sweep of `ticketctl serve`.

use std::time::Duration;

use actix_web::rt;
use domain::Ticketing;

/// While holds keep falling due, sweeps come at least this often: `GET /api/events/{id}`
/// range-scans the past-due holds, so the sweep keeps that scan short under a rush.
const BUSY_INTERVAL: Duration = Duration::from_secs(1);

/// The pause after a sweep that marked `marked` holds.
fn pause(marked: u64, interval: Duration) -> Duration {
    if marked > 0 {
        interval.min(BUSY_INTERVAL)
    } else {
        interval
    }
}

/// Marks past-due holds `expired`, in transactions of at most `batch`, at start and then
/// `interval` after each sweep ends (1 s while holds keep expiring). Sweeps never overlap
/// within one server; sweeps of several servers may, which the store allows.
pub(crate) fn spawn(
    ticketing: Ticketing,
    interval: Duration,
    batch: u32,
) -> rt::task::JoinHandle<()> {
    rt::spawn(async move {
        loop {
            let t = ticketing.clone();
            let marked = match rt::task::spawn_blocking(move || t.expire_due(batch)).await {
                Ok(Ok(report)) => {
                    metrics::counter!("sweeper_runs_total", "result" => "ok").increment(1);
                    metrics::counter!("sweeper_holds_expired_total").increment(report.holds);
                    metrics::counter!("sweeper_idempotency_keys_purged_total")
                        .increment(report.keys);
                    if report.holds > 0 || report.keys > 0 {
                        tracing::info!(
                            marked = report.holds,
                            keys_purged = report.keys,
                            "expiry sweep marked past-due holds expired"
                        );
                    }
                    report.holds
                }
                Ok(Err(error)) => {
                    metrics::counter!("sweeper_runs_total", "result" => "failed").increment(1);
                    crate::telemetry::count_store_error(&error);
                    tracing::warn!(%error, "expiry sweep failed; retrying at the next tick");
                    0
                }
                Err(error) => {
                    metrics::counter!("sweeper_runs_total", "result" => "failed").increment(1);
                    tracing::error!(%error, "expiry sweep panicked");
                    0
                }
            };
            rt::time::sleep(pause(marked, interval)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_come_every_second_while_holds_keep_expiring() {
        let minute = Duration::from_secs(60);
        assert_eq!(pause(0, minute), minute);
        assert_eq!(pause(5, minute), BUSY_INTERVAL);
        assert_eq!(
            pause(5, Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }
}
