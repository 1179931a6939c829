//! `ticketctl`: one binary for the service and its maintenance.

mod args;
mod bench;
mod error;
mod logging;
mod serve;
mod store;

use std::process::ExitCode;

use api::dto::{EventBody, EventList, QuotaBody, TicketTypeBody};
use clap::Parser;
use domain::{
    Capacity, DomainError, EventId, EventName, EventPatch, HoldTtl, NewEvent, NewQuota,
    NewTicketType, Policy, Quantity, QuotaId, QuotaPatch, Ticketing,
};
use serde_json::json;

use crate::args::{
    Cli, Command, EventsCommand, QuotasCommand, ReservationsCommand, SeatsCommand,
    TicketTypesCommand, WebhooksCommand,
};
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

fn parse_quota_id(raw: &str) -> Result<QuotaId, CliError> {
    raw.trim()
        .parse()
        .map_err(|_| CliError::Config(format!("not a quota id: {raw:?}")))
}

fn quotas(command: QuotasCommand, url: &str) -> Result<(), CliError> {
    let store = Store::open(url, None)?;
    let t = maintenance_ticketing(&store)?;
    let summary = match command {
        QuotasCommand::Create {
            event,
            name,
            capacity,
        } => {
            let new = NewQuota {
                name: EventName::parse(&name)?,
                capacity: Capacity::new(capacity)?,
            };
            t.create_quota(parse_event_id(&event)?, &new)?
        }
        QuotasCommand::Update {
            event,
            quota,
            name,
            capacity,
        } => {
            let patch = QuotaPatch {
                name: name.as_deref().map(EventName::parse).transpose()?,
                capacity: capacity.map(Capacity::new).transpose()?,
            };
            if patch.name.is_none() && patch.capacity.is_none() {
                return Err(CliError::Config(
                    "nothing to change: give --name, --capacity or both".into(),
                ));
            }
            t.update_quota(parse_event_id(&event)?, parse_quota_id(&quota)?, &patch)?
        }
    };
    print_json(&QuotaBody::from(summary))
}

fn seats(command: SeatsCommand, url: &str) -> Result<(), CliError> {
    let store = Store::open(url, None)?;
    let t = maintenance_ticketing(&store)?;
    let view = match command {
        SeatsCommand::Load { event, file } => {
            let event = parse_event_id(&event)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Config(format!("cannot read {}: {e}", file.display())))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Config(format!("{} is not JSON: {e}", file.display())))?;
            let Some(body) = body.as_object() else {
                return Err(CliError::Config(format!(
                    "{} must hold a JSON object with sections",
                    file.display()
                )));
            };
            let plan = api::seats::parse_plan(body).map_err(|e| CliError::Config(e.body()))?;
            t.load_seating(event, &plan)?
        }
        SeatsCommand::Show { event } => {
            let event = parse_event_id(&event)?;
            t.seat_maps(&[event])?
                .pop()
                .ok_or(domain::DomainError::SeatingNotFound)?
        }
    };
    println!("{}", api::seats::seat_map_json(&view));
    Ok(())
}

fn webhooks(command: WebhooksCommand, url: &str) -> Result<(), CliError> {
    let store = Store::open(url, None)?;
    let t = maintenance_ticketing(&store)?;
    let out = match command {
        WebhooksCommand::Add { url, events } => {
            let body = serde_json::json!({"url": url, "events": events});
            let new = body
                .as_object()
                .map(api::webhooks::parse_request)
                .ok_or_else(|| CliError::Config("unreachable: a JSON object".into()))?
                .map_err(|e| CliError::Config(e.body()))?;
            let secret = api::webhooks::new_secret();
            let endpoint = t.add_endpoint(&new, &secret)?;
            serde_json::to_value(api::webhooks::WebhookBody::of(endpoint, Some(secret)))
        }
        WebhooksCommand::List => {
            let all: Vec<_> = t
                .endpoints()?
                .into_iter()
                .map(|e| api::webhooks::WebhookBody::of(e, None))
                .collect();
            serde_json::to_value(serde_json::json!({"webhooks": all}))
        }
        WebhooksCommand::Remove { id } => {
            let id: domain::webhook::EndpointId = id
                .parse()
                .map_err(|_| CliError::Config(format!("--id {id:?} is not an endpoint id")))?;
            t.remove_endpoint(id)?;
            Ok(serde_json::json!({"id": id.get(), "removed": true}))
        }
    };
    let out = out.map_err(|e| CliError::Config(e.to_string()))?;
    println!("{out}");
    Ok(())
}

