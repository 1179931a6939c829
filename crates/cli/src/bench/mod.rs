//! `ticketctl bench`: a load generator for operators to test a deployment over HTTP.
//!
//! Keep-alive connections from one or more client threads, a progress bar while it runs, and
//! at the end throughput, answers by status and latency percentiles from an HDR histogram.
//! `--verify` reads the events afterwards and fails unless each one's counts add up to its
//! capacity and no more tickets were granted on it than it has.

mod load;
mod mix;
mod report;

use std::time::Duration;

use serde_json::Value;

pub use mix::Mix;

use crate::args::BenchArgs;
use crate::error::CliError;
use load::{run_load, Plan};
use report::Report;

pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let base = args.url.trim_end_matches('/').to_owned();
    let mix: Mix = args.mix.parse().map_err(CliError::Config)?;
    let events = match (args.event, args.capacity) {
        (Some(_), _) if args.events > 1 => {
            return Err(CliError::Config(
                "--events N creates its events: give --capacity, not --event".into(),
            ))
        }
        (Some(id), _) => vec![id],
        (None, Some(capacity)) => {
            create_events(&base, args.events, capacity, args.admin_token.as_deref())?
        }
        (None, None) => {
            return Err(CliError::Config(
                "bench needs --event ID or --capacity N".into(),
            ))
        }
    };
    let plan = Plan {
        base: base.clone(),
        events,
        concurrency: usize::from(args.concurrency),
        threads: usize::from(args.threads.min(args.concurrency)),
        duration: args
            .requests
            .is_none()
            .then(|| Duration::from_secs_f64(args.duration)),
        requests: args.requests,
        mix,
        progress: !args.json,
    };
    let outcome = run_load(&plan)?;
    let mut report = Report::new(&plan, &outcome);
    if args.verify {
        let shown = read_events(&base, &plan.events)?;
        report.verify(&shown, &outcome.granted);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json())
                .map_err(|e| CliError::Config(e.to_string()))?
        );
    } else {
        print!("{}", report.to_table());
    }
    match report.verdict() {
        Some(problem) => Err(CliError::Verify(problem)),
        None => Ok(()),
    }
}

/// Requests sent one after the other on one client and one runtime: for the set-up and the
/// verification. Each is (method, path, body); the answers come back in order.
fn requests(
    base: &str,
    token: Option<&str>,
    calls: Vec<(&'static str, String, Option<Value>)>,
) -> Result<Vec<(u16, Value)>, CliError> {
    let base = base.to_owned();
    let token = token.map(str::to_owned);
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let mut answers = Vec::with_capacity(calls.len());
        for (method, path, body) in calls {
            let url = format!("{base}{path}");
            let mut req = match method {
                "POST" => client.post(&url),
                _ => client.get(&url),
            };
            if let Some(token) = &token {
                req = req.bearer_auth(token);
            }
            let sent = match body {
                Some(body) => req.send_json(&body).await,
                None => req.send().await,
            };
            let mut res = sent.map_err(|e| CliError::Config(format!("{method} {url}: {e}")))?;
            let bytes = res
                .body()
                .await
                .map_err(|e| CliError::Config(format!("{method} {url}: {e}")))?;
            let json = serde_json::from_slice(&bytes)
                .map_err(|_| CliError::Config(format!("{method} {url}: the answer is not JSON")))?;
            answers.push((res.status().as_u16(), json));
        }
        Ok(answers)
    })
}

/// Reads each event; every read must succeed.
fn read_events(base: &str, events: &[i64]) -> Result<Vec<Value>, CliError> {
    let calls = events
        .iter()
        .map(|e| ("GET", format!("/api/events/{e}"), None))
        .collect();
    requests(base, None, calls)?
        .into_iter()
        .map(|answer| match answer {
            (200, json) => Ok(json),
            (status, json) => Err(CliError::Config(format!(
                "reading a bench event answered {status}: {json}"
            ))),
        })
        .collect()
}

/// Creates `count` events of `capacity` tickets.
fn create_events(
    base: &str,
    count: u32,
    capacity: i64,
    token: Option<&str>,
) -> Result<Vec<i64>, CliError> {
    let token = token.ok_or_else(|| {
        CliError::Config("--capacity creates events: it needs --admin-token".into())
    })?;
    let calls = (0..count)
        .map(|i| {
            let body =
                serde_json::json!({ "name": format!("ticketctl bench {i}"), "capacity": capacity });
            ("POST", "/api/events".to_owned(), Some(body))
        })
        .collect();
    requests(base, Some(token), calls)?
        .into_iter()
        .map(|answer| match answer {
            (201, json) => json["id"]
                .as_i64()
                .ok_or_else(|| CliError::Config("created event has no id".into())),
            (status, json) => Err(CliError::Config(format!(
                "creating a bench event answered {status}: {json}"
            ))),
        })
        .collect()
}
