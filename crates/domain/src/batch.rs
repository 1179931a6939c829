//! One write transaction for a batch of reserves, purchases and cancels, of any events: the
//! algorithm every store runs, driving the store's primitives in the one lock order (keys,
//! events by id, reservations) and deciding with [`crate::ledger`].

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::command::{Command, CommandOutcome, Operation};
use crate::error::{DomainError, StoreError};
use crate::idempotency::{ClaimOutcome, IdempotencyClaim, RenderAnswer};
use crate::ids::{EventId, ReservationId};
use crate::inventory::Inventory;
use crate::ledger::{types_of, Ledger, Released, Rules};
use crate::seating::{SeatMap, SeatMaps};
use crate::store::{KeyTerm, LockedEvent, PastDue, TypeOf, UnitOfWork, Usage};
use crate::validation::Customer;

/// Serves `commands` inside the transaction behind `uow` and returns one outcome per command,
/// in order. Nothing is written unless every step succeeds; the caller commits.
///
/// # Errors
/// Only [`DomainError::Store`], for the whole batch.
pub(crate) fn run(
    uow: &mut dyn UnitOfWork,
    commands: &[Command],
    rules: Rules,
    keep_keys_until: DateTime<Utc>,
    render: &dyn RenderAnswer,
    kept: &SeatMaps,
) -> Result<Decided, DomainError> {
    let now = rules.now;
    let mut outcomes: Vec<Option<CommandOutcome>> = vec![None; commands.len()];

    // Idempotency keys first, in key order: the first step of the lock order.
    let answering = claim_keys(uow, commands, now, keep_keys_until, &mut outcomes)?;
    let live: Vec<usize> = (0..commands.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();

    // Then every event of the batch, in id order: those reserved on, and those of the holds
    // that purchases and cancels name (a hold never changes event).
    let mut held_ids: Vec<ReservationId> = live
        .iter()
        .filter_map(|&i| commands[i].operation.reservation())
        .collect();
    held_ids.sort_unstable();
    held_ids.dedup();
    let mut event_ids: Vec<EventId> = live
        .iter()
        .filter_map(|&i| match &commands[i].operation {
            Operation::Reserve(r) => Some(r.event),
            _ => None,
        })
        .collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let events = if event_ids.is_empty() && held_ids.is_empty() {
        Vec::new()
    } else {
        uow.lock_events(&event_ids, &held_ids)?
    };

    // Then the reservations.
    let rows = if held_ids.is_empty() {
        Vec::new()
    } else {
        uow.read_reservations(&held_ids)?
    };
    if let Some(orphan) = rows
        .iter()
        .find(|r| !events.iter().any(|e| e.id == r.event_id))
    {
        return Err(StoreError::internal(format!(
            "reservation {} belongs to event {}, which is not locked",
            orphan.id, orphan.event_id
        ))
        .into());
    }

    let maps = seat_maps(uow, &events, kept)?;
    let inventory = inventory_of(uow, commands, &live, &rows, &maps)?;
    let usage = usage_of(uow, commands, &live, &events, rules)?;

    let mut ledger = Ledger::new(
        rules,
        live.iter().map(|&i| &commands[i].operation),
        &events,
        inventory,
        rows,
        usage,
    )
    .with_seats(maps);
    for &i in &live {
        let outcome = ledger.decide(&commands[i].operation, &mut |event, limit| {
            release(
                uow,
                PastDue {
                    events: vec![event],
                    now,
                    limit,
                },
            )
        })?;
        outcomes[i] = Some(CommandOutcome::Decided(outcome));
    }

    let (mut changes, maps) = ledger.into_parts();
    for i in answering {
        if let (Some(CommandOutcome::Decided(result)), Some(claim)) =
            (&outcomes[i], &commands[i].idempotency)
        {
            let answer = render.render(commands[i].operation.kind(), result);
            changes.answers.push((claim.key.clone(), answer));
        }
    }
    if !changes.is_empty() {
        uow.apply(&changes, now)?;
    }

    let outcomes = outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| StoreError::internal("a command was left undecided").into()))
        .collect::<Result<_, DomainError>>()?;
    Ok(Decided { outcomes, maps })
}

/// A batch's outcomes, one per command in order, and its events' seat maps as they are once
/// it is committed.
#[derive(Debug)]
pub(crate) struct Decided {
    pub(crate) outcomes: Vec<CommandOutcome>,
    pub(crate) maps: Vec<SeatMap>,
}

