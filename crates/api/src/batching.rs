//! The batching engine: concurrent requests that would each pay their own transaction or
//! statement (and, for writes, queue on the same row locks) are served together instead. It
//! runs the write pipeline's group commit (`crate::state::Writes`), the coalesced reads
//! (`crate::reads`) and the readiness probes (`crate::state::ReadinessChecks`).
//!
//! Requests are partitioned into a fixed number of lanes. Each lane has at most one batch in
//! flight; requests that arrive meanwhile wait in the lane's queue, and the next batch takes all
//! of them (up to `max_batch`) in arrival order. A lone request goes out at once: there is no
//! timer, so latency at low load does not grow. The commit function serves a whole batch and
//! answers each request; a failed batch answers every request in it with the error.
//!
//! Every request carries a deadline. One whose deadline passes while it waits is answered at
//! once as [`Failure::Overloaded`] and never started; one whose deadline passes while its batch
//! is in flight is answered [`Failure::OutcomeUnknown`] (the batch may still commit). A full
//! queue refuses new requests at once. A client that hung up is skipped when its batch forms.
//! If a lane's driver is dropped (worker shutdown, panic), the requests still waiting get
//! [`Failure::Overloaded`] and the lane starts a new driver for the next request.
//!
//! This lives outside the domain: it is a scheduling policy of this server. The domain only
//! sees batches and decides them exactly as if the requests came one by one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use domain::DomainError;
use tokio::sync::oneshot;

/// Why a request got no outcome of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not served: the queue was full, the deadline passed before its batch started, or the
    /// lane's driver went away. Nothing was done; retrying later is safe.
    Overloaded,
    /// The deadline passed while its batch was in flight: it may or may not take effect.
    OutcomeUnknown,
    /// Its batch failed as a whole.
    Batch(DomainError),
}

/// The answer to one request.
pub type Outcome<Out> = Result<Out, Failure>;

/// Serves a batch: one result per request, in order, or one error for all of them.
pub type CommitFn<Req, Out> = dyn Fn(Vec<Req>) -> Result<Vec<Out>, DomainError> + Send + Sync;

const QUEUED: u8 = 0;
const IN_FLIGHT: u8 = 1;
const ABANDONED: u8 = 2;

struct Entry<Req, Out> {
    request: Req,
    reply: oneshot::Sender<Outcome<Out>>,
    deadline: Instant,
    state: Arc<AtomicU8>,
    /// The request's span: told which batch served it, so its log lines name the batch.
    span: tracing::Span,
}

struct LaneState<Req, Out> {
    waiting: VecDeque<Entry<Req, Out>>,
    driving: bool,
}

struct Lane<Req, Out> {
    state: Mutex<LaneState<Req, Out>>,
}

impl<Req, Out> Lane<Req, Out> {
    fn lock(&self) -> MutexGuard<'_, LaneState<Req, Out>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How an engine batches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Lanes: batches in flight at most.
    pub lanes: usize,
    /// Requests per batch at most.
    pub max_batch: usize,
    /// Requests waiting per lane at most; more are refused at once.
    pub max_queue: usize,
}

/// A batching engine for requests of type `Req` answered with `Out`.
pub struct Batcher<Req, Out> {
    what: &'static str,
    limits: Limits,
    lanes: Box<[Lane<Req, Out>]>,
    commit: Arc<CommitFn<Req, Out>>,
    /// The number of the last batch started (batch ids in logs).
    batches: AtomicU64,
    /// Where drivers run: a runtime of their own outlives the HTTP workers at shutdown, so a
    /// worker that stops first cannot take the batches of the others' requests with it. `None`:
    /// the runtime of the request that starts the driver.
    runtime: Option<actix_rt::ArbiterHandle>,
}

impl<Req, Out> fmt::Debug for Batcher<Req, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("what", &self.what)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<Req: Send + 'static, Out: Send + 'static> Batcher<Req, Out> {
    /// An engine that serves batches with `commit`, its drivers on the runtime of the request
    /// that starts them.
    pub fn new(
        what: &'static str,
        limits: Limits,
        commit: impl Fn(Vec<Req>) -> Result<Vec<Out>, DomainError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::on_runtime(what, limits, None, commit)
    }

