//! The concurrent workload: client threads sending reserves (of 1 to 3 tickets), purchases and
//! cancels of their own holds, and reads, each with an Idempotency-Key, recording everything.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Conn, Outcome};
use crate::history::{Op, Record};

/// What the clients do.
#[derive(Debug, Clone)]
pub struct Workload {
    pub clients: usize,
    pub events: Vec<i64>,
    pub ports: Vec<u16>,
    /// How long a client waits for an answer before it counts the request as hung.
    pub client_timeout: Duration,
    /// Purchase a hold only once it is this old (TTL races); else as soon as possible.
    pub purchase_after: Option<Duration>,
    /// Percentages of reserve, purchase, cancel; the rest reads.
    pub mix: (u32, u32, u32),
}

/// A running workload.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Record>>>,
}

/// A small xorshift generator: the workload needs variety, not cryptography.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl Workload {
    /// Starts the clients; they run until [`Running::stop`] or `limit`.
    pub fn start(&self, origin: Instant, limit: Duration) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..self.clients)
            .map(|index| {
                let (w, stop) = (self.clone(), Arc::clone(&stop));
                std::thread::spawn(move || w.client(index, origin, limit, &stop))
            })
            .collect();
        Running { stop, threads }
    }

    fn client(
        &self,
        index: usize,
        origin: Instant,
        limit: Duration,
        stop: &AtomicBool,
    ) -> Vec<Record> {
        let seed =
            0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
        let mut rng = Rng(seed | 1);
        let mut conns: Vec<Conn> = self
            .ports
            .iter()
            .map(|p| Conn::new(*p, self.client_timeout))
            .collect();
        let mut holds: VecDeque<(String, Instant)> = VecDeque::new();
        let mut records = Vec::new();
        let (reserve, purchase, cancel) = self.mix;
        let mut n: u64 = 0;
        let mut repeated_any = false;
        while !stop.load(Ordering::Relaxed) && origin.elapsed() < limit && n < 10_000_000 {
            n += 1;
            let server = (index + usize::try_from(n).unwrap_or(0)) % conns.len();
            let roll = u32::try_from(rng.below(100)).unwrap_or(0);
            let ripe = holds
                .front()
                .is_some_and(|(_, at)| self.purchase_after.is_none_or(|d| at.elapsed() >= d));
            let pick = |rng: &mut Rng| {
                self.events[usize::try_from(rng.below(self.events.len() as u64)).unwrap_or(0)]
            };
            let wants_hold = (reserve..reserve + purchase + cancel).contains(&roll);
            let taken = if wants_hold && ripe {
                holds.pop_front()
            } else {
                None
            };
            let op = match taken {
                Some((reservation, _)) if roll < reserve + purchase => Op::Purchase {
                    reservation,
                    reference: format!("faults-{index}-{n}"),
                    repeat: false,
                },
                Some((reservation, _)) => Op::Cancel { reservation },
                None if roll < reserve + purchase + cancel => Op::Reserve {
                    event: pick(&mut rng),
                    quantity: 1 + u32::try_from(rng.below(3)).unwrap_or(0),
                },
                None => Op::Read {
                    event: pick(&mut rng),
                },
            };
            let record = send(&mut conns[server], server, op, origin);
            if let Some(id) = &record.created {
                holds.push_back((id.clone(), Instant::now()));
            }
            if matches!(record.outcome, Outcome::Refused) {
                // A server that is down: do not spin.
                std::thread::sleep(Duration::from_millis(20));
            }
            let bought = match (&record.op, record.outcome.status()) {
                (Op::Purchase { reservation, .. }, Some(200)) => Some(reservation.clone()),
                _ => None,
            };
            records.push(record);
            // Buy some holds again through the other server, as a buyer's second device would
            // (every client's first purchase, then one in eight): the checker's test that no
            // hold is sold twice. Repeated until an answer decides it (not a 503).
            if let Some(reservation) = bought.filter(|_| !repeated_any || rng.below(8) == 0) {
                repeated_any = true;
                for _ in 0..3 {
                    n += 1;
                    let other = (server + 1) % conns.len();
                    let op = Op::Purchase {
                        reservation: reservation.clone(),
                        reference: format!("faults-{index}-{n}"),
                        repeat: true,
                    };
                    let record = send(&mut conns[other], other, op, origin);
                    let decided = !matches!(record.outcome.status(), Some(503) | None);
                    records.push(record);
                    if decided {
                        break;
                    }
                }
            }
        }
        records
    }
}

/// Sends one request with a fresh Idempotency-Key and records it.
fn send(conn: &mut Conn, server: usize, op: Op, origin: Instant) -> Record {
    let key = uuid::Uuid::new_v4().to_string();
    let (method, path, body) = match &op {
        Op::Reserve { event, quantity } => (
            "POST",
            format!("/api/events/{event}/reserve"),
            format!(r#"{{"quantity":{quantity}}}"#),
        ),
        Op::Purchase {
            reservation,
            reference,
            ..
        } => (
            "POST",
            format!("/api/reservations/{reservation}/purchase"),
            format!(r#"{{"payment_reference":"{reference}"}}"#),
        ),
        Op::Cancel { reservation } => (
            "POST",
            format!("/api/reservations/{reservation}/cancel"),
            String::new(),
        ),
        Op::Read { event } => ("GET", format!("/api/events/{event}"), String::new()),
    };
    let started = origin.elapsed();
    let outcome = conn.send(method, &path, &[("Idempotency-Key", &key)], &body);
    let ended = origin.elapsed();
    let created = match (&op, &outcome) {
        (
            Op::Reserve { .. },
            Outcome::Answered {
                status: 201, body, ..
            },
        ) => serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned)),
        _ => None,
    };
    Record {
        op,
        server,
        started,
        ended,
        outcome,
        created,
    }
}

impl Running {
    /// Stops the clients and collects their histories.
    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Record> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|r| r.started);
        all
    }
}