/// The seat maps of the seated events among `events`: the ones kept at the version the batch
/// locked, else read from the store (a map the batch takes is given back after its commit).
fn seat_maps(
    uow: &mut dyn UnitOfWork,
    events: &[LockedEvent],
    kept: &SeatMaps,
) -> Result<Vec<SeatMap>, DomainError> {
    let mut maps = Vec::new();
    for event in events {
        let Some(version) = event.seats else {
            continue;
        };
        if let Some(map) = kept.take(event.id, version) {
            maps.push(map);
            continue;
        }
        let seating = uow.read_seating(event.id)?.ok_or_else(|| {
            StoreError::internal(format!("event {} has lost its seating plan", event.id))
        })?;
        maps.push(SeatMap::new(
            event.id,
            seating.version,
            Arc::new(seating.plan),
            seating.holders,
        )?);
    }
    Ok(maps)
}

/// The ticket types the live commands' reserves name and the named holds hold, with their
/// quotas: read only when there are any.
fn inventory_of(
    uow: &mut dyn UnitOfWork,
    commands: &[Command],
    live: &[usize],
    rows: &[crate::Reservation],
    maps: &[SeatMap],
) -> Result<Inventory, DomainError> {
    let mut types: Vec<TypeOf> = live
        .iter()
        .filter_map(|&i| match &commands[i].operation {
            Operation::Reserve(r) => Some(r.lines.iter().map(|l| (r.event, l.ticket_type))),
            _ => None,
        })
        .flatten()
        .chain(
            rows.iter()
                .flat_map(|r| r.lines.iter().map(|l| (r.event_id, l.ticket_type))),
        )
        // A seated reserve's types are its seats' sections': any of the plan's.
        .chain(maps.iter().flat_map(|m| {
            m.plan()
                .sections()
                .iter()
                .filter_map(|s| s.ticket_type)
                .map(|t| (m.event, t))
        }))
        .collect();
    types.sort_unstable();
    types.dedup();
    if types.is_empty() {
        Ok(Inventory::default())
    } else {
        uow.read_inventory(&types)
    }
}

/// With a customer limit set, each (event, customer) pair's purchased and active tickets, for
/// the live reserves of known events.
fn usage_of(
    uow: &mut dyn UnitOfWork,
    commands: &[Command],
    live: &[usize],
    events: &[LockedEvent],
    rules: Rules,
) -> Result<Vec<Usage>, DomainError> {
    if rules.customer_limit.is_none() {
        return Ok(Vec::new());
    }
    let mut pairs: Vec<(EventId, Customer)> = live
        .iter()
        .filter_map(|&i| match &commands[i].operation {
            Operation::Reserve(r) => r.customer.clone().map(|c| (r.event, c)),
            _ => None,
        })
        .filter(|(event, _)| events.iter().any(|e| e.id == *event))
        .collect();
    pairs.sort();
    pairs.dedup();
    if pairs.is_empty() {
        Ok(Vec::new())
    } else {
        uow.customer_usage(&pairs, rules.now)
    }
}

/// Marks the past-due holds `due` names `expired` and reads the ticket types of their lines:
/// what a ledger, a sweep or an edit needs to free their tickets everywhere they count.
pub(crate) fn release(uow: &mut dyn UnitOfWork, due: PastDue) -> Result<Released, DomainError> {
    let holds = uow.release_past_due(due)?;
    let types = types_of(&holds);
    let inventory = if types.is_empty() {
        Inventory::default()
    } else {
        uow.read_inventory(&types)?
    };
    Ok(Released { holds, inventory })
}

