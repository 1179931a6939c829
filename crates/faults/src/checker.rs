//! The checker: what must hold over a scenario's complete history and the database after it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::Outcome;
use crate::db::Db;
use crate::history::{Op, Record};

/// One check: `Ok` with what was checked, or `Err` with what was found.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub result: Result<String, String>,
}

impl Check {
    fn new(name: &'static str, failures: &[String], checked: String) -> Self {
        let result = if failures.is_empty() {
            Ok(checked)
        } else {
            let shown: Vec<&str> = failures.iter().take(5).map(String::as_str).collect();
            Err(format!(
                "{} failure(s): {}",
                failures.len(),
                shown.join("; ")
            ))
        };
        Self { name, result }
    }

    pub fn pass(name: &'static str, detail: String) -> Self {
        Self {
            name,
            result: Ok(detail),
        }
    }

    pub fn fail(name: &'static str, detail: String) -> Self {
        Self {
            name,
            result: Err(detail),
        }
    }
}

/// Answers by status (`201`, `409`, `503`, ..., `refused`, `dropped`).
pub fn by_status(records: &[Record]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        let key = match &r.outcome {
            Outcome::Answered { status, .. } => status.to_string(),
            Outcome::Refused => "refused".to_owned(),
            Outcome::Dropped(_) => "dropped".to_owned(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Every request got a well-formed answer in time: 2xx, 4xx, or 503 with `Retry-After`; never
/// a 500; never slower than `bound`. A request without an answer passes only if
/// `no_answer_allowed` says so (a process was being killed or stopped).
pub fn answers(
    records: &[Record],
    bound: Duration,
    no_answer_allowed: &dyn Fn(&Record) -> bool,
) -> Vec<Check> {
    let mut malformed = Vec::new();
    let mut slow = Vec::new();
    let mut unanswered = Vec::new();
    let mut slowest = Duration::ZERO;
    for r in records {
        match &r.outcome {
            Outcome::Answered {
                status,
                retry_after,
                body,
            } => {
                let ok = match status {
                    200..=299 | 400..=499 => true,
                    503 => *retry_after,
                    _ => false,
                };
                if !ok {
                    malformed.push(format!(
                        "{} at {:?}: {status} {body}",
                        r.op.name(),
                        r.started
                    ));
                }
                slowest = slowest.max(r.took());
                if r.took() > bound {
                    slow.push(format!(
                        "{} at {:?} took {:?}",
                        r.op.name(),
                        r.started,
                        r.took()
                    ));
                }
            }
            other => {
                if !no_answer_allowed(r) {
                    unanswered.push(format!(
                        "{} to server {} at {:?}: {}",
                        r.op.name(),
                        r.server,
                        r.started,
                        other.describe()
                    ));
                }
            }
        }
    }
    vec![
        Check::new(
            "answers well formed (2xx, 4xx, 503 + Retry-After)",
            &malformed,
            format!("{} answers", records.len()),
        ),
        Check::new(
            "answers within the deadline",
            &slow,
            format!(
                "slowest {:.0} ms (bound {} ms)",
                slowest.as_secs_f64() * 1000.0,
                bound.as_millis()
            ),
        ),
        Check::new(
            "no request left without an answer",
            &unanswered,
            "all answered or allowed".into(),
        ),
    ]
}

/// Samples every event's tickets while a scenario runs.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, usize, Vec<String>)>,
}

impl Sampler {
    pub fn start(db: Db, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut taken, mut failed, mut over) = (0, 0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match db.sample() {
                    Ok(samples) => {
                        taken += 1;
                        for s in samples
                            .iter()
                            .filter(|s| s.purchased + s.active > s.capacity)
                        {
                            over.push(format!(
                                "event {}: {} purchased + {} held > {}",
                                s.event, s.purchased, s.active, s.capacity
                            ));
                        }
                    }
                    // The database is down or stalled: no instant to check.
                    Err(_) => failed += 1,
                }
                std::thread::sleep(every);
            }
            (taken, failed, over)
        });
        Self { stop, thread }
    }

    pub fn finish(self) -> Check {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok((taken, failed, over)) => Check::new(
                "no oversell at any sampled instant",
                &over,
                format!("{taken} samples ({failed} while the database was unreachable)"),
            ),
            Err(_) => Check::fail(
                "no oversell at any sampled instant",
                "sampler panicked".into(),
            ),
        }
    }
}

