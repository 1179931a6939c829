//! What a store's connection pool reports, for `GET /metrics`:
//!
//! - `store_pool_connections_open{store}`: connections the pool holds;
//! - `store_pool_connections_in_use{store}`: connections checked out now;
//! - `store_pool_checkout_wait_seconds{store}`: how long each checkout waited for a connection
//!   (a rising tail means the pool, not the database, is the bottleneck);
//! - `store_pool_checkout_timeouts_total{store}`: checkouts that gave up (answered 503).
//!
//! Both adapters pool with r2d2; this is its event handler, written once.

use r2d2::event::{AcquireEvent, CheckinEvent, CheckoutEvent, ReleaseEvent, TimeoutEvent};
use r2d2::HandleEvent;

/// Records a pool's events as metrics labelled with the store's name.
#[derive(Debug, Clone, Copy)]
pub struct PoolMetrics {
    store: &'static str,
}

impl PoolMetrics {
    /// Metrics for the pool of `store` (`postgres`, `sqlite`).
    pub fn new(store: &'static str) -> Self {
        Self { store }
    }
}

impl HandleEvent for PoolMetrics {
    fn handle_acquire(&self, _: AcquireEvent) {
        metrics::gauge!("store_pool_connections_open", "store" => self.store).increment(1.0);
    }

    fn handle_release(&self, _: ReleaseEvent) {
        metrics::gauge!("store_pool_connections_open", "store" => self.store).decrement(1.0);
    }

    fn handle_checkout(&self, event: CheckoutEvent) {
        metrics::histogram!("store_pool_checkout_wait_seconds", "store" => self.store)
            .record(event.duration().as_secs_f64());
        metrics::gauge!("store_pool_connections_in_use", "store" => self.store).increment(1.0);
    }

    fn handle_checkin(&self, _: CheckinEvent) {
        metrics::gauge!("store_pool_connections_in_use", "store" => self.store).decrement(1.0);
    }

    fn handle_timeout(&self, _: TimeoutEvent) {
        metrics::counter!("store_pool_checkout_timeouts_total", "store" => self.store).increment(1);
    }
}