fn ticket_types(command: TicketTypesCommand, url: &str) -> Result<(), CliError> {
    let store = Store::open(url, None)?;
    let t = maintenance_ticketing(&store)?;
    match command {
        TicketTypesCommand::Create {
            event,
            name,
            quotas,
            max_per_reservation,
        } => {
            let new = NewTicketType {
                name: EventName::parse(&name)?,
                quotas: quotas
                    .iter()
                    .filter(|q| !q.trim().is_empty())
                    .map(|q| parse_quota_id(q))
                    .collect::<Result<_, _>>()?,
                max_per_reservation: max_per_reservation
                    .map(|m| Quantity::new(m, 10_000))
                    .transpose()?,
            };
            let created = t.create_ticket_type(parse_event_id(&event)?, &new)?;
            print_json(&TicketTypeBody::from(created))
        }
        TicketTypesCommand::List { event } => {
            let inventory = t.inventory(parse_event_id(&event)?)?;
            let types: Vec<TicketTypeBody> = inventory
                .ticket_types
                .into_iter()
                .map(TicketTypeBody::from)
                .collect();
            print_json(&types)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let url = cli.database_url.as_str();
    match cli.command {
        Command::Serve(args) => serve::run(&args, url),
        Command::Bench(args) => bench::run(&args),
        Command::Quotas(command) => quotas(command, url),
        Command::Seats(command) => seats(command, url),
        Command::TicketTypes(command) => ticket_types(command, url),
        Command::Webhooks(command) => webhooks(command, url),
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
            store.prepare_embedded()?;
            let ttl =
                HoldTtl::from_seconds(600).ok_or_else(|| CliError::Config("invalid TTL".into()))?;
            let policy = Policy {
                outbox_retention: chrono::TimeDelta::hours(i64::from(args.outbox_retention_hours)),
                ..Policy::with_hold_ttl(ttl)
            };
            let report = store.ticketing(policy).expire_due(args.batch_size)?;
            tracing::info!(
                marked = report.holds,
                keys_purged = report.keys,
                "expiry run done"
            );
            println!("expired {}", report.holds);
            if report.keys > 0 {
                println!("purged {} idempotency keys", report.keys);
            }
            if report.messages > 0 {
                println!("pruned {} outbox messages", report.messages);
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
        Command::Events(EventsCommand::Check { id, all: false }) => {
            let id = parse_event_id(id.as_deref().unwrap_or_default())?;
            let store = Store::open(url, None)?;
            let (report, ok) = check(&maintenance_ticketing(&store)?, id)?;
            print_json(&report)?;
            if ok {
                Ok(())
            } else {
                Err(CliError::Inconsistent(format!("event {id} is")))
            }
        }
        Command::Events(EventsCommand::Check { all: true, .. }) => check_all(url),
    }
}

/// `events check`: the event's, its quotas' and its types' counters next to a recount.
/// Returns the report and whether everything matched.
fn check(ticketing: &Ticketing, id: EventId) -> Result<(serde_json::Value, bool), CliError> {
    let audit = ticketing.audit_event(id)?;
    let quotas: Vec<serde_json::Value> = audit
        .quotas
        .iter()
        .map(|q| {
            json!({
                "quota_id": q.id.get(),
                "capacity": q.capacity,
                "purchased_counter": q.counters.purchased,
                "reserved_counter": q.counters.held,
                "purchased_tickets": q.purchased_tickets,
                "reserved_tickets": q.reserved_tickets,
                "active_tickets": q.active_tickets,
            })
        })
        .collect();
    let types: Vec<serde_json::Value> = audit
        .types
        .iter()
        .map(|t| {
            json!({
                "ticket_type_id": t.id.get(),
                "purchased_counter": t.counters.purchased,
                "reserved_counter": t.counters.held,
                "purchased_tickets": t.purchased_tickets,
                "reserved_tickets": t.reserved_tickets,
            })
        })
        .collect();
    let mut report = json!({
        "event_id": id.get(),
        "capacity": audit.capacity,
        "purchased_counter": audit.purchased_counter,
        "reserved_counter": audit.held_counter,
        "purchased_tickets": audit.purchased_tickets,
        "reserved_tickets": audit.reserved_tickets,
        "active_tickets": audit.active_tickets,
        "counters_match": audit.counters_match(),
        "within_capacity": audit.within_capacity(),
    });
    if !quotas.is_empty() || !types.is_empty() {
        report["quotas"] = json!(quotas);
        report["ticket_types"] = json!(types);
    }
    Ok((report, audit.counters_match() && audit.within_capacity()))
}

/// `events check --all`: every event, a page at a time, one JSON line each; an event deleted
/// between the page and its audit is skipped.
fn check_all(url: &str) -> Result<(), CliError> {
    let store = Store::open(url, None)?;
    let ticketing = maintenance_ticketing(&store)?;
    let (mut checked, mut failed) = (0_usize, Vec::new());
    let mut after = None;
    loop {
        let page = ticketing.list_events(after, domain::MAX_PAGE_SIZE)?;
        for summary in &page.events {
            let id = summary.event.id;
            let (report, ok) = match check(&ticketing, id) {
                Err(CliError::Domain(DomainError::EventNotFound)) => continue,
                other => other?,
            };
            println!("{report}");
            checked += 1;
            if !ok {
                failed.push(id.get());
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    tracing::info!(checked, inconsistent = failed.len(), "events checked");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Inconsistent(format!(
            "{} of {checked} events ({}) are",
            failed.len(),
            failed
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
