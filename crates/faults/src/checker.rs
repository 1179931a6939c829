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
    pub fn new(name: &'static str, failures: &[String], checked: String) -> Self {
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

    /// Passes with `passed` when `ok`, else fails with `failed`.
    pub fn when(name: &'static str, ok: bool, passed: String, failed: String) -> Self {
        Self {
            name,
            result: if ok { Ok(passed) } else { Err(failed) },
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
            Ok((0, failed, _)) => Check::fail(
                "no oversell at any sampled instant",
                format!("no sample could be taken ({failed} attempts failed)"),
            ),
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
    let (mut lost, mut purchases) = (Vec::new(), HashMap::<&str, Vec<&str>>::new());
    let mut acknowledged = 0;
    for r in records.iter().filter(|r| r.acknowledged()) {
        let (id, expected): (&str, &[&str]) = match (&r.op, &r.created) {
            (Op::Reserve { .. }, Some(id)) => {
                (id, &["reserved", "purchased", "expired", "canceled"])
            }
            (
                Op::Purchase {
                    reservation,
                    reference,
                    ..
                },
                _,
            ) => {
                purchases.entry(reservation).or_default().push(reference);
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
    if acknowledged == 0 {
        lost.push("no write was acknowledged: nothing to check".into());
    }
    checks.push(Check::new(
        "every acknowledged write is in the database",
        &lost,
        format!("{acknowledged} acknowledged writes"),
    ));
    if let Some(check) = purchased_once(records, &purchases, &rows) {
        checks.push(check);
    }
    let late: Vec<String> = rows
        .values()
        .filter(|r| r.status == "purchased" && !r.in_time)
        .map(|r| format!("{} purchased after its hold expired", r.id))
        .collect();
    let bought = rows.values().filter(|r| r.status == "purchased").count();
    // Where the workload bought nothing (reserves only), there is nothing to check.
    if bought > 0 {
        checks.push(Check::new(
            "every purchase decided before its hold expired",
            &late,
            format!("{bought} purchased"),
        ));
    }
    checks.push(outbox(db, &rows));
    checks.extend(counters(db, ticketctl, events));
    checks
}

/// The outbox agrees with the rows: each event's messages are numbered 1, 2, 3, ... with no
/// gap or repeat; every reservation has its `reservation.created` first and, once final, the
/// one message of its final status; no message tells of a change its row does not show.
fn outbox(db: &Db, rows: &HashMap<String, crate::db::Row>) -> Check {
    const NAME: &str = "every change has its message, numbered without a gap";
    let messages = match db.messages() {
        Ok(messages) => messages,
        Err(e) => return Check::fail(NAME, e),
    };
    let mut wrong = Vec::new();
    let mut next: HashMap<i64, i64> = HashMap::new();
    let mut told: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &messages {
        let expected = next.entry(m.event_id).or_insert(1);
        if m.seq != *expected {
            wrong.push(format!(
                "event {}: message {} where {} was due",
                m.event_id, m.seq, expected
            ));
        }
        *expected = m.seq + 1;
        if let Some(id) = &m.reservation_id {
            told.entry(id.as_str()).or_default().push(m.kind.as_str());
        }
    }
    for (id, row) in rows {
        let kinds = told.get(id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let end = match row.status.as_str() {
            "purchased" => Some("reservation.purchased"),
            "canceled" => Some("reservation.canceled"),
            "expired" => Some("reservation.expired"),
            _ => None,
        };
        let finals: Vec<&&str> = kinds
            .iter()
            .filter(|k| {
                matches!(
                    **k,
                    "reservation.purchased" | "reservation.canceled" | "reservation.expired"
                )
            })
            .collect();
        let ok = kinds.first() == Some(&"reservation.created")
            && kinds
                .iter()
                .filter(|k| **k == "reservation.created")
                .count()
                == 1
            && finals.len() == usize::from(end.is_some())
            && finals.first().map(|k| **k) == end;
        if !ok {
            wrong.push(format!("{id} is {}, its messages: {kinds:?}", row.status));
        }
    }
    wrong.truncate(20);
    Check::new(
        NAME,
        &wrong,
        format!(
            "{} messages of {} events, {} reservations",
            messages.len(),
            next.len(),
            rows.len()
        ),
    )
}

/// No hold is sold twice: the workload buys some holds a second time (fresh key, other
/// server), and no hold may get two 200s; the reference stored with a purchased hold is the
/// one of the purchase that was acknowledged (a second purchase that slipped through would
/// have overwritten it). `None` where the workload bought nothing.
fn purchased_once(
    records: &[Record],
    acknowledged: &HashMap<&str, Vec<&str>>,
    rows: &HashMap<String, crate::db::Row>,
) -> Option<Check> {
    let name = "no reservation purchased twice";
    let repeats: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.op, Op::Purchase { repeat: true, .. }))
        .collect();
    if acknowledged.is_empty() && repeats.is_empty() {
        return None;
    }
    let mut twice: Vec<String> = acknowledged
        .iter()
        .filter(|(_, refs)| refs.len() > 1)
        .map(|(id, refs)| format!("{id} purchased {} times", refs.len()))
        .collect();
    for (id, refs) in acknowledged {
        let stored = rows.get(*id).and_then(|r| r.payment_reference.as_deref());
        if refs.len() == 1 && stored.is_some_and(|s| s != refs[0]) {
            twice.push(format!(
                "{id} acknowledged with {}, stored with {stored:?}",
                refs[0]
            ));
        }
    }
    let refused = repeats
        .iter()
        .filter(|r| r.outcome.status() == Some(409))
        .count();
    if refused == 0 {
        twice.push(format!(
            "none of {} repeated purchases was refused with 409: the rule was not exercised",
            repeats.len()
        ));
    }
    Some(Check::new(
        name,
        &twice,
        format!(
            "{} holds bought; {refused} second purchases of bought holds refused",
            acknowledged.len()
        ),
    ))
}

/// How long after `from` the first acknowledged request that started after it ended.
pub fn recovery(records: &[Record], from: Duration) -> Option<Duration> {
    records
        .iter()
        .filter(|r| r.started >= from && r.acknowledged() && !matches!(r.op, Op::Read { .. }))
        .map(|r| r.ended.saturating_sub(from))
        .min()
}

/// The counters equal the checker's own recount of the rows, and the service's audit agrees.
fn counters(db: &Db, ticketctl: &Path, events: &[i64]) -> Vec<Check> {
    let mut checks = Vec::new();
    match db.recount() {
        Ok(recounts) => {
            let off: Vec<String> = recounts
                .iter()
                .filter(|r| {
                    (r.purchased_counter, r.reserved_counter) != (r.purchased_rows, r.reserved_rows)
                })
                .map(|r| format!("event {}: {r:?}", r.event))
                .collect();
            checks.push(Check::new(
                "counters equal a recount",
                &off,
                format!("the checker's own recount of {} events", recounts.len()),
            ));
        }
        Err(e) => checks.push(Check::fail("counters equal a recount", e)),
    }
    let disagreeing: Vec<String> = events
        .iter()
        .filter_map(|e| {
            crate::servers::ticketctl(ticketctl, &db.url(), &["events", "check", &e.to_string()])
                .err()
                .map(|why| format!("event {e}: {why}"))
        })
        .collect();
    checks.push(Check::new(
        "the service's own audit agrees",
        &disagreeing,
        format!("`ticketctl events check` on {} events", events.len()),
    ));
    checks
}
