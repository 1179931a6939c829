//! Coalesced reads: a `GET` of an event or a reservation that arrives while a read of its lane
//! is in flight waits for the next one, and one statement answers every read waiting then.
//!
//! Each answer still reflects everything committed before its request arrived: the statement
//! that serves a request starts after the request was queued (a request never joins a read
//! already running), and it reads the committed state at its start. Nothing is cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_rt::ArbiterHandle;
use domain::{
    DomainError, EventId, EventSummary, Reservation, ReservationId, SeatMapView, Ticketing,
};

use crate::batching::{Batcher, Limits};

/// Reads of events by id.
pub type EventReads = Batcher<EventId, Option<EventSummary>>;
/// Reads of reservations by id.
pub type ReservationReads = Batcher<ReservationId, Option<Reservation>>;
/// Reads of seat maps by event.
pub type SeatReads = Batcher<EventId, Option<SeatMapView>>;

/// The ids of a batch without repeats, and each request's answer from what was found.
fn answer_each<Id, Found>(
    ids: &[Id],
    found: Vec<Found>,
    id_of: impl Fn(&Found) -> Id,
) -> Vec<Option<Found>>
where
    Id: Eq + std::hash::Hash + Copy,
    Found: Clone,
{
    let by_id: HashMap<Id, Found> = found.into_iter().map(|f| (id_of(&f), f)).collect();
    ids.iter().map(|id| by_id.get(id).cloned()).collect()
}

fn unique<Id: Ord + Copy>(ids: &[Id]) -> Vec<Id> {
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    unique
}

/// Event reads, one statement per batch.
pub fn event_reads(
    ticketing: Ticketing,
    limits: Limits,
    runtime: ArbiterHandle,
) -> Arc<EventReads> {
    Batcher::on_runtime(
        "event read",
        limits,
        Some(runtime),
        move |ids: Vec<EventId>| -> Result<Vec<Option<EventSummary>>, DomainError> {
            let found = ticketing.event_summaries(&unique(&ids))?;
            Ok(answer_each(&ids, found, |s| s.event.id))
        },
    )
}

/// Seat map reads: one statement asks for the seat versions of every event of the batch.
pub fn seat_reads(ticketing: Ticketing, limits: Limits, runtime: ArbiterHandle) -> Arc<SeatReads> {
    Batcher::on_runtime(
        "seat map read",
        limits,
        Some(runtime),
        move |ids: Vec<EventId>| -> Result<Vec<Option<SeatMapView>>, DomainError> {
            let found = ticketing.seat_maps(&unique(&ids))?;
            Ok(answer_each(&ids, found, |v| v.event))
        },
    )
}

/// Reservation reads, one statement per batch.
pub fn reservation_reads(
    ticketing: Ticketing,
    limits: Limits,
    runtime: ArbiterHandle,
) -> Arc<ReservationReads> {
    Batcher::on_runtime(
        "reservation read",
        limits,
        Some(runtime),
        move |ids: Vec<ReservationId>| -> Result<Vec<Option<Reservation>>, DomainError> {
            let found = ticketing.reservations(&unique(&ids))?;
            Ok(answer_each(&ids, found, |r| r.id))
        },
    )
}

/// Spreads reads over the lanes in turn: any lane gives a fresh answer, so reads of one hot
/// event use them all.
#[derive(Debug, Default)]
pub struct RoundRobin(AtomicUsize);

impl RoundRobin {
    /// The next lane.
    pub fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Reads `id` through `engine` in the next batch of a lane, answering no later than the
/// request deadline.
pub(crate) async fn read<Id: Send + 'static, Found: Send + 'static>(
    state: &crate::state::AppState,
    engine: &Arc<Batcher<Id, Option<Found>>>,
    id: Id,
) -> Result<Found, crate::error::ApiError> {
    use crate::batching::Failure;
    use crate::error::ApiError;
    let deadline = std::time::Instant::now() + state.deadline;
    match engine.submit(state.read_lane.next(), id, deadline).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(ApiError::NotFound),
        Err(Failure::Batch(err)) => Err(err.into()),
        // A read changes nothing: whether it ran or not, the client may simply retry.
        Err(Failure::Overloaded | Failure::OutcomeUnknown) => Err(ApiError::Unavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_gets_the_row_of_its_own_id() {
        let found = vec![(3, "c"), (1, "a")];
        let answers = answer_each(&[1, 2, 3, 1], found, |f| f.0);
        assert_eq!(
            answers,
            vec![Some((1, "a")), None, Some((3, "c")), Some((1, "a"))]
        );
        assert_eq!(unique(&[3, 1, 3, 2, 1]), vec![1, 2, 3]);
    }
}
