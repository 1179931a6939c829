//! The load itself: client threads, each with its own single-threaded runtime and keep-alive
//! connection pool, running `concurrency` request loops in all.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::mix::{Mix, Op};
use crate::error::CliError;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub base: String,
    /// The events requests are spread over, uniformly.
    pub events: Vec<i64>,
    /// Each event's ticket types (none: untyped reserves), by the index of `events`.
    pub types: Vec<Vec<i64>>,
    /// Lines of each typed reserve, of distinct random types, one ticket each.
    pub lines: usize,
    /// The events' seating plan, if they have one: rows of section `A`, seats per row.
    pub seating: Option<(u32, u32)>,
    pub concurrency: usize,
    pub threads: usize,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub mix: Mix,
    pub progress: bool,
}

impl Plan {
    /// The tickets one granted reserve holds.
    pub fn tickets_per_reserve(&self) -> usize {
        if self.types.is_empty() {
            1
        } else {
            self.lines
        }
    }
}

/// The body of a typed reserve: `lines` distinct types of `types`, from `start` on, one ticket
/// each (`None`: an untyped reserve, no body).
fn reserve_body(types: &[i64], lines: usize, start: usize) -> Option<String> {
    if types.is_empty() {
        return None;
    }
    let picked: Vec<String> = (0..lines.min(types.len()))
        .map(|k| format!(r#"{{"ticket_type":{}}}"#, types[(start + k) % types.len()]))
        .collect();
    Some(if picked.len() == 1 {
        format!(r#"{{"ticket_type":{}}}"#, types[start % types.len()])
    } else {
        format!(r#"{{"lines":[{}]}}"#, picked.join(","))
    })
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    /// Latency in microseconds, per kind of request.
    pub latency: BTreeMap<Op, Histogram<u64>>,
    /// Answers per kind of request and status (0: no answer, see `errors`).
    pub statuses: BTreeMap<(Op, u16), u64>,
    /// Transport failures by message.
    pub errors: BTreeMap<String, u64>,
    /// Tickets granted (by answers 201 to reserves) per event.
    pub granted: BTreeMap<i64, u64>,
    /// Answers 503 that came without `Retry-After`.
    pub unavailable_without_retry_after: u64,
}

impl Outcome {
    fn new() -> Self {
        Self {
            elapsed: Duration::ZERO,
            latency: BTreeMap::new(),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            granted: BTreeMap::new(),
            unavailable_without_retry_after: 0,
        }
    }

    fn record(&mut self, op: Op, status: u16, micros: u64) {
        *self.statuses.entry((op, status)).or_default() += 1;
        self.latency
            .entry(op)
            .or_insert_with(new_histogram)
            .saturating_record(micros.max(1));
    }

    fn merge(&mut self, other: Self) {
        for (key, n) in other.statuses {
            *self.statuses.entry(key).or_default() += n;
        }
        for (key, n) in other.errors {
            *self.errors.entry(key).or_default() += n;
        }
        for (event, n) in other.granted {
            *self.granted.entry(event).or_default() += n;
        }
        self.unavailable_without_retry_after += other.unavailable_without_retry_after;
        for (op, histogram) in other.latency {
            // Same bounds on both sides, so adding cannot fail.
            let _ = self
                .latency
                .entry(op)
                .or_insert_with(new_histogram)
                .add(histogram);
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits; these bounds are valid, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!())
}

struct Shared {
    issued: AtomicU64,
    done: AtomicU64,
}

/// Runs the plan to its end and collects the results of every thread.
pub fn run_load(plan: &Plan) -> Result<Outcome, CliError> {
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);
    let threads = plan.threads.max(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let loops = plan.concurrency / threads + usize::from(t < plan.concurrency % threads);
            let (plan, shared) = (plan.clone(), Arc::clone(&shared));
            thread::Builder::new()
                .name(format!("bench-client-{t}"))
                .spawn(move || client_thread(&plan, &shared, t, loops, deadline))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::Config(format!("cannot start client threads: {e}")))?;

    let bar = progress_bar(plan);
    while handles.iter().any(|h| !h.is_finished()) {
        let done = shared.done.load(Ordering::Relaxed);
        match plan.duration {
            Some(_) => {
                bar.set_position(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            }
            None => bar.set_position(done),
        }
        let rate = f64::from(u32::try_from(done).unwrap_or(u32::MAX))
            / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{done} requests, {rate:.0}/s"));
        thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();

    let mut outcome = Outcome::new();
    // Until the last loop's last answer, not until this thread next looked: short runs
    // (a fixed number of requests) would otherwise be rounded up to the 100 ms it sleeps.
    let mut last = started;
    for handle in handles {
        let (part, finished) = handle
            .join()
            .map_err(|_| CliError::Config("a client thread panicked".into()))?;
        outcome.merge(part);
        last = last.max(finished);
    }
    outcome.elapsed = last - started;
    Ok(outcome)
}

fn progress_bar(plan: &Plan) -> ProgressBar {
    if !plan.progress {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let (len, template) = match (plan.duration, plan.requests) {
        (Some(d), _) => (
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            "{spinner} [{elapsed_precise}] {wide_bar} {msg}",
        ),
        (None, Some(n)) => (
            n,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        ),
        (None, None) => (0, "{spinner} [{elapsed_precise}] {msg}"),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn client_thread(
    plan: &Plan,
    shared: &Shared,
    thread: usize,
    loops: usize,
    deadline: Option<Instant>,
) -> (Outcome, Instant) {
    actix_web::rt::System::new().block_on(async move {
        let connector = awc::Connector::new()
            .limit(loops.max(1))
            .timeout(Duration::from_secs(10));
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(30))
            .finish();
        let outcome = Rc::new(RefCell::new(Outcome::new()));
        join_all((0..loops).map(|i| {
            let seed = (thread as u64) << 32 | i as u64;
            request_loop(&client, plan, shared, Rc::clone(&outcome), seed, deadline)
        }))
        .await;
        let finished = Instant::now();
        (
            Rc::try_unwrap(outcome).map_or_else(|_| Outcome::new(), RefCell::into_inner),
            finished,
        )
    })
}

/// Holds each connection keeps for its purchases at most.
const HOLDS_KEPT: usize = 32;

/// The `id` of a hold from a 201 answer: the server writes it first, so it is read straight
/// from its place, with a full parse only when that fails.
fn hold_id(body: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"{\"id\":\"";
    if body.starts_with(PREFIX)
        && body.len() >= PREFIX.len() + 37
        && body[PREFIX.len() + 36] == b'"'
    {
        return std::str::from_utf8(&body[PREFIX.len()..PREFIX.len() + 36])
            .ok()
            .map(str::to_owned);
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
}

/// A tiny generator for the mix; quality does not matter, speed does.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        u32::try_from(self.0 % u64::from(n.max(1))).unwrap_or(0)
    }
}

/// The URLs a connection sends to, by event.
struct Targets {
    reserve: Vec<String>,
    read: Vec<String>,
    seats: Vec<String>,
    health: String,
}

impl Targets {
    fn of(plan: &Plan) -> Self {
        let each = |suffix: &str| -> Vec<String> {
            plan.events
                .iter()
                .map(|e| format!("{}/api/events/{e}{suffix}", plan.base))
                .collect()
        };
        Self {
            reserve: each("/reserve"),
            read: each(""),
            seats: each("/seats"),
            health: format!("{}/health", plan.base),
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// What one request loop keeps between its requests.
struct Connection {
    urls: Targets,
    rng: XorShift,
    /// Its own holds, for its purchases.
    holds: Vec<String>,
    /// The seat map's `ETag` it saw last, per event.
    etags: Vec<Option<String>>,
}

impl Connection {
    /// Starts one request of kind `op` on event `target`.
    fn start(
        &mut self,
        client: &awc::Client,
        plan: &Plan,
        op: Op,
        target: usize,
    ) -> awc::SendClientRequest {
        let (urls, rng) = (&self.urls, &mut self.rng);
        match op {
            Op::Reserve => {
                let types = plan.types.get(target).map_or(&[][..], Vec::as_slice);
                let start = rng.below(u32::try_from(types.len().max(1)).unwrap_or(1)) as usize;
                match reserve_body(types, plan.lines, start) {
                    Some(body) => client
                        .post(&urls.reserve[target])
                        .insert_header(JSON)
                        .send_body(body),
                    None => client.post(&urls.reserve[target]).send(),
                }
            }
            Op::Purchase => {
                let id = self.holds.pop().unwrap_or_default();
                client
                    .post(format!("{}/api/reservations/{id}/purchase", plan.base))
                    .send()
            }
            Op::Read => client.get(&urls.read[target]).send(),
            Op::Health => client.get(&urls.health).send(),
            Op::Best => client
                .post(&urls.reserve[target])
                .insert_header(JSON)
                .send_body(r#"{"best_available":{"quantity":2}}"#),
            Op::Seat => {
                let (rows, per_row) = plan.seating.unwrap_or((1, 1));
                let row = 1 + rng.below(rows);
                let first = 1 + rng.below(per_row);
                // A second seat of the row, never the first.
                let second = 1 + (first + rng.below(per_row.max(2) - 1)) % per_row;
                let body = format!(r#"{{"seats":["A-{row}-{first}","A-{row}-{second}"]}}"#);
                client
                    .post(&urls.reserve[target])
                    .insert_header(JSON)
                    .send_body(body)
            }
            Op::SeatMap | Op::SeatMap304 => {
                let mut req = client
                    .get(&urls.seats[target])
                    .insert_header(("accept-encoding", "gzip"));
                if let (Op::SeatMap304, Some(tag)) = (op, &self.etags[target]) {
                    req = req.insert_header(("if-none-match", tag.as_str()));
                }
                req.send()
            }
        }
    }
}

async fn request_loop(
    client: &awc::Client,
    plan: &Plan,
    shared: &Shared,
    outcome: Rc<RefCell<Outcome>>,
    seed: u64,
    deadline: Option<Instant>,
) {
    let mut conn = Connection {
        urls: Targets::of(plan),
        rng: XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        holds: Vec::new(),
        etags: vec![None; plan.events.len()],
    };
    let events = u32::try_from(plan.events.len()).unwrap_or(u32::MAX);
    let keep_holds = plan.mix.weight(Op::Purchase) > 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        if let Some(max) = plan.requests {
            if shared.issued.fetch_add(1, Ordering::Relaxed) >= max {
                return;
            }
        }
        let mut op = plan.mix.pick(conn.rng.below(plan.mix.total()));
        if op == Op::Purchase && conn.holds.is_empty() {
            op = Op::Reserve;
        }
        let target = conn.rng.below(events) as usize;
        let started = Instant::now();
        let sent = conn.start(client, plan, op, target).await;
        let (status, body) = match sent {
            Ok(mut res) => {
                if res.status().as_u16() == 503 && !res.headers().contains_key("retry-after") {
                    outcome.borrow_mut().unavailable_without_retry_after += 1;
                }
                if op == Op::SeatMap304 {
                    if let Some(tag) = res.headers().get("etag").and_then(|v| v.to_str().ok()) {
                        conn.etags[target] = Some(tag.to_owned());
                    }
                }
                let body = res.body().limit(1 << 24).await.ok();
                (res.status().as_u16(), body)
            }
            Err(e) => {
                *outcome
                    .borrow_mut()
                    .errors
                    .entry(e.to_string())
                    .or_default() += 1;
                (0, None)
            }
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        outcome.borrow_mut().record(op, status, micros);
        let tickets = match op {
            Op::Reserve => plan.tickets_per_reserve() as u64,
            Op::Best | Op::Seat => 2,
            _ => 0,
        };
        if status == 201 && tickets > 0 {
            *outcome
                .borrow_mut()
                .granted
                .entry(plan.events[target])
                .or_default() += tickets;
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        // Only as many holds as purchases will need are kept, so the client does not spend
        // on reading every answer what the reserve-only shapes do not spend.
        if keep_holds && op == Op::Reserve && status == 201 && conn.holds.len() < HOLDS_KEPT {
            if let Some(id) = body.as_deref().and_then(hold_id) {
                conn.holds.push(id);
            }
        }
        if status == 0 {
            // The server is unreachable: do not spin.
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_reserve_names_distinct_types_one_ticket_each() {
        assert_eq!(reserve_body(&[], 1, 0), None);
        assert_eq!(
            reserve_body(&[7, 8, 9], 1, 4).as_deref(),
            Some(r#"{"ticket_type":8}"#)
        );
        assert_eq!(
            reserve_body(&[7, 8, 9], 3, 2).as_deref(),
            Some(r#"{"lines":[{"ticket_type":9},{"ticket_type":7},{"ticket_type":8}]}"#)
        );
    }

    #[test]
    fn hold_ids_are_read_from_the_answer() {
        let id = "01a217b2-b755-7ee3-ac7f-6f9c879d9e37";
        let fast = format!(r#"{{"id":"{id}","event_id":1,"status":"reserved"}}"#);
        assert_eq!(hold_id(fast.as_bytes()).as_deref(), Some(id));
        let reordered = format!(r#"{{"event_id":1, "id": "{id}"}}"#);
        assert_eq!(hold_id(reordered.as_bytes()).as_deref(), Some(id));
        assert_eq!(hold_id(b"{}"), None);
    }
}
