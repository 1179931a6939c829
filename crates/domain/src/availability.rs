//! The availability rule: a hold counts while it is `reserved` and not yet due,
//! `available = capacity - purchased - active`, and a reserve of n succeeds only if
//! `available >= n`. `purchased + active <= capacity` at every instant, on any number of
//! servers (README, "How it never oversells"; docs/architecture.md).
//!
//! A store keeps two counters on each event row, in tickets: `purchased` and `held` (tickets of
//! holds with status `reserved`, including past-due ones not released yet). Because `held`
//! counts past-due holds too, `capacity - purchased - held` never exceeds the true
//! availability: deciding on the counters can refuse too much, never grant too much. The batch
//! decision ([`crate::ledger`]) closes the gap by releasing past-due holds before it refuses
//! anyone.

use chrono::{DateTime, Utc};

use crate::reservation::ReservationStatus;

/// Whether a reservation holds its tickets right now: `reserved` and not yet due.
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

/// `capacity - purchased - active_reserved`, in tickets: what may still be reserved.
pub fn available(capacity: i32, purchased: i64, active_reserved: i64) -> i64 {
    i64::from(capacity) - purchased - active_reserved
}

/// The least number of past-due holds a store releases at once when it must release some, so a
/// sold-out rush does not release them one transaction at a time.
pub const LAZY_RELEASE_MIN: u32 = 1_000;

/// How many past-due holds to release when `demand` tickets are still wanted and the counters
/// show `available`: at least the shortfall (each hold frees at least one ticket, so releasing
/// that many either frees enough or frees them all) and at least [`LAZY_RELEASE_MIN`].
pub fn release_limit(demand: i64, available: i64) -> u32 {
    let shortfall = u32::try_from((demand - available.max(0)).max(0)).unwrap_or(u32::MAX);
    shortfall.max(LAZY_RELEASE_MIN)
}

#[cfg(test)]
mod tests {
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
    fn release_limit_is_at_least_the_shortfall_and_the_minimum() {
        assert_eq!(release_limit(5, 2), LAZY_RELEASE_MIN);
        assert_eq!(release_limit(3_000, 0), 3_000);
        assert_eq!(release_limit(3_000, -7), 3_000);
        assert_eq!(release_limit(10, 20), LAZY_RELEASE_MIN);
    }
}
