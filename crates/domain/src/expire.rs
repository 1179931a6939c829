//! Use case: mark past-due holds `expired` and purge old idempotency records, in bounded
//! batches.

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::ledger::freed;
use crate::store::{PastDue, UnitOfWork};
use crate::ticketing::Ticketing;

/// How many holds one expiry transaction marks at most, unless told otherwise. The
/// transaction holds its events' row locks while it marks them and commits, so this bounds how
/// long a reserve of those events waits. Sweeping a backlog of 1,000,000 past-due holds under
/// load on the 2-core development machine, a hold cost about 100 µs to mark and 100 µs to
/// commit: with 1,000 or 500 per transaction, reserves waited just over 100 ms in most runs;
/// with 250, never (the sweep takes 77 s instead of 40 s; docs/reliability.md).
pub const DEFAULT_EXPIRE_BATCH: u32 = 250;

/// What an expiry run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpiryReport {
    /// Holds marked `expired`.
    pub holds: u64,
    /// Idempotency records deleted because they outlived their TTL.
    pub keys: u64,
    /// Outbox messages deleted because they outlived the retention.
    pub messages: u64,
}

impl Ticketing {
    /// Marks every hold that is past due now `expired`, one short transaction per batch of at
    /// most `batch` holds (each locks only the events of its holds), then deletes the
    /// idempotency records that have expired and the outbox messages older than the retention,
    /// in batches too.
    ///
    /// The time is read once, so a run ends even while new holds keep falling due. It stops at
    /// the first batch that marks nothing rather than the first short one: a batch comes up
    /// short when a concurrent reserve or sweep released some of its rows, not only at the end.
    ///
    /// # Errors
    /// [`DomainError::Store`]; the batches committed before the failure stay committed.
    pub fn expire_due(&self, batch: u32) -> Result<ExpiryReport, DomainError> {
        let batch = batch.max(1);
        let now = self.clock.now();
        let mut report = ExpiryReport::default();
        loop {
            let marked = self.transact(|uow| expire_batch(uow, now, batch))?;
            report.holds += u64::from(marked);
            if marked == 0 {
                break;
            }
        }
        loop {
            let purged = self.transact(|uow| uow.purge_keys(now, batch))?;
            report.keys += u64::from(purged);
            if purged == 0 {
                break;
            }
        }
        let before = now - self.policy.outbox_retention;
        loop {
            let pruned = self.transact(|uow| uow.prune_messages(before, batch))?;
            report.messages += u64::from(pruned);
            if pruned == 0 {
                return Ok(report);
            }
        }
    }
}

fn expire_batch(
    uow: &mut dyn UnitOfWork,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u32, DomainError> {
    let mut due = uow.due_events(now, limit)?;
    due.sort_unstable();
    due.dedup();
    if due.is_empty() {
        return Ok(0);
    }
    let events: Vec<_> = uow
        .lock_events(&due, &[])?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let released = crate::batch::release(
        uow,
        PastDue {
            events: events.clone(),
            now,
            limit,
        },
    )?;
    let changes = freed(&released.holds, &released.inventory)?;
    if !changes.is_empty() {
        uow.apply(&changes, now)?;
    }
    Ok(u32::try_from(released.holds.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use mockall::predicate::eq;

    use super::*;
    use crate::store::{LockedEvent, MockUnitOfWork, ReleasedHold};
    use crate::test_support::{memory_ticketing, new_event, NOW};
    use crate::{EventId, Quantity, ReservationId, Reserve};

    #[test]
    fn expire_due_marks_past_due_holds_and_frees_their_tickets() {
        let (t, clock) = memory_ticketing(None);
        let event = t.create_event(&new_event(5)).unwrap().event.id;
        for quantity in [2, 1, 1] {
            t.reserve(Reserve::untyped(
                event,
                Quantity::new(quantity, 10).unwrap(),
                None,
            ))
            .unwrap();
        }
        clock.advance(TimeDelta::seconds(600));
        assert_eq!(t.expire_due(2).unwrap().holds, 3);
        let audit = t.audit_event(event).unwrap();
        assert_eq!((audit.held_counter, audit.reserved_tickets), (0, 0));
        assert_eq!(t.expire_due(2).unwrap(), ExpiryReport::default());
    }

    #[test]
    fn an_expiry_batch_locks_each_due_event_once_in_id_order_and_frees_what_it_released() {
        let mut uow = MockUnitOfWork::new();
        let (a, b, gone) = (EventId::new(2), EventId::new(7), EventId::new(9));
        // The store lists the events of the oldest due holds as it finds them: unordered, with
        // repeats, one of them deleted since.
        uow.expect_due_events()
            .with(eq(NOW), eq(10))
            .returning(move |_, _| Ok(vec![b, a, gone, b, a]));
        uow.expect_lock_events()
            .with(eq(vec![a, b, gone]), eq(vec![]))
            .times(1)
            .returning(move |_, _| {
                Ok([a, b]
                    .into_iter()
                    .map(|id| LockedEvent {
                        id,
                        capacity: 9,
                        purchased: 0,
                        held: 4,
                        typed: false,
                        seats: None,
                    })
                    .collect())
            });
        // Only the events it could lock.
        uow.expect_release_past_due()
            .withf(move |due| due.events == [a, b] && due.now == NOW && due.limit == 10)
            .times(1)
            .returning(move |_| {
                Ok([(a, 3), (b, 1), (a, 1)]
                    .into_iter()
                    .map(|(event, quantity)| ReleasedHold {
                        id: ReservationId::generate(NOW, event),
                        event,
                        quantity,
                        lines: vec![],
                        seats: Vec::new(),
                    })
                    .collect())
            });
        let decided = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = std::sync::Arc::clone(&decided);
        uow.expect_apply().times(1).returning(move |changes, _| {
            *seen.lock().unwrap() = Some(changes.clone());
            Ok(())
        });
        assert_eq!(expire_batch(&mut uow, NOW, 10), Ok(3));
        let changes = decided.lock().unwrap().take().unwrap();
        let held: Vec<(EventId, i64)> =
            changes.counters.iter().map(|(e, d)| (*e, d.held)).collect();
        assert_eq!(held, vec![(a, -4), (b, -1)]);
        assert!(changes.holds.is_empty() && changes.statuses.is_empty());
    }

    #[test]
    fn an_expiry_batch_with_nothing_due_locks_and_writes_nothing() {
        let mut uow = MockUnitOfWork::new();
        uow.expect_due_events().returning(|_, _| Ok(vec![]));
        uow.expect_lock_events().never();
        uow.expect_release_past_due().never();
        uow.expect_apply().never();
        assert_eq!(expire_batch(&mut uow, NOW, 10), Ok(0));
    }
}
