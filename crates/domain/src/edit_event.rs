//! Use case: an operator changes an event's name or capacity.

use crate::error::DomainError;
use crate::event::{EventPatch, EventSnapshot, EventSummary, NewEvent};
use crate::ids::EventId;
use crate::ledger::freed;
use crate::outbox::{Message, MessageKind};
use crate::store::{Changes, PastDue, Timestamp, UnitOfWork};
use crate::ticketing::Ticketing;
use crate::validation::{Capacity, EventName};

impl Ticketing {
    /// Applies `patch` under the event's row lock, so it cannot race a reserve: a capacity
    /// below the tickets purchased and held by active holds is refused and nothing changes.
    ///
    /// # Errors
    /// [`DomainError::EventNotFound`], [`DomainError::CapacityBelowSold`] or
    /// [`DomainError::Store`].
    pub fn update_event(
        &self,
        id: EventId,
        patch: &EventPatch,
    ) -> Result<EventSummary, DomainError> {
        let now = self.clock.now();
        let (summary, has_inventory) = self.transact(|uow| update(uow, id, patch, now))?;
        if has_inventory {
            // With its quotas and types, as a read shows them.
            return self.event_summary(id);
        }
        Ok(summary)
    }
}

fn update(
    uow: &mut dyn UnitOfWork,
    id: EventId,
    patch: &EventPatch,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(EventSummary, bool), DomainError> {
    let Some(locked) = uow.lock_events(&[id], &[])?.pop() else {
        return Err(DomainError::EventNotFound);
    };
    if patch.capacity.is_some() && locked.seats.is_some() {
        return Err(DomainError::Validation {
            field: "capacity",
            message: "The capacity of an event with a seating plan is its number of seats.".into(),
        });
    }
    let current = uow
        .event_snapshot(id, now)?
        .ok_or(DomainError::EventNotFound)?;
    let mut held = locked.held;
    let mut past_due = current.past_due;
    let capacity = match patch.capacity {
        Some(capacity) => capacity,
        None => Capacity::new(i64::from(locked.capacity))?,
    };
    if i64::from(capacity.get()) < i64::from(locked.purchased) + i64::from(held) && past_due > 0 {
        // The counters still hold past-due tickets: free them all, so the decision is taken on
        // the truth and the store's own check (counters within capacity) accepts the change.
        let tickets = release_all_past_due(uow, id, now)?;
        held = i32::try_from(i64::from(held) - tickets).unwrap_or(0);
        past_due = 0;
    }
    if i64::from(capacity.get()) < i64::from(locked.purchased) + i64::from(held) {
        return Err(DomainError::CapacityBelowSold);
    }
    let name = match &patch.name {
        Some(name) => name.clone(),
        None => EventName::parse(&current.event.name)?,
    };
    let event = uow.update_event(id, &NewEvent { name, capacity }, now)?;
    uow.apply(
        &Changes {
            messages: vec![Message::of_event(id, MessageKind::EventUpdated)],
            ..Changes::default()
        },
        now,
    )?;
    let summary = EventSummary::from_snapshot(EventSnapshot {
        event,
        purchased: locked.purchased,
        held,
        past_due,
        has_inventory: current.has_inventory,
    });
    Ok((summary, current.has_inventory))
}

/// Marks every past-due hold of the locked `event` `expired` and frees their tickets on the
/// event, their types and their quotas: decisions under a lowered capacity are then taken on
/// the truth, and the store's own check (counters within capacity) accepts them. Returns the
/// tickets freed.
pub(crate) fn release_all_past_due(
    uow: &mut dyn UnitOfWork,
    event: EventId,
    now: Timestamp,
) -> Result<i64, DomainError> {
    let released = crate::batch::release(
        uow,
        PastDue {
            events: vec![event],
            now,
            limit: u32::MAX,
        },
    )?;
    let changes = freed(&released.holds, &released.inventory)?;
    if !changes.is_empty() {
        uow.apply(&changes, now)?;
    }
    Ok(released.holds.iter().map(|h| i64::from(h.quantity)).sum())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::test_support::{memory_ticketing, new_event};
    use crate::{Quantity, Reserve};

    fn reserve(t: &Ticketing, event: EventId, quantity: u32) {
        t.reserve(Reserve::untyped(
            event,
            Quantity::new(i64::from(quantity), 10).unwrap(),
            None,
        ))
        .unwrap();
    }

    #[test]
    fn update_event_changes_name_and_capacity_and_keeps_the_counts() {
        let (t, _) = memory_ticketing(None);
        let id = t.create_event(&new_event(10)).unwrap().event.id;
        reserve(&t, id, 3);
        let patch = EventPatch {
            name: Some(EventName::parse("Matinee").unwrap()),
            capacity: Some(Capacity::new(4).unwrap()),
        };
        let s = t.update_event(id, &patch).unwrap();
        assert_eq!(
            (
                s.event.name.as_str(),
                s.event.capacity,
                s.reserved,
                s.available
            ),
            ("Matinee", 4, 3, 1)
        );
        assert_eq!(t.event_summary(id).unwrap(), s);
    }

    #[test]
    fn update_event_fails_with_capacity_below_sold_and_changes_nothing() {
        let (t, _) = memory_ticketing(None);
        let id = t.create_event(&new_event(10)).unwrap().event.id;
        reserve(&t, id, 5);
        let patch = EventPatch {
            name: Some(EventName::parse("Renamed").unwrap()),
            capacity: Some(Capacity::new(4).unwrap()),
        };
        assert_eq!(
            t.update_event(id, &patch),
            Err(DomainError::CapacityBelowSold)
        );
        let s = t.event_summary(id).unwrap();
        assert_eq!((s.event.name.as_str(), s.event.capacity), ("Gala", 10));
    }

    #[test]
    fn past_due_holds_do_not_count_against_a_lower_capacity() {
        let (t, clock) = memory_ticketing(None);
        let id = t.create_event(&new_event(10)).unwrap().event.id;
        reserve(&t, id, 5);
        clock.advance(TimeDelta::seconds(600));
        reserve(&t, id, 2);
        let patch = EventPatch {
            name: None,
            capacity: Some(Capacity::new(2).unwrap()),
        };
        let s = t.update_event(id, &patch).unwrap();
        assert_eq!((s.event.capacity, s.reserved, s.available), (2, 2, 0));
        let audit = t.audit_event(id).unwrap();
        assert!(
            audit.counters_match() && audit.within_capacity(),
            "{audit:?}"
        );
    }

    #[test]
    fn update_event_fails_with_event_not_found_for_an_unknown_event() {
        let (t, _) = memory_ticketing(None);
        assert_eq!(
            t.update_event(EventId::new(9), &EventPatch::default()),
            Err(DomainError::EventNotFound)
        );
    }
}
