//! `ticketctl`: one binary for the service and its maintenance.

mod args;
mod bench;
mod error;
mod logging;
mod serve;
mod store;

use std::process::ExitCode;

use api::dto::{EventBody, EventList};
use clap::Parser;
use domain::{Capacity, EventId, EventName, EventPatch, HoldTtl, NewEvent, Policy, Ticketing};
use serde_json::json;

use crate::args::{Cli, Command, EventsCommand, ReservationsCommand};
use crate::error::CliError;
use crate::store::Store;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help and --version.
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, default_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.one_line());
            ExitCode::FAILURE
        }
    }
}

/// The TTL does not matter to the maintenance commands, which create no holds.
fn maintenance_ticketing(store: &Store) -> Result<Ticketing, CliError> {
    store.prepare_embedded()?;
    let ttl = HoldTtl::from_seconds(600).ok_or_else(|| CliError::Config("invalid TTL".into()))?;
    Ok(store.ticketing(Policy::with_hold_ttl(ttl)))
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Config(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn parse_event_id(raw: &str) -> Result<EventId, CliError> {
    raw.parse()
        .map_err(|_| CliError::Config(format!("not an event id: {raw:?}")))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let url = cli.database_url.as_str();
    match cli.command {
        Command::Serve(args) => serve::run(&args, url),
        Command::Bench(args) => bench::run(&args),
        Command::Migrate => {
            let store = Store::open(url, None)?;
            let applied = store.migrate()?;
            if applied.is_empty() {
                println!("migrations: up to date");
            } else {
                println!("migrations: applied {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Reservations(ReservationsCommand::Expire(args)) => {
            let store = Store::open(url, Some(&args.pool))?;
            let report = maintenance_ticketing(&store)?.expire_due(args.batch_size)?;
            tracing::info!(
                marked = report.holds,
                keys_purged = report.keys,
                "expiry run done"
            );
            println!("expired {}", report.holds);
            if report.keys > 0 {
                println!("purged {} idempotency keys", report.keys);
            }
            Ok(())
        }
        Command::Events(EventsCommand::Create { name, capacity }) => {
            let new = NewEvent {
                name: EventName::parse(&name)?,
                capacity: Capacity::new(capacity)?,
            };
            let store = Store::open(url, None)?;
            let created = maintenance_ticketing(&store)?.create_event(&new)?;
            print_json(&EventBody::from(created))
        }
        Command::Events(EventsCommand::Update { id, name, capacity }) => {
            let id = parse_event_id(&id)?;
            let patch = EventPatch {
                name: name.as_deref().map(EventName::parse).transpose()?,
                capacity: capacity.map(Capacity::new).transpose()?,
            };
            if patch.is_empty() {
                return Err(CliError::Config(
                    "nothing to change: give --name, --capacity or both".into(),
                ));
            }
            let store = Store::open(url, None)?;
            let updated = maintenance_ticketing(&store)?.update_event(id, &patch)?;
            print_json(&EventBody::from(updated))
        }
        Command::Events(EventsCommand::List { limit, after }) => {
            let after = after.as_deref().map(parse_event_id).transpose()?;
            let store = Store::open(url, None)?;
            let page = maintenance_ticketing(&store)?.list_events(after, limit)?;
            print_json(&EventList::from(page))
        }
        Command::Events(EventsCommand::Show { id }) => {
            let id = parse_event_id(&id)?;
            let store = Store::open(url, None)?;
            let summary = maintenance_ticketing(&store)?.event_summary(id)?;
            print_json(&EventBody::from(summary))
        }
        Command::Events(EventsCommand::Check { id }) => {
            let id = parse_event_id(&id)?;
            let store = Store::open(url, None)?;
            let audit = maintenance_ticketing(&store)?.audit_event(id)?;
            print_json(&json!({
                "event_id": id.get(),
                "capacity": audit.capacity,
                "purchased_counter": audit.purchased_counter,
                "reserved_counter": audit.held_counter,
                "purchased_tickets": audit.purchased_tickets,
                "reserved_tickets": audit.reserved_tickets,
                "active_tickets": audit.active_tickets,
                "counters_match": audit.counters_match(),
                "within_capacity": audit.within_capacity(),
            }))?;
            if audit.counters_match() && audit.within_capacity() {
                Ok(())
            } else {
                Err(CliError::Inconsistent(id.get()))
            }
        }
    }
}
