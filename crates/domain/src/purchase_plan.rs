//! The decision for a batch of purchases, taken by a store inside the transaction that has
//! locked the reservations' events and rows.
//!
//! Requests are decided in arrival order as if served one at a time: when the same hold is
//! asked for twice, the first purchase wins and the second answers `already_purchased`.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::ids::{EventId, ReservationId};
use crate::reservation::{decide_transition, Reservation, ReservationStatus, TransitionDecision};
use crate::validation::PaymentReference;

/// One purchase request of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRequest {
    /// The hold to purchase.
    pub id: ReservationId,
    /// What the client records with the purchase.
    pub payment_reference: Option<PaymentReference>,
}

/// What the store must do for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseStep {
    /// Mark the hold `purchased` with this reference; answer with the updated reservation.
    Buy {
        /// The hold.
        id: ReservationId,
        /// The reference to record.
        payment_reference: Option<PaymentReference>,
    },
    /// Mark the past-due hold `expired`, releasing its ticket; answer
    /// [`DomainError::InvalidOrExpired`].
    Expire {
        /// The hold.
        id: ReservationId,
    },
    /// Change nothing; answer with this error.
    Refuse(DomainError),
}

/// How an event's counters change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterChange {
    /// Added to the `held` counter (negative: holds left `reserved`).
    pub held: i32,
    /// Added to the `purchased` counter.
    pub purchased: i32,
}

/// The decision for a whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchasePlan {
    /// One step per request, in order.
    pub steps: Vec<PurchaseStep>,
    /// The counter changes per event, in event id order (the lock order).
    pub counters: BTreeMap<EventId, CounterChange>,
}

/// Decides `requests` in order against `current`, the locked rows of the holds that exist.
pub fn decide_purchases<S: BuildHasher>(
    current: &HashMap<ReservationId, Reservation, S>,
    requests: &[PurchaseRequest],
    now: DateTime<Utc>,
) -> PurchasePlan {
    // Statuses as they stand after the steps decided so far.
    let mut status: HashMap<ReservationId, ReservationStatus> =
        current.iter().map(|(id, r)| (*id, r.status)).collect();
    let mut counters: BTreeMap<EventId, CounterChange> = BTreeMap::new();
    let steps = requests
        .iter()
        .map(|request| {
            let Some(row) = current.get(&request.id) else {
                return PurchaseStep::Refuse(DomainError::ReservationNotFound);
            };
            let now_status = status.get(&request.id).copied().unwrap_or(row.status);
            match decide_transition(
                now_status,
                row.expires_at,
                now,
                ReservationStatus::Purchased,
            ) {
                TransitionDecision::Proceed => {
                    status.insert(request.id, ReservationStatus::Purchased);
                    let change = counters.entry(row.event_id).or_default();
                    change.held -= 1;
                    change.purchased += 1;
                    PurchaseStep::Buy {
                        id: request.id,
                        payment_reference: request.payment_reference.clone(),
                    }
                }
                TransitionDecision::ExpireThenRefuse => {
                    status.insert(request.id, ReservationStatus::Expired);
                    counters.entry(row.event_id).or_default().held -= 1;
                    PurchaseStep::Expire { id: request.id }
                }
                TransitionDecision::Refuse(err) => PurchaseStep::Refuse(err),
            }
        })
        .collect();
    PurchasePlan { steps, counters }
}

impl PurchasePlan {
    /// The answers, given the rows the store updated for the `Buy` steps.
    pub fn outcomes(
        &self,
        bought: &HashMap<ReservationId, Reservation>,
    ) -> Vec<Result<Reservation, DomainError>> {
        self.steps
            .iter()
            .map(|step| match step {
                PurchaseStep::Buy { id, .. } => bought
                    .get(id)
                    .cloned()
                    // The guard refused a row the plan bought: only a concurrent writer outside
                    // the lock protocol can cause it; answer as the guard saw it.
                    .ok_or(DomainError::AlreadyPurchased),
                PurchaseStep::Expire { .. } => Err(DomainError::InvalidOrExpired),
                PurchaseStep::Refuse(err) => Err(err.clone()),
            })
            .collect()
    }

    /// The holds to mark `purchased`, with their references.
    pub fn buys(&self) -> impl Iterator<Item = (ReservationId, Option<&PaymentReference>)> {
        self.steps.iter().filter_map(|s| match s {
            PurchaseStep::Buy {
                id,
                payment_reference,
            } => Some((*id, payment_reference.as_ref())),
            _ => None,
        })
    }