    /// An engine that serves batches with `commit`, its drivers on `runtime` when given.
    pub fn on_runtime(
        what: &'static str,
        limits: Limits,
        runtime: Option<actix_rt::ArbiterHandle>,
        commit: impl Fn(Vec<Req>) -> Result<Vec<Out>, DomainError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        let limits = Limits {
            lanes: limits.lanes.max(1),
            max_batch: limits.max_batch.max(1),
            max_queue: limits.max_queue.max(1),
        };
        let lanes = (0..limits.lanes)
            .map(|_| Lane {
                state: Mutex::new(LaneState {
                    waiting: VecDeque::new(),
                    driving: false,
                }),
            })
            .collect();
        Arc::new(Self {
            what,
            limits,
            lanes,
            commit: Arc::new(commit),
            batches: AtomicU64::new(0),
            runtime,
        })
    }

    /// The lane a request with `tag` goes to: requests with equal tags share a lane.
    pub fn lane_of(&self, tag: u16) -> usize {
        usize::from(tag) % self.lanes.len()
    }

    /// How many requests wait, over all lanes (for metrics).
    pub fn queued(&self) -> usize {
        self.lanes.iter().map(|l| l.lock().waiting.len()).sum()
    }

    /// Serves `request` in lane `lane` (see [`Batcher::lane_of`]) in a batch shared with
    /// the requests waiting there, answering no later than `deadline`.
    ///
    /// # Errors
    /// See [`Failure`].
    pub async fn submit(
        self: &Arc<Self>,
        lane: usize,
        request: Req,
        deadline: Instant,
    ) -> Outcome<Out> {
        let lane = lane % self.lanes.len();
        if Instant::now() >= deadline {
            return Err(Failure::Overloaded);
        }
        let (reply, answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        {
            let mut guard = self.lanes[lane].lock();
            if guard.waiting.len() >= self.limits.max_queue {
                return Err(Failure::Overloaded);
            }
            guard.waiting.push_back(Entry {
                request,
                reply,
                deadline,
                state: Arc::clone(&state),
                span: tracing::Span::current(),
            });
            if !guard.driving {
                guard.driving = true;
                drop(guard);
                // Detached, so a client that hangs up cannot strand the requests behind it.
                let driver = Arc::clone(self).drive(lane);
                match &self.runtime {
                    Some(runtime) => {
                        if !runtime.spawn(driver) {
                            // The runtime is gone (shut down): fail the lane as a dropped
                            // driver would.
                            drop(DriverGuard {
                                lane: &self.lanes[lane],
                                done: false,
                            });
                        }
                    }
                    None => {
                        actix_web::rt::spawn(driver);
                    }
                }
            }
        }
        match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(outcome)) => outcome,
            // The driver went away without answering: the lane's guard failed the queue, or
            // the request was in the batch it was running.
            Ok(Err(_)) => match state.load(Ordering::Acquire) {
                IN_FLIGHT => Err(Failure::OutcomeUnknown),
                _ => Err(Failure::Overloaded),
            },
            Err(_) => {
                // Whoever moves the state first decides: the driver taking it into a batch, or
                // this timeout abandoning it.
                match state.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => Err(Failure::Overloaded),
                    Err(_) => Err(Failure::OutcomeUnknown),
                }
            }
        }
    }

    /// The next batch: the oldest waiting requests that are still wanted, marked in flight.
    /// Requests past their deadline are answered and dropped here.
    fn take_batch(&self, waiting: &mut VecDeque<Entry<Req, Out>>) -> Vec<Entry<Req, Out>> {
        let now = Instant::now();
        let mut batch = Vec::with_capacity(waiting.len().min(self.limits.max_batch));
        while batch.len() < self.limits.max_batch {
            let Some(entry) = waiting.pop_front() else {
                break;
            };
            if entry.reply.is_closed() {
                // The client hung up: nothing is done for it.
                continue;
            }
            if entry.deadline <= now {
                if entry
                    .state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let _ = entry.reply.send(Err(Failure::Overloaded));
                }
                continue;
            }
            if entry
                .state
                .compare_exchange(QUEUED, IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                batch.push(entry);
            }
        }
        batch
    }

    /// Runs batches for `lane` until no request waits there.
    async fn drive(self: Arc<Self>, lane: usize) {
        let mut guard = DriverGuard {
            lane: &self.lanes[lane],
            done: false,
        };
        loop {
            let batch = {
                let mut state = guard.lane.lock();
                let batch = self.take_batch(&mut state.waiting);
                if batch.is_empty() {
                    state.driving = false;
                    guard.done = true;
                    return;
                }
                batch
            };
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<Entry<Req, Out>>) {
        let count = batch.len();
        let id = self.batches.fetch_add(1, Ordering::Relaxed) + 1;
        let mut requests = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(count);
        for entry in batch {
            entry.span.record("batch", id);
            requests.push(entry.request);
            replies.push(entry.reply);
        }
        #[allow(clippy::cast_precision_loss)] // a batch size is far below 2^52
        metrics::histogram!("batch_size", "engine" => self.what).record(count as f64);
        let started = Instant::now();
        let commit = Arc::clone(&self.commit);
        let outcome = match actix_web::rt::task::spawn_blocking(move || commit(requests)).await {
            Ok(outcome) => outcome,
            Err(join) => Err(DomainError::Store(domain::StoreError::internal(format!(
                "the {} batch panicked: {join}",
                self.what
            )))),
        };
        let outcome = match outcome {
            Ok(outcomes) if outcomes.len() != count => {
                Err(DomainError::Store(domain::StoreError::internal(format!(
                    "{} outcomes for a {} batch of {count}",
                    outcomes.len(),
                    self.what
                ))))
            }
            other => other,
        };
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("batch_duration_seconds", "engine" => self.what).record(seconds);
        match outcome {
            Ok(outcomes) => {
                tracing::debug!(
                    engine = self.what,
                    batch = id,
                    requests = count,
                    seconds,
                    "batch done"
                );
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A client that hung up meanwhile: its effect stands, as it would without
                    // batching (a hold it made expires).
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                // The one log line of a failed batch; its requests' lines carry its id.
                crate::telemetry::count_store_error(&err);
                tracing::error!(engine = self.what, batch = id, requests = count, error = %err, "batch failed");
                for reply in replies {
                    let _ = reply.send(Err(Failure::Batch(err.clone())));
                }
            }
        }
    }
}

