//! `faults`: runs `ticketctl serve` processes against a store, drives a concurrent workload,
//! injects faults (PostgreSQL restarted, stalled or out of connections, servers killed or
//! stopped, holds racing their expiry), and checks the complete history against the database.
//!
//! ```text
//! faults [--short] [--only a,b] [--ticketctl PATH] [--out FILE]
//! ```
//!
//! Exit status 0 when every check of every scenario passed.

mod checker;
mod client;
mod db;
mod failover;
mod freeze;
mod history;
mod receiver;
mod scenarios;
mod servers;
mod workload;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::scenarios::{Ctx, Report};

/// Fault scenarios with a history checker.
#[derive(Debug, Parser)]
#[command(name = "faults", version)]
struct Args {
    /// The ticketctl binary under test
    #[arg(
        long,
        env = "FAULTS_TICKETCTL",
        default_value = "target/release/ticketctl"
    )]
    ticketctl: PathBuf,
    /// Short phases and small data (CI); the same faults
    #[arg(long, env = "FAULTS_SHORT")]
    short: bool,
    /// Comma-separated scenario names (default: all); `--list` shows them
    #[arg(long, env = "FAULTS_ONLY", value_delimiter = ',')]
    only: Vec<String>,
    /// List the scenarios and exit
    #[arg(long)]
    list: bool,
    /// Also write the results as Markdown to this file
    #[arg(long, env = "FAULTS_OUT")]
    out: Option<PathBuf>,
    /// Where server logs and SQLite files go
    #[arg(long, env = "FAULTS_DIR", default_value = "target/faults")]
    dir: PathBuf,
    /// Only run a webhook receiver on this loopback port (0: any) for --receive-seconds, print
    /// `port N` at once and `received N` at the end (the benchmark's fast receiver)
    #[arg(long)]
    receive: Option<u16>,
    /// How long --receive runs
    #[arg(long, default_value_t = 60)]
    receive_seconds: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(port) = args.receive {
        return match receiver::Receiver::start_on(port) {
            Ok(receiver) => {
                println!("port {}", receiver.port);
                std::thread::sleep(std::time::Duration::from_secs(args.receive_seconds));
                println!("received {}", receiver.receipts().len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let all = scenarios::all();
    if args.list {
        for s in &all {
            println!("{:<20} {:<9} {}", s.name, s.store, s.what);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(unknown) = args
        .only
        .iter()
        .find(|n| !all.iter().any(|s| s.name == n.as_str()))
    {
        eprintln!("error: no scenario {unknown:?} (see --list)");
        return ExitCode::from(2);
    }
    if !args.ticketctl.is_file() {
        eprintln!(
            "error: {} not found: build it first (cargo build --release -p ticketctl) or pass --ticketctl",
            args.ticketctl.display()
        );
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("error: {}: {e}", args.dir.display());
        return ExitCode::FAILURE;
    }
    let ctx = Ctx {
        ticketctl: args.ticketctl.clone(),
        short: args.short,
        dir: args.dir.clone(),
    };
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = false;
    for scenario in all
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|n| n == s.name))
    {
        println!(
            "\n== {} ({}): {}",
            scenario.name, scenario.store, scenario.what
        );
        match (scenario.run)(&ctx) {
            Ok(mut report) => {
                report.what = scenario.what;
                print!("{}", render(&report));
                failed |= !report.passed();
                reports.push(report);
            }
            Err(e) if e.starts_with(failover::SKIP) => {
                println!("   SKIPPED: {e}");
                skipped.push(format!("{}: {e}", scenario.name));
            }
            Err(e) => {
                println!("   could not run: {e}");
                failed = true;
            }
        }
    }
    let mut summary = summary(&reports, args.short);
    for s in &skipped {
        let _ = writeln!(summary, "SKIPPED (not run, not passed): {s}");
    }
    println!("\n{summary}");
    if let Some(out) = &args.out {
        let mut doc = summary.clone();
        for r in &reports {
            doc.push('\n');
            doc.push_str(&render(r));
        }
        if let Err(e) = std::fs::write(out, doc) {
            eprintln!("error: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn statuses(r: &Report) -> String {
    r.statuses
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One scenario as Markdown: figures, faults, every check.
fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {} ({})\n\n{}\n", r.name, r.store, r.what);
    let _ = writeln!(
        out,
        "- {} requests in {:.1} s; answers: {}",
        r.requests,
        r.seconds,
        statuses(r)
    );
    for f in &r.faults {
        let _ = writeln!(out, "- fault: {f}");
    }
    if let Some(t) = r.recovery {
        let _ = writeln!(out, "- recovery: {:.2} s", t.as_secs_f64());
    }
    for n in &r.notes {
        let _ = writeln!(out, "- {n}");
    }
    let _ = writeln!(out, "\n| check | result |\n|---|---|");
    for c in &r.checks {
        let result = match &c.result {
            Ok(detail) => format!("ok — {detail}"),
            Err(why) => format!("**FAILED** — {why}"),
        };
        let _ = writeln!(out, "| {} | {} |", c.name, result.replace('|', "\\|"));
    }
    out
}

fn summary(reports: &[Report], short: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | store | requests | answers | recovery | checks |\n|---|---|---:|---|---:|---|"
    );
    for r in reports {
        let passed = r.checks.iter().filter(|c| c.result.is_ok()).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {}/{} {} |",
            r.name,
            r.store,
            r.requests,
            statuses(r),
            r.recovery
                .map_or("—".into(), |t| format!("{:.2} s", t.as_secs_f64())),
            passed,
            r.checks.len(),
            if r.passed() { "ok" } else { "FAILED" }
        );
    }
    let _ = writeln!(out, "\n({} run)", if short { "short" } else { "full" });
    out
}
