//! The background expiry sweep of `ticketctl serve`.

use std::time::Duration;

use actix_web::rt;
use domain::Ticketing;

/// At start and then `interval` after each sweep ends, marks past-due holds `expired` in batches of `batch`. Sweeps never
/// overlap within one server; sweeps of several servers may, which the store allows.
pub(crate) fn spawn(
    ticketing: Ticketing,
    interval: Duration,
    batch: u32,
) -> rt::task::JoinHandle<()> {
    rt::spawn(async move {
        loop {
            let t = ticketing.clone();
            match rt::task::spawn_blocking(move || t.expire_due(batch)).await {
                Ok(Ok(0)) => tracing::debug!("expiry sweep: nothing due"),
                Ok(Ok(marked)) => {
                    tracing::info!(marked, "expiry sweep marked past-due holds expired");
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "expiry sweep failed; retrying at the next tick");
                }
                Err(error) => tracing::error!(%error, "expiry sweep panicked"),
            }
            rt::time::sleep(interval).await;
        }
    })
}
