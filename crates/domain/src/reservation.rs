//! Reservations and their state machine: `reserved` → `purchased` | `expired` | `canceled`,
//! nothing else.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::availability::is_active;
use crate::error::DomainError;
use crate::ids::{EventId, ReservationId};
use crate::inventory::Line;
use crate::seating::HeldSeat;

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// Holds a ticket until `expires_at`.
    Reserved,
    /// Bought; final.
    Purchased,
    /// Released because its hold ran out; final.
    Expired,
    /// Released by the client; final.
    Canceled,
}

impl ReservationStatus {
    /// Every status, for exhaustive checks.
    pub const ALL: [Self; 4] = [
        Self::Reserved,
        Self::Purchased,
        Self::Expired,
        Self::Canceled,
    ];

    /// The status as stored and as sent in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Purchased => "purchased",
            Self::Expired => "expired",
            Self::Canceled => "canceled",
        }
    }

    /// Whether a reservation in this status may move to `next`.
    pub const fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (
                Self::Reserved,
                Self::Purchased | Self::Expired | Self::Canceled
            )
        )
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reservation status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for ReservationStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Its unguessable id.
    pub id: ReservationId,
    /// The event it holds tickets of.
    pub event_id: EventId,
    /// Where it is in its life.
    pub status: ReservationStatus,
    /// How many tickets it holds; they are reserved, purchased and released together.
    pub quantity: i32,
    /// The shop's reference for the customer, when the reserve named one.
    pub customer: Option<String>,
    /// When it was purchased, if it was.
    pub purchased_at: Option<DateTime<Utc>>,
    /// When the hold ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the client recorded with the purchase.
    pub payment_reference: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its tickets by type, for a hold of typed tickets (empty otherwise), by type id; their
    /// quantities add up to `quantity`.
    pub lines: Vec<Line>,
    /// Its seats, on an event with a seating plan (empty otherwise), by seat number; as many
    /// as `quantity`.
    pub seats: Vec<HeldSeat>,
}

impl Reservation {
    /// Whether it holds its tickets at `now` ([`crate::availability::is_active`]).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        is_active(self.status, self.expires_at, now)
    }

    /// The reservation as a client should see it at `now`: a hold whose `expires_at` has
    /// passed reads `expired`, whether or not anything has marked it so yet.
    #[must_use]
    pub fn seen_at(mut self, now: DateTime<Utc>) -> Self {
        if self.status == ReservationStatus::Reserved && !self.is_active(now) {
            self.status = ReservationStatus::Expired;
        }
        self
    }

    /// The quantity as a ticket count for counter arithmetic.
    pub fn tickets(&self) -> i64 {
        i64::from(self.quantity)
    }
}

/// What a store must do when asked to move a reservation out of `reserved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionDecision {
    /// Write the new status.
    Proceed,
    /// The hold is past due but still marked `reserved`: mark it `expired` (releasing its
    /// ticket), then answer with [`DomainError::InvalidOrExpired`].
    ExpireThenRefuse,
    /// Change nothing and answer with this error.
    Refuse(DomainError),
}

/// Decides whether a hold may change and stay `reserved` (extended, or partly released) at
/// `now`: only an active hold may, with the same refusals as a purchase or a cancel.
pub fn decide_hold_change(
    status: ReservationStatus,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> TransitionDecision {
    decide_transition(status, expires_at, now, ReservationStatus::Canceled)
}

/// Decides whether a reservation may become `target` (`purchased` or `canceled`) at `now`.
///
/// A purchased reservation answers [`DomainError::AlreadyPurchased`]; one that is expired,
/// canceled or past due answers [`DomainError::InvalidOrExpired`].
pub fn decide_transition(
    status: ReservationStatus,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    target: ReservationStatus,
) -> TransitionDecision {
    match status {
        ReservationStatus::Purchased => TransitionDecision::Refuse(DomainError::AlreadyPurchased),
        ReservationStatus::Expired | ReservationStatus::Canceled => {
            TransitionDecision::Refuse(DomainError::InvalidOrExpired)
        }
        ReservationStatus::Reserved if !status.can_become(target) => {
            TransitionDecision::Refuse(DomainError::InvalidOrExpired)
        }
        ReservationStatus::Reserved if is_active(status, expires_at, now) => {
            TransitionDecision::Proceed
        }
        ReservationStatus::Reserved => TransitionDecision::ExpireThenRefuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReservationStatus::{Canceled, Expired, Purchased, Reserved};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn only_reserved_moves_and_only_to_a_final_status() {
        for from in ReservationStatus::ALL {
            for to in ReservationStatus::ALL {
                let allowed = from == Reserved && to != Reserved;
                assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn status_round_trips_through_its_text_form() {
        for st in ReservationStatus::ALL {
            assert_eq!(st.as_str().parse::<ReservationStatus>(), Ok(st));
        }
        assert!("sold".parse::<ReservationStatus>().is_err());
    }

    #[test]
    fn an_active_hold_may_be_purchased_or_canceled() {
        for target in [Purchased, Canceled] {
            assert_eq!(
                decide_transition(Reserved, Some(at(10)), at(9), target),
                TransitionDecision::Proceed
            );
        }
    }

    #[test]
    fn a_past_due_hold_is_expired_then_refused() {
        assert_eq!(
            decide_transition(Reserved, Some(at(10)), at(10), Purchased),
            TransitionDecision::ExpireThenRefuse
        );
    }

    #[test]
    fn purchase_fails_with_already_purchased_when_purchased() {
        assert_eq!(
            decide_transition(Purchased, Some(at(10)), at(0), Purchased),
            TransitionDecision::Refuse(DomainError::AlreadyPurchased)
        );
    }

    #[test]
    fn purchase_fails_with_invalid_or_expired_when_expired_or_canceled() {
        for status in [Expired, Canceled] {
            assert_eq!(
                decide_transition(status, Some(at(10)), at(0), Purchased),
                TransitionDecision::Refuse(DomainError::InvalidOrExpired)
            );
        }
    }

    #[test]
    fn a_past_due_hold_is_seen_as_expired_before_any_sweep() {
        let hold = Reservation {
            id: ReservationId::generate(at(0), EventId::new(1)),
            event_id: EventId::new(1),
            status: Reserved,
            quantity: 2,
            customer: None,
            purchased_at: None,
            expires_at: Some(at(10)),
            payment_reference: None,
            created_at: at(0),
            updated_at: at(0),
            lines: vec![],
            seats: Vec::new(),
        };
        assert_eq!(hold.clone().seen_at(at(9)).status, Reserved);
        assert_eq!(hold.clone().seen_at(at(10)).status, Expired);
        let bought = Reservation {
            status: Purchased,
            ..hold
        };
        assert_eq!(bought.seen_at(at(99)).status, Purchased);
    }

    #[test]
    fn a_hold_cannot_move_back_to_reserved() {
        assert_eq!(
            decide_transition(Reserved, Some(at(10)), at(0), Reserved),
            TransitionDecision::Refuse(DomainError::InvalidOrExpired)
        );
    }
}
