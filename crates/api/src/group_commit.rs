//! Group commit of reserve requests, per event.
//!
//! On an on-sale rush every reserve for one event queues on that event's row lock, and each
//! would pay its own transaction and WAL flush. Instead, while one reserve transaction for an
//! event is in flight, later requests for that event wait here; when it commits, the next
//! transaction takes all of them (up to `max_batch`), locks the row once, grants in arrival
//! order (the domain's pure decision), inserts all granted holds with one statement, commits
//! once, and answers each request. A lone request goes out at once: there is no timer, so
//! latency at low load does not grow. A failed transaction answers every request in it with
//! the error; nothing in it was granted.
//!
//! This lives outside the domain: it is a scheduling policy of this server, and the domain
//! only sees batches through `Ticketing::reserve_batch`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{rt, web};
use domain::{DomainError, EventId, Reservation, StoreError, Ticketing};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<Reservation, DomainError>>;

/// Coalesces concurrent reserve requests for the same event into shared transactions.
pub struct GroupCommit {
    ticketing: Ticketing,
    max_batch: usize,
    /// An entry exists while a transaction for that event is in flight.
    lanes: Mutex<HashMap<EventId, Lane>>,
}

/// The state of one event's requests.
#[derive(Default)]
struct Lane {
    /// Requests not yet in a transaction, in arrival order.
    waiting: VecDeque<Reply>,
    /// Transactions of this event under way (at most [`MAX_IN_FLIGHT`]).
    in_flight: usize,
}

/// Transactions of one event under way at once. The second waits on the event's row lock in
/// the database while the first commits, and starts the moment it is released, so the lock
/// never idles while this server hands results back and gathers the next batch.
const MAX_IN_FLIGHT: usize = 2;

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Batches of at most `max_batch` requests (1 turns batching off: one transaction per
    /// request, the classic design).
    pub fn new(ticketing: Ticketing, max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            ticketing,
            max_batch: max_batch.max(1),
            lanes: Mutex::new(HashMap::new()),
        })
    }

    /// Reserves one ticket of `event`, sharing a transaction with concurrent requests.
    ///
    /// # Errors
    /// As [`Ticketing::reserve`]: [`DomainError::SoldOut`], [`DomainError::EventNotFound`] or
    /// [`DomainError::Store`] (also when the server is shutting down).
    pub async fn reserve(self: &Arc<Self>, event: EventId) -> Result<Reservation, DomainError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let lane = lanes.entry(event).or_default();
            lane.waiting.push_back(reply);
            (lane.in_flight < MAX_IN_FLIGHT).then(|| {
                lane.in_flight += 1;
                self.take_batch(lane)
            })
        };
        if let Some(batch) = start {
            // Detached, so a client that hangs up cannot strand the requests queued behind it.
            rt::spawn(Arc::clone(self).drive(event, batch));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("reserve batch was dropped").into()))
    }

    /// The next batch: the oldest waiting requests whose clients are still there.
    fn take_batch(&self, lane: &mut Lane) -> Vec<Reply> {
        let mut batch = Vec::with_capacity(lane.waiting.len().min(self.max_batch));
        while batch.len() < self.max_batch {
            match lane.waiting.pop_front() {
                // A client that hung up gets no ticket.
                Some(reply) if reply.is_closed() => {}
                Some(reply) => batch.push(reply),
                None => break,
            }
        }
        batch
    }

    /// Runs transactions for `event` until no request is waiting.
    async fn drive(self: Arc<Self>, event: EventId, mut batch: Vec<Reply>) {
        loop {
            if !batch.is_empty() {
                self.commit(event, batch).await;
            }
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(lane) = lanes.get_mut(&event) else {
                return;
            };
            batch = self.take_batch(lane);
            if batch.is_empty() {
                lane.in_flight -= 1;
                if lane.in_flight == 0 && lane.waiting.is_empty() {
                    lanes.remove(&event);
                }
                return;
            }
        }
    }

    async fn commit(&self, event: EventId, batch: Vec<Reply>) {
        let ticketing = self.ticketing.clone();
        let count = batch.len();
        tracing::trace!(event = event.get(), requests = count, "reserve batch");
        let outcome = web::block(move || ticketing.reserve_batch(event, count))
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("blocking pool is gone").into()));
        match outcome {
            Ok(outcomes) => {
                for (reply, outcome) in batch.into_iter().zip(outcomes) {
                    // A client that hung up meanwhile loses its hold to expiry, as it would
                    // without batching.
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(event = event.get(), requests = count, error = %err, "reserve batch failed");
                for reply in batch {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}
