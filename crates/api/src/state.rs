//! What every handler can reach.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use domain::{Command, CommandOutcome, Readiness, Ticketing};

use crate::batching::Batcher;
use crate::idempotency::KeysInUse;
use crate::reads::{EventReads, ReservationReads, RoundRobin, SeatReads};

/// The write pipeline: reserves, purchases and cancels, group-committed in lanes.
pub type Writes = Batcher<Command, CommandOutcome>;

/// Readiness checks, coalesced: probes that arrive together share one round trip.
pub type ReadinessChecks = Batcher<(), Readiness>;

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
    /// Reads of seat maps, coalesced.
    pub seat_reads: Arc<SeatReads>,
    /// The availability streams of this instance.
    pub streams: Arc<crate::stream::Streams>,
    /// Seat map bodies, rendered once per version.
    pub seat_bodies: Arc<crate::seats::SeatBodies>,
    /// `GET /health/ready`.
    pub readiness: Arc<ReadinessChecks>,
    /// Which read lane the next read goes to.
    pub read_lane: Arc<RoundRobin>,
    /// The idempotency keys of the requests being served here.
    pub keys_in_use: Arc<KeysInUse>,
    /// The bearer token that the operators' routes require; `None` refuses everyone.
    pub admin_token: Option<crate::AdminToken>,
    /// How long a request may take before it is answered 503.
    pub deadline: Duration,
    /// The most tickets one reserve may ask for.
    pub max_quantity: u32,
    /// How long a hold lasts, in seconds: the most an extend may ask for.
    pub ttl_seconds: u32,
    /// Set when shutdown begins: not ready any more, connections close after their answer.
    pub draining: Arc<AtomicBool>,
    /// Requests between arrival and answer, for shutdown to wait on.
    pub requests_in_flight: Arc<AtomicUsize>,
}

/// What a request that timed out is told: a read changed nothing; a write may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Read,
    Write,
}

impl AppState {
    /// Runs a use case on the blocking thread pool (the stores block on the database and must
    /// not stall the async workers), answering by the request deadline whatever the store
    /// does. A store failure is logged here, once, with its cause.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        effect: Effect,
        f: impl FnOnce() -> Result<T, domain::DomainError> + Send + 'static,
    ) -> Result<T, crate::error::ApiError> {
        use crate::error::ApiError;
        let run = actix_web::web::block(f);
        let result = match tokio::time::timeout(self.deadline, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => {
                tracing::error!("the blocking thread pool is gone");
                return Err(ApiError::Unavailable);
            }
            Err(_) => {
                return Err(match effect {
                    Effect::Read => ApiError::Unavailable,
                    Effect::Write => ApiError::OutcomeUnknown,
                })
            }
        };
        if let Err(err @ domain::DomainError::Store(store)) = &result {
            crate::telemetry::count_store_error(err);
            tracing::error!(kind = ?store.kind, error = %store.message, "store failure");
        }
        Ok(result?)
    }
}
