//! `ticketctl bench`: a load generator for operators to test a deployment over HTTP.
//!
//! Keep-alive connections from one or more client threads, a progress bar while it runs, and
//! at the end throughput, answers by status and latency percentiles from an HDR histogram.
//! `--verify` reads the event afterwards and fails unless its counts add up to its capacity and
//! no more tickets were granted than it has.

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
    let event = match (args.event, args.capacity) {
        (Some(id), _) => id,
        (None, Some(capacity)) => create_event(&base, capacity, args.admin_token.as_deref())?,
        (None, None) => {
            return Err(CliError::Config(
                "bench needs --event ID or --capacity N".into(),
            ))
        }
    };
    let plan = Plan {
        base: base.clone(),
        event,
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
        let shown = get_json(&base, &format!("/api/events/{event}"))?;
        report.verify(&shown);
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

/// One blocking request on a one-shot runtime: for the set-up and the verification.
fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), CliError> {
    let url = format!("{base}{path}");
    let method = method.to_owned();
    let token = token.map(str::to_owned);
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let mut req = match method.as_str() {
            "POST" => client.post(&url),
            _ => client.get(&url),
        };
        if let Some(token) = token {
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
        Ok((res.status().as_u16(), json))
    })
}

fn get_json(base: &str, path: &str) -> Result<Value, CliError> {
    match request(base, "GET", path, None, None)? {
        (200, json) => Ok(json),
        (status, json) => Err(CliError::Config(format!(
            "GET {path} answered {status}: {json}"
        ))),
    }
}

fn create_event(base: &str, capacity: i64, token: Option<&str>) -> Result<i64, CliError> {
    let token = token.ok_or_else(|| {
        CliError::Config("--capacity creates an event: it needs --admin-token".into())
    })?;
    let body = serde_json::json!({ "name": "ticketctl bench", "capacity": capacity });
    match request(base, "POST", "/api/events", Some(token), Some(body))? {
        (201, json) => json["id"]
            .as_i64()
            .ok_or_else(|| CliError::Config("created event has no id".into())),
        (status, json) => Err(CliError::Config(format!(
            "creating the bench event answered {status}: {json}"
        ))),
    }
}
