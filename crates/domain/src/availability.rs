//! The availability rule of SPEC 3, and the decisions the stores take with it inside their
//! transactions.
//!
//! A store keeps two counters on each event row: `purchased` and `held` (holds with status
//! `reserved`, including past-due ones not released yet). Because `held` counts past-due holds
//! too, `capacity - purchased - held` never exceeds the true availability: deciding on the
//! counters can refuse too much, never grant too much. [`decide_reserve`] closes the gap by
//! releasing past-due holds before it refuses anyone.

use chrono::{DateTime, Utc};

use crate::reservation::ReservationStatus;

/// Whether a reservation holds a ticket right now: `reserved` and not yet due.
///
/// A hold whose `expires_at` has passed stops counting at once, whether or not anything has
/// marked it `expired` yet.
pub fn is_active(
    status: ReservationStatus,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    status == ReservationStatus::Reserved && expires_at.is_some_and(|at| at > now)
}

/// `capacity - purchased - active_reserved`: the tickets that may still be reserved.
pub fn available(capacity: i32, purchased: i64, active_reserved: i64) -> i64 {
    i64::from(capacity) - purchased - active_reserved
}

/// An event's counters, read under the event's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The event's capacity.
    pub capacity: i32,
    /// Reservations with status `purchased`.
    pub purchased: i32,
    /// Reservations with status `reserved`, past-due ones included.
    pub held: i32,
}

impl Counters {
    /// Availability as the counters see it: never more than the truth (see the module docs).
    pub fn available(self) -> i64 {
        available(
            self.capacity,
            i64::from(self.purchased),
            i64::from(self.held),
        )
    }
}

/// Which requests of a batch are granted, in the order they arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPlan {
    /// `granted[i]` says whether request `i` gets all its tickets (requests are all-or-nothing).
    pub granted: Vec<bool>,
    /// The tickets granted in all.
    pub tickets: i64,
}

impl GrantPlan {
    /// Whether some request was refused.
    pub fn refuses_any(&self) -> bool {
        self.granted.iter().any(|g| !g)
    }
}

/// Grants requests in arrival order, each all-or-nothing, while tickets remain: exactly what
/// serving the requests one at a time in that order would grant.
pub fn plan_grants(available: i64, quantities: &[u32]) -> GrantPlan {
    let mut left = available.max(0);
    let granted = quantities
        .iter()
        .map(|&q| {
            let q = i64::from(q);
            let fits = q <= left;
            if fits {
                left -= q;
            }
            fits
        })
        .collect();
    GrantPlan {
        granted,
        tickets: available.max(0) - left,
    }
}

/// The least number of past-due holds a store releases at once when it must release some, so a
/// sold-out rush does not release them one transaction at a time.
pub const LAZY_RELEASE_MIN: u32 = 1_000;

/// What a reserve transaction must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveDecision {
    /// Which requests are granted, in arrival order.
    pub granted: Vec<bool>,
    /// Past-due holds the store released (marked `expired`) in this transaction.
    pub released: u32,
    /// The new value of the event's `held` counter.
    pub held_after: i32,
}

