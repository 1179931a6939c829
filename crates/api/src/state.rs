//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use domain::{Command, CommandOutcome, Ticketing};

use crate::group_commit::GroupCommit;
use crate::idempotency::InFlight;
use crate::reads::{EventReads, ReservationReads, RoundRobin};

/// The write pipeline: reserves, purchases and cancels, group-committed in lanes.
pub type Writes = GroupCommit<Command, CommandOutcome>;

/// The shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub ticketing: Ticketing,
    /// Reserves, purchases and cancels go through group commit.
    pub writes: Arc<Writes>,
    /// Reads of events, coalesced.
    pub event_reads: Arc<EventReads>,
    /// Reads of reservations, coalesced.
    pub reservation_reads: Arc<ReservationReads>,
    /// Which read lane the next read goes to.
    pub read_lane: Arc<RoundRobin>,
    /// The idempotency keys of the requests being served here.
    pub in_flight: Arc<InFlight>,
    /// The bearer token that the operators' routes require; `None` refuses everyone.
    pub admin_token: Option<String>,
    /// How long a request may take before it is answered 503.
    pub deadline: Duration,
    /// The most tickets one reserve may ask for.
    pub max_quantity: u32,
}

/// Runs a use case on the blocking thread pool: the stores block on the database and must not
/// stall the async workers. A store failure is logged here, once, with its cause.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, domain::DomainError> + Send + 'static,
) -> Result<Result<T, domain::DomainError>, crate::error::ApiError> {
    let result = actix_web::web::block(f).await.map_err(|_| {
        tracing::error!("the blocking thread pool is gone");
        crate::error::ApiError::Unavailable
    })?;
    if let Err(domain::DomainError::Store(err)) = &result {
        tracing::error!(kind = ?err.kind, error = %err.message, "store failure");
    }
    Ok(result)
}
