//! The results: a table for people, JSON for machines, and the `--verify` verdict.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::load::{Outcome, Plan};
use super::mix::Op;

pub struct Report {
    summary: Value,
    verify: Option<(Vec<String>, Value)>,
    granted: u64,
}

fn counts(event: &Value) -> Option<(i64, i64, i64, i64)> {
    let field = |name: &str| event[name].as_i64();
    Some((
        field("capacity")?,
        field("purchased")?,
        field("reserved")?,
        field("available")?,
    ))
}

fn per_second(count: u64, seconds: f64) -> f64 {
    // Counts stay far below 2^52, where f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / seconds.max(1e-9)
}

fn millis(micros: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let micros = micros as f64;
    micros / 1000.0
}

fn latency(h: &Histogram<u64>) -> Value {
    json!({
        "p50": millis(h.value_at_quantile(0.50)),
        "p90": millis(h.value_at_quantile(0.90)),
        "p99": millis(h.value_at_quantile(0.99)),
        "p99_9": millis(h.value_at_quantile(0.999)),
        "max": millis(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

impl Report {
    pub fn new(plan: &Plan, outcome: &Outcome) -> Self {
        let seconds = outcome.elapsed.as_secs_f64();
        let requests: u64 = outcome.statuses.values().sum();
        let granted = outcome
            .statuses
            .get(&(Op::Reserve, 201))
            .copied()
            .unwrap_or(0);
        let mut statuses = Map::new();
        for ((op, status), n) in &outcome.statuses {
            let entry = statuses.entry(op.name()).or_insert_with(|| json!({}));
            entry[status.to_string()] = json!(n);
        }
        let mut all = Histogram::<u64>::new_from(
            outcome
                .latency
                .values()
                .next()
                .unwrap_or(&Histogram::new(3).unwrap_or_else(|_| unreachable!())),
        );
        for h in outcome.latency.values() {
            let _ = all.add(h);
        }
        let by_op: Map<String, Value> = outcome
            .latency
            .iter()
            .map(|(op, h)| (op.name().to_owned(), latency(h)))
            .collect();
        let summary = json!({
            "url": plan.base,
            "events": plan.events.len(),
            "event": plan.events.first(),
            "concurrency": plan.concurrency,
            "threads": plan.threads,
            "seconds": seconds,
            "requests": requests,
            "requests_per_second": per_second(requests, seconds),
            "reservations_granted": granted,
            "reservations_per_second": per_second(granted, seconds),
            "statuses": statuses,
            "transport_errors": outcome.errors,
            "unavailable_without_retry_after": outcome.unavailable_without_retry_after,
            "latency_ms": latency(&all),
            "latency_ms_by_request": by_op,
        });
        Self {
            summary,
            verify: None,
            granted,
        }
    }

    /// Checks the events read after the run against the tickets granted on each.
    pub fn verify(&mut self, events: &[Value], granted: &std::collections::BTreeMap<i64, u64>) {
        let mut problems = Vec::new();
        let mut totals = (0, 0, 0, 0);
        for event in events {
            let id = event["id"].as_i64().unwrap_or_default();
            let Some((capacity, purchased, reserved, available)) = counts(event) else {
                problems.push(format!("the event answer lacks counts: {event}"));
                continue;
            };
            if purchased + reserved + available != capacity {
                problems.push(format!(
                    "event {id}: purchased {purchased} + reserved {reserved} + available {available} != capacity {capacity}"
                ));
            }
            if available < 0 || reserved < 0 || purchased < 0 {
                problems.push(format!("event {id}: negative count: {event}"));
            }
            let given = granted.get(&id).copied().unwrap_or(0);
            if i64::try_from(given).unwrap_or(i64::MAX) > capacity {
                problems.push(format!(
                    "event {id}: {given} tickets granted, capacity is {capacity}"
                ));
            }
            totals = (
                totals.0 + capacity,
                totals.1 + purchased,
                totals.2 + reserved,
                totals.3 + available,
            );
        }
        let summary = json!({
            "events": events.len(),
            "capacity": totals.0,
            "purchased": totals.1,
            "reserved": totals.2,
            "available": totals.3,
        });
        self.verify = Some((problems, summary));
    }

    /// With seats: each event's seat map shows as many seats held and sold as its counters
    /// say, and no seat twice (one letter per seat).
    pub fn verify_seats(&mut self, events: &[Value], maps: &[Value]) {
        let Some((problems, _)) = self.verify.as_mut() else {
            return;
        };
        for (event, map) in events.iter().zip(maps) {
            let id = event["id"].as_i64().unwrap_or_default();
            let letters: String = map["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["status"].as_str().map(str::to_owned))
                .collect();
            let (held, sold) = (letters.matches('H').count(), letters.matches('S').count());
            let counted = (event["reserved"].as_u64(), event["purchased"].as_u64());
            if counted != (Some(held as u64), Some(sold as u64)) {
                problems.push(format!(
                    "event {id}: the seat map shows {held} held and {sold} sold, the counters {counted:?}"
                ));
            }
            if event["capacity"].as_u64() != Some(letters.len() as u64) {
                problems.push(format!(
                    "event {id}: {} seats on the map, capacity {}",
                    letters.len(),
                    event["capacity"]
                ));
            }
        }
    }

    /// What `--verify` found wrong, if anything.
    pub fn verdict(&self) -> Option<String> {
        self.verify
            .as_ref()
            .and_then(|(problems, _)| (!problems.is_empty()).then(|| problems.join("; ")))
    }

    pub fn to_json(&self) -> Value {
        let mut out = self.summary.clone();
        if let Some((problems, event)) = &self.verify {
            out["verify"] =
                json!({ "ok": problems.is_empty(), "problems": problems, "event": event });
        }
        out
    }

    pub fn to_table(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ticketctl bench: {} {} event(s) from {}, {} connections on {} client thread(s), {:.1} s",
            s["url"].as_str().unwrap_or_default(),
            s["events"],
            s["event"],
            s["concurrency"],
            s["threads"],
            s["seconds"].as_f64().unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  {:<14}{:>10}  {:>10.1}/s",
            "requests",
            s["requests"],
            s["requests_per_second"].as_f64().unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  {:<14}{:>10}  {:>10.1}/s",
            "reservations",
            s["reservations_granted"],
            s["reservations_per_second"].as_f64().unwrap_or_default()
        );
        if let Some(statuses) = s["statuses"].as_object() {
            for (op, by_status) in statuses {
                let line: Vec<String> = by_status
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(status, n)| format!("{status}: {n}"))
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = writeln!(out, "  {:<18}{}", format!("{op} answers"), line.join("   "));
            }
        }
        if let Some(errors) = s["transport_errors"].as_object().filter(|e| !e.is_empty()) {
            for (error, n) in errors {
                let _ = writeln!(out, "  {:<14}{n} × {error}", "no answer");
            }
        }
        let row = |name: &str, l: &Value| {
            format!(
                "  {:<14}p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
                name,
                l["p50"].as_f64().unwrap_or_default(),
                l["p90"].as_f64().unwrap_or_default(),
                l["p99"].as_f64().unwrap_or_default(),
                l["p99_9"].as_f64().unwrap_or_default(),
                l["max"].as_f64().unwrap_or_default()
            )
        };
        out.push_str(&row("latency (ms)", &s["latency_ms"]));
        if let Some(by_op) = s["latency_ms_by_request"]
            .as_object()
            .filter(|m| m.len() > 1)
        {
            for (op, l) in by_op {
                out.push_str(&row(&format!("  {op}"), l));
            }
        }
        if let Some((problems, event)) = &self.verify {
            if problems.is_empty() {
                let _ = writeln!(
                    out,
                    "  {:<14}ok on {} event(s): purchased {} + reserved {} + available {} = capacity {}; {} granted, none above its event's capacity",
                    "verify", event["events"], event["purchased"], event["reserved"], event["available"], event["capacity"], self.granted
                );
            } else {
                let _ = writeln!(out, "  {:<14}FAILED: {}", "verify", problems.join("; "));
            }
        }
        out
    }
}
