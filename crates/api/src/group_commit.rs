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

use std::collections::hash_map::Entry;
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
    /// An entry exists while a transaction for that event is in flight; it holds the requests
    /// that arrived meanwhile, in arrival order.
    queues: Mutex<HashMap<EventId, VecDeque<Reply>>>,
}

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit").field("max_batch", &self.max_batch).finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Batches of at most `max_batch` requests (1 turns batching off: one transaction per
    /// request, the classic design).
    pub fn new(ticketing: Ticketing, max_batch: usize) -> Arc<Self> {
        Arc::new(Self { ticketing, max_batch: max_batch.max(1), queues: Mutex::new(HashMap::new()) })
    }

    /// Reserves one ticket of `event`, sharing a transaction with concurrent requests.
    ///
    /// # Errors
    /// As [`Ticketing::reserve`]: [`DomainError::SoldOut`], [`DomainError::EventNotFound`] or
    /// [`DomainError::Store`] (also when the server is shutting down).
    pub async fn reserve(self: &Arc<Self>, event: EventId) -> Result<Reservation, DomainError> {
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            match queues.entry(event) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push_back(reply);
                    None
                }
                Entry::Vacant(slot) => {
                    slot.insert(VecDeque::new());
                    Some(reply)
                }
            }
        };
        if let Some(first) = leads {
            // Detached, so a client that hangs up cannot strand the requests queued behind it.
            rt::spawn(Arc::clone(self).drive(event, vec![first]));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("reserve batch was dropped").into()))
    }

    /// Runs transactions for `event` until no request is waiting.
    async fn drive(self: Arc<Self>, event: EventId, mut batch: Vec<Reply>) {
        loop {
            // Requests whose clients hung up get no ticket.
            batch.retain(|reply| !reply.is_closed());
            if !batch.is_empty() {
                self.commit(event, std::mem::take(&mut batch)).await;
            }
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(waiting) = queues.get_mut(&event) else { return };
            if waiting.is_empty() {
                queues.remove(&event);
                return;
            }
            let take = waiting.len().min(self.max_batch);
            batch = waiting.drain(..take).collect();
        }
    }

    async fn commit(&self, event: EventId, batch: Vec<Reply>) {
        let ticketing = self.ticketing.clone();
        let count = batch.len();
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