/// What the database holds agrees with every acknowledged answer, and with itself.
pub fn database(db: &Db, records: &[Record], ticketctl: &Path, events: &[i64]) -> Vec<Check> {
    let mut checks = Vec::new();
    match db.sample() {
        Ok(samples) => {
            let over: Vec<String> = samples
                .iter()
                .filter(|s| s.purchased + s.active > s.capacity)
                .map(|s| format!("event {}", s.event))
                .collect();
            checks.push(Check::new(
                "no oversell at the end",
                &over,
                format!("{} events", samples.len()),
            ));
        }
        Err(e) => checks.push(Check::fail("no oversell at the end", e)),
    }
    let rows = match db.reservations() {
        Ok(rows) => rows,
        Err(e) => {
            checks.push(Check::fail("acknowledged writes are in the database", e));
            return checks;
        }
    };
    let (mut lost, mut purchases) = (Vec::new(), HashMap::<&str, usize>::new());
    let mut acknowledged = 0;
    for r in records.iter().filter(|r| r.acknowledged()) {
        let (id, expected): (&str, &[&str]) = match (&r.op, &r.created) {
            (Op::Reserve { .. }, Some(id)) => {
                (id, &["reserved", "purchased", "expired", "canceled"])
            }
            (Op::Purchase { reservation }, _) => {
                *purchases.entry(reservation).or_insert(0) += 1;
                (reservation, &["purchased"])
            }
            (Op::Cancel { reservation }, _) => (reservation, &["canceled"]),
            _ => continue,
        };
        acknowledged += 1;
        match rows.get(id) {
            Some(row) if expected.contains(&row.status.as_str()) => {}
            Some(row) => lost.push(format!(
                "{} {id} acknowledged, stored as {}",
                r.op.name(),
                row.status
            )),
            None => lost.push(format!(
                "{} {id} acknowledged, not in the database",
                r.op.name()
            )),
        }
    }
    checks.push(Check::new(
        "every acknowledged write is in the database",
        &lost,
        format!("{acknowledged} acknowledged writes"),
    ));
    let twice: Vec<String> = purchases
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("{id} purchased {n} times"))
        .collect();
    checks.push(Check::new(
        "no reservation purchased twice",
        &twice,
        format!("{} purchases", purchases.len()),
    ));
    let late: Vec<String> = rows
        .values()
        .filter(|r| r.status == "purchased" && !r.in_time)
        .map(|r| format!("{} purchased after its hold expired", r.id))
        .collect();
    let bought = rows.values().filter(|r| r.status == "purchased").count();
    checks.push(Check::new(
        "every purchase decided before its hold expired",
        &late,
        format!("{bought} purchased"),
    ));
    let mismatched: Vec<String> = events
        .iter()
        .filter_map(|e| {
            crate::servers::ticketctl(ticketctl, &db.url(), &["events", "check", &e.to_string()])
                .err()
                .map(|why| format!("event {e}: {why}"))
        })
        .collect();
    checks.push(Check::new(
        "counters equal a recount",
        &mismatched,
        format!("`ticketctl events check` on {} events", events.len()),
    ));
    checks
}

/// How long after `from` the first acknowledged request that started after it ended.
pub fn recovery(records: &[Record], from: Duration) -> Option<Duration> {
    records
        .iter()
        .filter(|r| r.started >= from && r.acknowledged() && !matches!(r.op, Op::Read { .. }))
        .map(|r| r.ended.saturating_sub(from))
        .min()
}