/// Frees a lane whose driver is dropped before it finished (its task was cancelled at
/// shutdown, or panicked): the requests still waiting are answered, and the next request
/// starts a new driver.
struct DriverGuard<'a, Req, Out> {
    lane: &'a Lane<Req, Out>,
    done: bool,
}

impl<Req, Out> Drop for DriverGuard<'_, Req, Out> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.lane.lock();
        state.driving = false;
        for entry in state.waiting.drain(..) {
            if entry
                .state
                .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let _ = entry.reply.send(Err(Failure::Overloaded));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::time::Duration;

    use domain::StoreError;

    use super::*;

    fn limits(max_batch: usize, max_queue: usize) -> Limits {
        Limits {
            lanes: 2,
            max_batch,
            max_queue,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// A commit function that blocks until the test releases it, recording each batch.
    #[allow(clippy::type_complexity)]
    fn gated() -> (
        impl Fn(Vec<u32>) -> Result<Vec<u32>, DomainError> + Send + Sync + 'static,
        mpsc::Receiver<Vec<u32>>,
        mpsc::SyncSender<()>,
    ) {
        let (seen_tx, seen) = mpsc::channel();
        let (go, go_rx) = mpsc::sync_channel::<()>(100);
        let go_rx = Mutex::new(go_rx);
        let commit = move |batch: Vec<u32>| {
            let _ = seen_tx.send(batch.clone());
            let _ = go_rx.lock().unwrap().recv();
            Ok(batch.into_iter().map(|r| r * 10).collect())
        };
        (commit, seen, go)
    }

    /// Waits, without blocking the runtime, until `f` holds.
    async fn until(f: impl Fn() -> bool) {
        // Up to ten seconds: a condition that holds at all holds long before, even on a loaded
        // machine.
        for _ in 0..5_000 {
            if f() {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("condition never held");
    }

    #[actix_web::test]
    async fn a_lone_request_goes_out_at_once_and_gets_its_own_answer() {
        let engine = Batcher::new("test", limits(8, 8), |b: Vec<u32>| {
            Ok(b.iter().map(|r| r + 1).collect())
        });
        assert_eq!(engine.submit(0, 41, soon()).await, Ok(42));
    }

    #[actix_web::test]
    async fn requests_that_wait_are_batched_in_arrival_order_up_to_the_batch_size() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(3, 100), commit);
        let first = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 1, soon()).await }
        });
        // The first batch is in flight: the next five wait, in order.
        let first_batch = actix_web::rt::task::spawn_blocking(move || {
            let batch = seen.recv().unwrap();
            (batch, seen)
        });
        let (batch, seen) = first_batch.await.unwrap();
        assert_eq!(batch, vec![1]);
        let mut rest = Vec::new();
        for r in 2..=6 {
            let e = Arc::clone(&engine);
            rest.push(actix_web::rt::spawn(
                async move { e.submit(0, r, soon()).await },
            ));
            until(|| engine.queued() == usize::try_from(r - 1).unwrap()).await;
        }
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        let mut answers = vec![first.await.unwrap()];
        for r in rest {
            answers.push(r.await.unwrap());
        }
        assert_eq!(answers, (1..=6).map(|r| Ok(r * 10)).collect::<Vec<_>>());
        let batches: Vec<Vec<u32>> = seen.try_iter().collect();
        assert_eq!(batches, vec![vec![2, 3, 4], vec![5, 6]]);
    }

    #[actix_web::test]
    async fn lanes_run_their_batches_side_by_side() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 8), commit);
        let a = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 1, soon()).await }
        });
        let b = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(1, 2, soon()).await }
        });
        // Both batches reach the commit function before either is released.
        let both = actix_web::rt::task::spawn_blocking(move || {
            let mut batches = vec![seen.recv().unwrap(), seen.recv().unwrap()];
            batches.sort();
            batches
        })
        .await
        .unwrap();
        assert_eq!(both, vec![vec![1], vec![2]]);
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!((a.await.unwrap(), b.await.unwrap()), (Ok(10), Ok(20)));
    }

    #[actix_web::test]
    async fn a_failed_batch_answers_every_request_in_it_with_the_error() {
        let engine = Batcher::new("test", limits(8, 8), |_: Vec<u32>| {
            Err::<Vec<u32>, _>(StoreError::unavailable("down").into())
        });
        let answers =
            futures_util::future::join_all((0..4).map(|r| engine.submit(0, r, soon()))).await;
        for answer in answers {
            assert_eq!(
                answer,
                Err(Failure::Batch(StoreError::unavailable("down").into()))
            );
        }
    }

    #[actix_web::test]
    async fn a_panicking_commit_fails_its_batch_and_the_lane_keeps_serving() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let engine = Batcher::new("test", limits(8, 8), move |b: Vec<u32>| {
            assert!(counter.fetch_add(1, Ordering::SeqCst) != 0, "boom");
            Ok(b)
        });
        assert!(matches!(
            engine.submit(0, 1, soon()).await,
            Err(Failure::Batch(_))
        ));
        assert_eq!(engine.submit(0, 2, soon()).await, Ok(2));
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_at_once() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 2), commit);
        let first = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 1, soon()).await }
        });
        let seen = actix_web::rt::task::spawn_blocking(move || {
            seen.recv().unwrap();
            seen
        })
        .await
        .unwrap();
        let waiting: Vec<_> = (2..=3)
            .map(|r| {
                let e = Arc::clone(&engine);
                actix_web::rt::spawn(async move { e.submit(0, r, soon()).await })
            })
            .collect();
        until(|| engine.queued() == 2).await;
        let started = Instant::now();
        assert_eq!(engine.submit(0, 4, soon()).await, Err(Failure::Overloaded));
        // At once, not at its deadline five seconds away (the bound leaves room for a loaded
        // machine).
        assert!(started.elapsed() < Duration::from_secs(2));
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(10));
        for w in waiting {
            assert!(w.await.unwrap().is_ok());
        }
        drop(seen);
    }

    #[actix_web::test]
    async fn a_request_whose_deadline_passes_while_waiting_is_refused_and_never_started() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 8), commit);
        let first = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 1, soon()).await }
        });
        let seen = actix_web::rt::task::spawn_blocking(move || {
            seen.recv().unwrap();
            seen
        })
        .await
        .unwrap();
        let started = Instant::now();
        let late = engine
            .submit(0, 2, Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(late, Err(Failure::Overloaded));
        // At its own deadline (50 ms), not when the gate opens (never, until the test says).
        assert!(started.elapsed() < Duration::from_secs(2));
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(10));
        // The abandoned request is never committed.
        go.send(()).unwrap();
        assert_eq!(engine.submit(0, 3, soon()).await, Ok(30));
        let batches: Vec<Vec<u32>> = seen.try_iter().collect();
        assert!(batches.iter().all(|b| !b.contains(&2)), "{batches:?}");
    }

    #[actix_web::test]
    async fn a_request_whose_deadline_passes_in_flight_gets_outcome_unknown() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 8), commit);
        let answer = engine
            .submit(0, 1, Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(answer, Err(Failure::OutcomeUnknown));
        assert_eq!(seen.recv().unwrap(), vec![1]);
        go.send(()).unwrap();
    }

    #[actix_web::test]
    async fn a_client_that_hung_up_costs_nothing() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 8), commit);
        let first = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 1, soon()).await }
        });
        let seen = actix_web::rt::task::spawn_blocking(move || {
            seen.recv().unwrap();
            seen
        })
        .await
        .unwrap();
        let gone = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 2, soon()).await }
        });
        until(|| engine.queued() == 1).await;
        gone.abort();
        let _ = gone.await;
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(10));
        until(|| engine.queued() == 0).await;
        go.send(()).unwrap();
        assert_eq!(engine.submit(0, 3, soon()).await, Ok(30));
        let batches: Vec<Vec<u32>> = seen.try_iter().collect();
        assert_eq!(batches, vec![vec![3]], "the hung-up request was skipped");
    }

    #[actix_web::test]
    async fn a_dropped_driver_answers_the_waiting_requests_and_frees_its_lane() {
        let (commit, seen, go) = gated();
        let engine = Batcher::new("test", limits(8, 8), commit);
        // A request waits in lane 0 with a driver started for it, as `submit` does.
        let (reply, first) = oneshot::channel();
        let first_state = Arc::new(AtomicU8::new(QUEUED));
        {
            let mut lane = engine.lanes[0].lock();
            lane.waiting.push_back(Entry {
                request: 1,
                reply,
                deadline: soon(),
                state: Arc::clone(&first_state),
                span: tracing::Span::none(),
            });
            lane.driving = true;
        }
        let driver = actix_web::rt::spawn(Arc::clone(&engine).drive(0));
        let seen = actix_web::rt::task::spawn_blocking(move || {
            assert_eq!(seen.recv().unwrap(), vec![1]);
            seen
        })
        .await
        .unwrap();
        let second = actix_web::rt::spawn({
            let e = Arc::clone(&engine);
            async move { e.submit(0, 2, soon()).await }
        });
        until(|| engine.queued() == 1).await;

        // The driver is dropped mid-batch (its worker shut down).
        driver.abort();
        let _ = driver.await;
        assert_eq!(second.await.unwrap(), Err(Failure::Overloaded));
        assert!(
            first.await.is_err(),
            "the in-flight request lost its answer"
        );
        assert_eq!(first_state.load(Ordering::Acquire), IN_FLIGHT);

        // The lane is free: the next request starts a new driver and is served.
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(engine.submit(0, 3, soon()).await, Ok(30));
        let batches: Vec<Vec<u32>> = seen.try_iter().collect();
        assert_eq!(batches, vec![vec![3]]);
    }
}