/// Claims the batch's keys in key order. Settles the commands whose key was used before
/// (replay, or reuse for another request) or appears twice in the batch, and returns the
/// indices of the commands whose answers must be stored.
fn claim_keys(
    uow: &mut dyn UnitOfWork,
    commands: &[Command],
    now: DateTime<Utc>,
    keep_until: DateTime<Utc>,
    outcomes: &mut [Option<CommandOutcome>],
) -> Result<Vec<usize>, DomainError> {
    let mut keyed: Vec<(usize, &IdempotencyClaim)> = commands
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.idempotency.as_ref().map(|claim| (i, claim)))
        .collect();
    if keyed.is_empty() {
        return Ok(Vec::new());
    }
    // Stable: of two requests with one key, the earlier one claims it.
    keyed.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    let mut claiming: Vec<(usize, &IdempotencyClaim)> = Vec::with_capacity(keyed.len());
    for (i, claim) in keyed {
        if claiming.last().is_some_and(|(_, c)| c.key == claim.key) {
            outcomes[i] = Some(CommandOutcome::Decided(Err(
                DomainError::IdempotencyKeyInProgress,
            )));
        } else {
            claiming.push((i, claim));
        }
    }
    let claims: Vec<IdempotencyClaim> = claiming.iter().map(|(_, c)| (*c).clone()).collect();
    let results = uow.claim_keys(
        &claims,
        KeyTerm {
            now,
            until: keep_until,
        },
    )?;
    if results.len() != claims.len() {
        return Err(StoreError::internal(format!(
            "store answered {} claims for {} keys",
            results.len(),
            claims.len()
        ))
        .into());
    }
    let mut answering = Vec::new();
    for ((i, claim), result) in claiming.into_iter().zip(results) {
        match result {
            ClaimOutcome::Claimed => answering.push(i),
            ClaimOutcome::Existing {
                fingerprint,
                answer,
            } => {
                outcomes[i] = Some(if fingerprint == claim.fingerprint {
                    CommandOutcome::Replayed(answer)
                } else {
                    CommandOutcome::Decided(Err(DomainError::IdempotencyKeyReused))
                });
            }
        }
    }
    Ok(answering)
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;
    use mockall::Sequence;

    use super::*;
    use crate::command::{Cancel, Purchase, Reserve};
    use crate::idempotency::{Fingerprint, IdempotencyKey, StoredAnswer};
    use crate::store::MockUnitOfWork;
    use crate::test_support::{hold_row, rules, Echo, NOW};
    use crate::validation::Quantity;

    fn reserve(event: i64) -> Command {
        Command::new(Operation::Reserve(Reserve::untyped(
            EventId::new(event),
            Quantity::ONE,
            None,
        )))
    }

    fn keyed(mut command: Command, key: &str, fingerprint: &str) -> Command {
        command.idempotency = Some(IdempotencyClaim {
            key: IdempotencyKey::parse(key).unwrap(),
            fingerprint: Fingerprint(fingerprint.into()),
        });
        command
    }

    fn locked(id: i64, capacity: i32) -> LockedEvent {
        LockedEvent {
            id: EventId::new(id),
            capacity,
            purchased: 0,
            held: 0,
            typed: false,
            seats: None,
        }
    }

    #[test]
    fn a_batch_locks_keys_then_events_in_id_order_then_reservations_then_writes_once() {
        let hold = hold_row(EventId::new(3));
        let commands = vec![
            keyed(reserve(9), "k2", "f"),
            Command::new(Operation::Purchase(Purchase {
                id: hold.id,
                payment_reference: None,
            })),
            keyed(reserve(3), "k1", "f"),
        ];
        let mut uow = MockUnitOfWork::new();
        let mut seq = Sequence::new();
        uow.expect_claim_keys()
            .withf(|claims, _| {
                claims.iter().map(|c| c.key.as_str()).collect::<Vec<_>>() == ["k1", "k2"]
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|c, _| Ok(vec![ClaimOutcome::Claimed; c.len()]));
        uow.expect_lock_events()
            .with(
                eq(vec![EventId::new(3), EventId::new(9)]),
                eq(vec![hold.id]),
            )
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(vec![locked(3, 5), locked(9, 5)]));
        let row = hold.clone();
        uow.expect_read_reservations()
            .with(eq(vec![hold.id]))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(vec![row.clone()]));
        uow.expect_apply()
            .withf(|changes, now| {
                changes.holds.len() == 2
                    && changes.statuses.len() == 1
                    && changes.answers.len() == 2
                    && *now == NOW
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        let outcomes = run(
            &mut uow,
            &commands,
            rules(None),
            NOW,
            &Echo,
            &SeatMaps::default(),
        )
        .unwrap()
        .outcomes;
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, CommandOutcome::Decided(Ok(_)))));
    }

    #[test]
    fn a_used_key_replays_its_answer_or_refuses_another_request_without_deciding_it() {
        let commands = vec![
            keyed(reserve(1), "same", "fp-1"),
            keyed(reserve(1), "other", "fp-2"),
            keyed(reserve(1), "same", "fp-1"),
        ];
        let first = StoredAnswer {
            status: 201,
            body: "{\"id\":\"x\"}".into(),
        };
        let stored = first.clone();
        let mut uow = MockUnitOfWork::new();
        uow.expect_claim_keys()
            .withf(|claims, _| claims.len() == 2)
            .returning(move |_, _| {
                Ok(vec![
                    ClaimOutcome::Existing {
                        fingerprint: Fingerprint("fp-1".into()),
                        answer: stored.clone(),
                    },
                    ClaimOutcome::Existing {
                        fingerprint: Fingerprint("fp-1".into()),
                        answer: stored.clone(),
                    },
                ])
            });
        // Nothing is left to decide: no event is locked and nothing is written.
        let outcomes = run(
            &mut uow,
            &commands,
            rules(None),
            NOW,
            &Echo,
            &SeatMaps::default(),
        )
        .unwrap()
        .outcomes;
        assert_eq!(
            outcomes,
            vec![
                CommandOutcome::Replayed(first),
                CommandOutcome::Decided(Err(DomainError::IdempotencyKeyReused)),
                CommandOutcome::Decided(Err(DomainError::IdempotencyKeyInProgress)),
            ]
        );
    }

    #[test]
    fn the_first_answer_is_stored_with_the_effect_even_when_it_is_a_refusal() {
        let commands = vec![keyed(reserve(1), "k", "f")];
        let mut uow = MockUnitOfWork::new();
        uow.expect_claim_keys()
            .returning(|c, _| Ok(vec![ClaimOutcome::Claimed; c.len()]));
        uow.expect_lock_events().returning(|_, _| {
            Ok(vec![LockedEvent {
                purchased: 1,
                ..locked(1, 1)
            }])
        });
        uow.expect_apply()
            .withf(|changes, _| {
                changes.holds.is_empty()
                    && changes.answers.len() == 1
                    && changes.answers[0].1.status == 409
            })
            .times(1)
            .returning(|_, _| Ok(()));
        let outcomes = run(
            &mut uow,
            &commands,
            rules(None),
            NOW,
            &Echo,
            &SeatMaps::default(),
        )
        .unwrap()
        .outcomes;
        assert_eq!(
            outcomes,
            vec![CommandOutcome::Decided(Err(DomainError::SoldOut))]
        );
    }

    #[test]
    fn a_store_failure_in_any_step_fails_the_whole_batch_and_writes_nothing() {
        // A reserve on a full event with past-due holds: the release fails mid-decision.
        let commands = vec![
            reserve(1),
            Command::new(Operation::Cancel(Cancel {
                id: hold_row(EventId::new(1)).id,
            })),
            reserve(1),
        ];
        let mut uow = MockUnitOfWork::new();
        uow.expect_lock_events().returning(|_, _| {
            Ok(vec![LockedEvent {
                held: 1,
                ..locked(1, 1)
            }])
        });
        uow.expect_read_reservations().returning(|_| Ok(vec![]));
        uow.expect_release_past_due()
            .times(1)
            .returning(|_| Err(StoreError::unavailable("gone").into()));
        uow.expect_apply().never();
        let failed = run(
            &mut uow,
            &commands,
            rules(None),
            NOW,
            &Echo,
            &SeatMaps::default(),
        );
        assert!(
            matches!(&failed, Err(DomainError::Store(e)) if e.kind == crate::StoreErrorKind::Unavailable),
            "{failed:?}"
        );

        // A failure before anything is decided stops the batch there.
        let mut uow = MockUnitOfWork::new();
        uow.expect_lock_events()
            .returning(|_, _| Err(StoreError::unavailable("gone").into()));
        uow.expect_read_reservations().never();
        uow.expect_apply().never();
        assert!(run(
            &mut uow,
            &commands,
            rules(None),
            NOW,
            &Echo,
            &SeatMaps::default()
        )
        .is_err());
    }

    #[test]
    fn customer_usage_is_read_only_with_a_limit_and_only_for_known_events() {
        let mut command = reserve(1);
        if let Operation::Reserve(r) = &mut command.operation {
            r.customer = Some(Customer::parse("acct").unwrap());
        }
        let mut unknown = command.clone();
        if let Operation::Reserve(r) = &mut unknown.operation {
            r.event = EventId::new(2);
        }
        let commands = vec![command, unknown];
        let mut uow = MockUnitOfWork::new();
        uow.expect_lock_events()
            .returning(|_, _| Ok(vec![locked(1, 10)]));
        uow.expect_customer_usage()
            .withf(|pairs, _| pairs.len() == 1 && pairs[0].0 == EventId::new(1))
            .times(1)
            .returning(|pairs, _| Ok(vec![(pairs[0].0, pairs[0].1.clone(), 2)]));
        uow.expect_apply().returning(|_, _| Ok(()));
        let outcomes = run(
            &mut uow,
            &commands,
            rules(Some(2)),
            NOW,
            &Echo,
            &SeatMaps::default(),
        )
        .unwrap()
        .outcomes;
        assert_eq!(
            outcomes
                .into_iter()
                .map(|o| o.decided().map(|r| r.map(|_| ())))
                .collect::<Vec<_>>(),
            vec![
                Some(Err(DomainError::CustomerLimitReached)),
                Some(Err(DomainError::EventNotFound))
            ]
        );
    }
}