    /// The holds to mark `expired`.
    pub fn expiries(&self) -> impl Iterator<Item = ReservationId> + '_ {
        self.steps.iter().filter_map(|s| match s {
            PurchaseStep::Expire { id } => Some(*id),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn hold(event: i64, status: ReservationStatus, expires: i64) -> Reservation {
        Reservation {
            id: ReservationId::generate(at(0)),
            event_id: EventId::new(event),
            status,
            purchased_at: (status == ReservationStatus::Purchased).then(|| at(0)),
            expires_at: Some(at(expires)),
            payment_reference: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn request(id: ReservationId) -> PurchaseRequest {
        PurchaseRequest {
            id,
            payment_reference: None,
        }
    }

    fn rows(holds: &[&Reservation]) -> HashMap<ReservationId, Reservation> {
        holds.iter().map(|r| (r.id, (*r).clone())).collect()
    }

    #[test]
    fn the_first_purchase_of_a_hold_wins_and_the_rest_answer_already_purchased() {
        let h = hold(1, ReservationStatus::Reserved, 60);
        let plan = decide_purchases(
            &rows(&[&h]),
            &[request(h.id), request(h.id), request(h.id)],
            at(1),
        );
        assert!(matches!(plan.steps[0], PurchaseStep::Buy { id, .. } if id == h.id));
        assert_eq!(
            plan.steps[1..],
            [
                PurchaseStep::Refuse(DomainError::AlreadyPurchased),
                PurchaseStep::Refuse(DomainError::AlreadyPurchased)
            ]
        );
        assert_eq!(
            plan.counters[&EventId::new(1)],
            CounterChange {
                held: -1,
                purchased: 1
            }
        );
    }

    #[test]
    fn a_past_due_hold_is_expired_once_then_refused() {
        let h = hold(2, ReservationStatus::Reserved, 60);
        let plan = decide_purchases(&rows(&[&h]), &[request(h.id), request(h.id)], at(60));
        assert_eq!(
            plan.steps,
            vec![
                PurchaseStep::Expire { id: h.id },
                PurchaseStep::Refuse(DomainError::InvalidOrExpired)
            ]
        );
        assert_eq!(
            plan.counters[&EventId::new(2)],
            CounterChange {
                held: -1,
                purchased: 0
            }
        );
        assert_eq!(
            plan.outcomes(&HashMap::new()),
            vec![Err(DomainError::InvalidOrExpired); 2]
        );
    }

    #[test]
    fn unknown_purchased_and_canceled_holds_are_refused_without_counter_changes() {
        let bought = hold(3, ReservationStatus::Purchased, 60);
        let canceled = hold(3, ReservationStatus::Canceled, 60);
        let unknown = ReservationId::generate(at(0));
        let plan = decide_purchases(
            &rows(&[&bought, &canceled]),
            &[request(unknown), request(bought.id), request(canceled.id)],
            at(1),
        );
        assert_eq!(
            plan.steps,
            vec![
                PurchaseStep::Refuse(DomainError::ReservationNotFound),
                PurchaseStep::Refuse(DomainError::AlreadyPurchased),
                PurchaseStep::Refuse(DomainError::InvalidOrExpired),
            ]
        );
        assert!(plan.counters.is_empty());
    }

    #[test]
    fn counters_are_grouped_per_event_in_id_order() {
        let a = hold(9, ReservationStatus::Reserved, 60);
        let b = hold(4, ReservationStatus::Reserved, 60);
        let c = hold(4, ReservationStatus::Reserved, 0);
        let plan = decide_purchases(
            &rows(&[&a, &b, &c]),
            &[request(a.id), request(b.id), request(c.id)],
            at(1),
        );
        let events: Vec<_> = plan.counters.keys().copied().collect();
        assert_eq!(events, vec![EventId::new(4), EventId::new(9)]);
        assert_eq!(
            plan.counters[&EventId::new(4)],
            CounterChange {
                held: -2,
                purchased: 1
            }
        );
        assert_eq!(plan.buys().count(), 2);
        assert_eq!(plan.expiries().collect::<Vec<_>>(), vec![c.id]);
    }

    proptest! {
        /// A batch decides exactly as serving its requests one at a time would.
        #[test]
        fn a_batch_equals_serving_the_purchases_one_by_one(
            statuses in proptest::collection::vec(0..4usize, 1..6),
            picks in proptest::collection::vec((0..8usize, 0..3i64), 0..20),
        ) {
            let holds: Vec<Reservation> = statuses.iter().enumerate()
                .map(|(i, s)| hold(i64::try_from(i % 2).unwrap_or(0), ReservationStatus::ALL[*s], 30))
                .collect();
            let current: HashMap<_, _> = holds.iter().map(|h| (h.id, h.clone())).collect();
            let unknown = ReservationId::generate(at(0));
            let requests: Vec<_> = picks.iter().map(|(i, _)| request(holds.get(*i).map_or(unknown, |h| h.id))).collect();
            let now = at(picks.first().map_or(0, |(_, t)| t * 20));
            let plan = decide_purchases(&current, &requests, now);

            let mut serial = current.clone();
            for (request, step) in requests.iter().zip(&plan.steps) {
                let expected = match serial.get_mut(&request.id) {
                    None => PurchaseStep::Refuse(DomainError::ReservationNotFound),
                    Some(row) => match decide_transition(row.status, row.expires_at, now, ReservationStatus::Purchased) {
                        TransitionDecision::Proceed => { row.status = ReservationStatus::Purchased; PurchaseStep::Buy { id: row.id, payment_reference: None } }
                        TransitionDecision::ExpireThenRefuse => { row.status = ReservationStatus::Expired; PurchaseStep::Expire { id: row.id } }
                        TransitionDecision::Refuse(e) => PurchaseStep::Refuse(e),
                    },
                };
                prop_assert_eq!(step, &expected);
            }
            let bought = plan.buys().count();
            let purchased: i32 = plan.counters.values().map(|c| c.purchased).sum();
            prop_assert_eq!(usize::try_from(purchased).unwrap_or(0), bought);
        }
    }
}
