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
            "event": plan.event,
            "concurrency": plan.concurrency,
            "threads": plan.threads,
            "seconds": seconds,
            "requests": requests,
            "requests_per_second": per_second(requests, seconds),
            "reservations_granted": granted,
            "reservations_per_second": per_second(granted, seconds),
            "statuses": statuses,
            "transport_errors": outcome.errors,
            "latency_ms": latency(&all),
            "latency_ms_by_request": by_op,
        });
        Self {
            summary,
            verify: None,
            granted,
        }
    }

    /// Checks the event read after the run.
    pub fn verify(&mut self, event: &Value) {
        let field = |name: &str| event[name].as_i64();
        let mut problems = Vec::new();
        match (
            field("capacity"),
            field("purchased"),
            field("reserved"),
            field("available"),
        ) {
            (Some(capacity), Some(purchased), Some(reserved), Some(available)) => {
                if purchased + reserved + available != capacity {
                    problems.push(format!(
                        "purchased {purchased} + reserved {reserved} + available {available} != capacity {capacity}"
                    ));
                }
                if available < 0 || reserved < 0 || purchased < 0 {
                    problems.push(format!("negative count: {event}"));
                }
                if i64::try_from(self.granted).unwrap_or(i64::MAX) > capacity {
                    problems.push(format!(
                        "{} tickets granted, capacity is {capacity}",
                        self.granted
                    ));
                }
            }
            _ => problems.push(format!("the event answer lacks counts: {event}")),
        }
        self.verify = Some((problems, event.clone()));
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
            "ticketctl bench: {} event {}, {} connections on {} client thread(s), {:.1} s",
            s["url"].as_str().unwrap_or_default(),
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
                let _ = writeln!(out, "  {:<14}{}", format!("{op} answers"), line.join("   "));
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
                    "  {:<14}ok: purchased {} + reserved {} + available {} = capacity {}; {} granted <= capacity",
                    "verify", event["purchased"], event["reserved"], event["available"], event["capacity"], self.granted
                );
            } else {
                let _ = writeln!(out, "  {:<14}FAILED: {}", "verify", problems.join("; "));
            }
        }
        out
    }
}
