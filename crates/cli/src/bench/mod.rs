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
    if args.ticket_types > 0 && args.lines > args.ticket_types {
        return Err(CliError::Config(
            "--lines must be at most --ticket-types".into(),
        ));
    }
    let types = match (args.ticket_types, args.capacity) {
        (0, _) => Vec::new(),
        (n, Some(capacity)) => inventories(
            &base,
            &events,
            n,
            args.quotas,
            capacity,
            args.admin_token.as_deref(),
        )?,
        (_, None) => {
            return Err(CliError::Config(
                "--ticket-types makes the events' types: give --capacity".into(),
            ))
        }
    };
    let seating = seating(args, mix, &base, &events)?;
    let plan = Plan {
        base: base.clone(),
        events,
        types,
        lines: usize::try_from(args.lines).unwrap_or(1),
        seating,
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
        // Each granted reserve holds one ticket per line.
        report.verify(&shown, &outcome.granted);
        if plan.seating.is_some() {
            report.verify_seats(&shown, &read_seat_maps(&base, &plan.events)?);
        }
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
                "PUT" => client.put(&url),
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

/// With `--seats`: loads the events' plans (and fills them), and returns the plan's rows and
/// seats per row.
fn seating(
    args: &BenchArgs,
    mix: Mix,
    base: &str,
    events: &[i64],
) -> Result<Option<(u32, u32)>, CliError> {
    if args.seats == 0 {
        return if mix.seated() {
            Err(CliError::Config(
                "best, seat, seatmap and seatmap304 need --seats".into(),
            ))
        } else {
            Ok(None)
        };
    }
    if args.capacity.is_none() {
        return Err(CliError::Config(
            "--seats gives the events it creates a plan: give --capacity".into(),
        ));
    }
    seat_events(
        base,
        events,
        args.seats,
        args.seats_per_row,
        args.admin_token.as_deref(),
    )?;
    if args.fill > 0.0 {
        fill(base, events, args.seats, args.fill)?;
    }
    let rows = args.seats.div_ceil(args.seats_per_row);
    Ok(Some((rows, args.seats_per_row.min(args.seats))))
}

/// Gives each event a plan of `seats` seats: section `A`, rows `1`, `2`, ... of `per_row`.
fn seat_events(
    base: &str,
    events: &[i64],
    seats: u32,
    per_row: u32,
    token: Option<&str>,
) -> Result<(), CliError> {
    let mut rows = Vec::new();
    let mut left = seats;
    while left > 0 {
        let n = left.min(per_row);
        rows.push(serde_json::json!({"name": (rows.len() + 1).to_string(), "seats": n}));
        left -= n;
    }
    let plan = serde_json::json!({"sections": [{"name": "A", "rows": rows}]});
    let calls = events
        .iter()
        .map(|e| ("PUT", format!("/api/events/{e}/seats"), Some(plan.clone())))
        .collect();
    for (status, json) in requests(base, token, calls)? {
        if status != 200 {
            return Err(CliError::Config(format!(
                "loading a bench seating plan answered {status}: {json}"
            )));
        }
    }
    Ok(())
}

/// Holds about `share` of each event's seats with best-available holds of 10, before the run.
fn fill(base: &str, events: &[i64], seats: u32, share: f64) -> Result<(), CliError> {
    if !(0.0..=0.95).contains(&share) {
        return Err(CliError::Config("--fill is a share from 0 to 0.95".into()));
    }
    // In 0..=9,500 (the share is checked above, an event has at most 100,000 seats).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let holds = (f64::from(seats) * share / 10.0).floor() as usize;
    let body = serde_json::json!({"best_available": {"quantity": 10, "together": false}});
    let calls = events
        .iter()
        .flat_map(|e| {
            let body = body.clone();
            (0..holds).map(move |_| {
                (
                    "POST",
                    format!("/api/events/{e}/reserve"),
                    Some(body.clone()),
                )
            })
        })
        .collect();
    for (status, json) in requests(base, None, calls)? {
        if status != 201 {
            return Err(CliError::Config(format!(
                "filling a bench event answered {status}: {json}"
            )));
        }
    }
    Ok(())
}

/// Reads each event's seat map.
fn read_seat_maps(base: &str, events: &[i64]) -> Result<Vec<Value>, CliError> {
    let calls = events
        .iter()
        .map(|e| ("GET", format!("/api/events/{e}/seats"), None))
        .collect();
    requests(base, None, calls)?
        .into_iter()
        .map(|answer| match answer {
            (200, json) => Ok(json),
            (status, json) => Err(CliError::Config(format!(
                "reading a bench seat map answered {status}: {json}"
            ))),
        })
        .collect()
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

/// Gives each event `quotas` quotas of `capacity` tickets and `types` ticket types drawing from
/// them (type i from quota i, the next-to-last from the first two, the last from the root
/// only), and returns each event's type ids, in the order of `events`.
fn inventories(
    base: &str,
    events: &[i64],
    types: u32,
    quotas: u32,
    capacity: i64,
    token: Option<&str>,
) -> Result<Vec<Vec<i64>>, CliError> {
    let ids = |answers: Vec<(u16, Value)>, what: &str| {
        answers
            .into_iter()
            .map(|(status, json)| match (status, json["id"].as_i64()) {
                (201, Some(id)) => Ok(id),
                _ => Err(CliError::Config(format!(
                    "creating a bench {what} answered {status}: {json}"
                ))),
            })
            .collect::<Result<Vec<i64>, CliError>>()
    };
    let mut out = Vec::with_capacity(events.len());
    for &event in events {
        let calls = (0..quotas)
            .map(|i| {
                let body =
                    serde_json::json!({ "name": format!("quota {i}"), "capacity": capacity });
                ("POST", format!("/api/events/{event}/quotas"), Some(body))
            })
            .collect();
        let quota_ids = ids(requests(base, token, calls)?, "quota")?;
        let calls = (0..types)
            .map(|i| {
                let i = usize::try_from(i).unwrap_or(0);
                let last = usize::try_from(types).unwrap_or(1) - 1;
                let draws: Vec<i64> = if i == last {
                    Vec::new()
                } else if i + 1 == last && quota_ids.len() >= 2 {
                    quota_ids[..2].to_vec()
                } else {
                    quota_ids.get(i).copied().into_iter().collect()
                };
                let body = serde_json::json!({ "name": format!("type {i}"), "quotas": draws });
                (
                    "POST",
                    format!("/api/events/{event}/ticket-types"),
                    Some(body),
                )
            })
            .collect();
        out.push(ids(requests(base, token, calls)?, "ticket type")?);
    }
    Ok(out)
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
