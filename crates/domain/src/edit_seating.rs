//! Use cases: an operator loads an event's seating plan; anyone reads its seat map.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::edit_event::release_all_past_due;
use crate::error::DomainError;
use crate::ids::{EventId, QuotaId};
use crate::inventory::{Inventory, NewQuota};
use crate::outbox::{Message, MessageKind};
use crate::seating::{NewPlan, SeatMap, SeatPlan};
use crate::store::{Changes, Timestamp, TypeOf, UnitOfWork};
use crate::ticketing::Ticketing;
use crate::validation::{Capacity, EventName};

/// An event's seat map as one read shows it.
#[derive(Debug, Clone)]
pub struct SeatMapView {
    /// The event.
    pub event: EventId,
    /// The version of what it shows ([`SeatMap::shown_version`]): the same exactly as long as
    /// no seat changes.
    pub version: i64,
    /// The map.
    pub map: Arc<SeatMap>,
    /// The instant it shows.
    pub now: Timestamp,
}

impl Ticketing {
    /// Replaces the seating plan of `event` with `plan`, under the event's lock: refused while
    /// any of its tickets is held by an active hold or sold (past-due holds are released
    /// first). The plan sets the event's capacity to its number of seats, and each named quota
    /// its sections' ticket types draw from to the seats that count in it.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`], [`DomainError::SeatingLocked`],
    /// [`DomainError::Validation`] on `sections` (see [`NewPlan::check`]; a ticket type that is
    /// not the event's; on an event with types, a section without one), or
    /// [`DomainError::Store`].
    pub fn load_seating(&self, event: EventId, plan: &NewPlan) -> Result<SeatMapView, DomainError> {
        let checked = plan.check()?;
        let now = self.clock.now();
        self.transact(|uow| save(uow, event, &checked, now))?;
        self.seats.forget(event);
        self.seat_maps(&[event])?
            .pop()
            .ok_or(DomainError::SeatingNotFound)
    }

    /// The seat maps of the events among `ids` that have a seating plan, as they are now:
    /// one statement asks the store for their seat versions, and a map kept at that version
    /// (by this process's last batch or read) is shown as it is; another is read whole.
    ///
    /// # Errors
    /// [`DomainError::Store`].
    pub fn seat_maps(&self, ids: &[EventId]) -> Result<Vec<SeatMapView>, DomainError> {
        let versions = self.read(|r| r.seat_versions(ids))?;
        let mut views = Vec::with_capacity(versions.len());
        for (event, version) in versions {
            let map = match self.seats.get(event) {
                Some(kept) if kept.version >= version => kept,
                _ => {
                    let Some(seating) = self.read(|r| r.seating(event))? else {
                        continue;
                    };
                    let map = SeatMap::new(
                        event,
                        seating.version,
                        Arc::new(seating.plan),
                        seating.holders,
                    )?;
                    self.seats.keep(map.clone());
                    Arc::new(map)
                }
            };
            let now = self.clock.now();
            views.push(SeatMapView {
                event,
                version: map.shown_version(now),
                map,
                now,
            });
        }
        Ok(views)
    }
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::Validation {
        field: "sections",
        message: message.into(),
    }
}

fn save(
    uow: &mut dyn UnitOfWork,
    event: EventId,
    plan: &SeatPlan,
    now: Timestamp,
) -> Result<(), DomainError> {
    let Some(locked) = uow.lock_events(&[event], &[])?.pop() else {
        return Err(DomainError::EventNotFound);
    };
    let mut held = i64::from(locked.held);
    if held > 0 {
        held -= release_all_past_due(uow, event, now)?;
    }
    if locked.purchased > 0 || held > 0 {
        return Err(DomainError::SeatingLocked);
    }
    let mut types: Vec<TypeOf> = plan
        .sections()
        .iter()
        .filter_map(|s| s.ticket_type)
        .map(|t| (event, t))
        .collect();
    types.sort_unstable();
    types.dedup();
    let inventory = if types.is_empty() {
        Inventory::default()
    } else {
        uow.read_inventory(&types)?
    };
    if let Some((_, stranger)) = types.iter().find(|(_, t)| {
        inventory
            .ticket_type(*t)
            .is_none_or(|known| known.ticket_type.event_id != event)
    }) {
        return Err(invalid(format!(
            "The ticket type {stranger} is not this event's."
        )));
    }
    if locked.typed && plan.sections().iter().any(|s| s.ticket_type.is_none()) {
        return Err(invalid(
            "This event has ticket types: every section must name the one its seats are sold as.",
        ));
    }
    uow.save_seating(event, plan, now)?;
    uow.apply(
        &Changes {
            messages: vec![Message::of_event(event, MessageKind::EventUpdated)],
            ..Changes::default()
        },
        now,
    )?;
    // Each named quota holds the seats of the sections whose types draw from it.
    let by_type = plan.seats_by_type();
    let mut seats_of: BTreeMap<QuotaId, i64> = BTreeMap::new();
    for t in &inventory.types {
        let seats = by_type.get(&Some(t.ticket_type.id)).copied().unwrap_or(0);
        for quota in &t.ticket_type.quotas {
            *seats_of.entry(*quota).or_default() += seats;
        }
    }
    if seats_of.is_empty() {
        return Ok(());
    }
    let ids: Vec<QuotaId> = seats_of.keys().copied().collect();
    for (quota, _) in uow.read_quotas(event, &ids)? {
        let set = NewQuota {
            name: EventName::parse(&quota.name)?,
            capacity: Capacity::new(seats_of.get(&quota.id).copied().unwrap_or(1))?,
        };
        uow.update_quota(&quota, &set, now)?;
    }
    Ok(())
}