/// Decides a batch of reserve requests on one event, inside the store's transaction that holds
/// the event's lock.
///
/// When the counters cannot grant every request, `release_past_due(limit)` is called once: the
/// store must mark up to `limit` of the event's past-due holds `expired` and return how many it
/// marked. `limit` is at least the shortfall, so a request refused afterwards is refused by the
/// truth, not by stale counters.
///
/// # Errors
/// Only the error of `release_past_due`, unchanged.
pub fn decide_reserve<E>(
    counters: Counters,
    quantities: &[u32],
    release_past_due: impl FnOnce(u32) -> Result<u32, E>,
) -> Result<ReserveDecision, E> {
    let available = counters.available();
    let mut plan = plan_grants(available, quantities);
    let mut released = 0;
    if plan.refuses_any() && counters.held > 0 {
        let demand: i64 = quantities.iter().map(|&q| i64::from(q)).sum();
        let shortfall = u32::try_from(demand - available.max(0)).unwrap_or(u32::MAX);
        released = release_past_due(shortfall.max(LAZY_RELEASE_MIN))?;
        if released > 0 {
            plan = plan_grants(available + i64::from(released), quantities);
        }
    }
    let held_after = i64::from(counters.held) - i64::from(released) + plan.tickets;
    Ok(ReserveDecision {
        granted: plan.granted,
        released,
        // The grant never exceeds capacity, so the sum fits the i32 capacity.
        held_after: i32::try_from(held_after).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use proptest::prelude::*;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_hold_is_active_until_exactly_its_expiry() {
        let due = Some(at(100));
        assert!(is_active(ReservationStatus::Reserved, due, at(99)));
        assert!(!is_active(ReservationStatus::Reserved, due, at(100)));
        assert!(!is_active(ReservationStatus::Reserved, None, at(0)));
        assert!(!is_active(ReservationStatus::Purchased, due, at(0)));
        assert!(!is_active(ReservationStatus::Canceled, due, at(0)));
        assert!(!is_active(ReservationStatus::Expired, due, at(0)));
    }

    #[test]
    fn available_is_capacity_minus_purchased_minus_active() {
        assert_eq!(available(10, 3, 4), 3);
        assert_eq!(available(10, 10, 0), 0);
    }

    #[test]
    fn plan_grants_in_arrival_order_and_all_or_nothing() {
        let plan = plan_grants(3, &[2, 2, 1, 1]);
        assert_eq!(plan.granted, vec![true, false, true, false]);
        assert_eq!(plan.tickets, 3);
        assert!(plan.refuses_any());
    }

    #[test]
    fn decide_reserve_does_not_release_when_the_counters_suffice() {
        let counters = Counters {
            capacity: 10,
            purchased: 2,
            held: 5,
        };
        let decision = decide_reserve(counters, &[1, 1], |_| -> Result<u32, Infallible> {
            panic!("must not release")
        });
        assert_eq!(
            decision,
            Ok(ReserveDecision {
                granted: vec![true, true],
                released: 0,
                held_after: 7
            })
        );
    }

    #[test]
    fn decide_reserve_grants_after_releasing_past_due_holds() {
        let counters = Counters {
            capacity: 2,
            purchased: 0,
            held: 2,
        };
        let mut asked = None;
        let decision = decide_reserve(counters, &[1, 1, 1], |limit| -> Result<u32, Infallible> {
            asked = Some(limit);
            Ok(2)
        });
        assert_eq!(asked, Some(LAZY_RELEASE_MIN));
        assert_eq!(
            decision,
            Ok(ReserveDecision {
                granted: vec![true, true, false],
                released: 2,
                held_after: 2
            })
        );
    }

    #[test]
    fn decide_reserve_asks_for_at_least_the_shortfall() {
        let counters = Counters {
            capacity: 5_000,
            purchased: 0,
            held: 5_000,
        };
        let quantities = vec![1; 3_000];
        let mut asked = None;
        let _ = decide_reserve(counters, &quantities, |limit| -> Result<u32, Infallible> {
            asked = Some(limit);
            Ok(0)
        });
        assert_eq!(asked, Some(3_000));
    }

    #[test]
    fn decide_reserve_passes_release_errors_through() {
        let counters = Counters {
            capacity: 1,
            purchased: 0,
            held: 1,
        };
        assert_eq!(decide_reserve(counters, &[1], |_| Err("boom")), Err("boom"));
    }

    #[test]
    fn decide_reserve_does_not_release_when_nothing_is_held() {
        let counters = Counters {
            capacity: 1,
            purchased: 1,
            held: 0,
        };
        let decision = decide_reserve(counters, &[1], |_| -> Result<u32, Infallible> {
            panic!("must not release")
        });
        assert_eq!(decision.map(|d| d.granted), Ok(vec![false]));
    }

    proptest! {
        /// Whatever the counters, requests and past-due holds, a decision never puts more
        /// tickets out than the capacity, never refuses a request that fits in the truth, and
        /// grants exactly what serving the requests one at a time would.
        #[test]
        fn decide_reserve_never_oversells_and_matches_serial_serving(
            capacity in 1..50i32,
            purchased_share in 0..=100i32,
            held_share in 0..=100i32,
            past_due_share in 0..=100i32,
            quantities in proptest::collection::vec(1..4u32, 0..40),
        ) {
            let purchased = capacity * purchased_share / 100;
            let held = (capacity - purchased) * held_share / 100;
            let past_due = held * past_due_share / 100;
            let counters = Counters { capacity, purchased, held };
            let decision = decide_reserve(counters, &quantities, |limit| -> Result<u32, Infallible> {
                Ok(u32::try_from(past_due).unwrap_or(0).min(limit))
            }).unwrap_or_else(|e| match e {});

            prop_assert!(i64::from(purchased) + i64::from(decision.held_after) <= i64::from(capacity));

            // Serve the same requests one at a time against the true availability.
            let mut truth = available(capacity, i64::from(purchased), i64::from(held - past_due));
            let serial: Vec<bool> = quantities.iter().map(|&q| {
                let fits = i64::from(q) <= truth;
                if fits { truth -= i64::from(q); }
                fits
            }).collect();
            prop_assert_eq!(&decision.granted, &serial);

            let granted: i64 = quantities.iter().zip(&decision.granted)
                .filter(|(_, g)| **g).map(|(q, _)| i64::from(*q)).sum();
            prop_assert_eq!(
                i64::from(decision.held_after),
                i64::from(held) - i64::from(decision.released) + granted
            );
        }
    }
}
