//! The use cases, bundled with the ports and settings they need.

use std::fmt;
use std::sync::Arc;

use chrono::TimeDelta;

use crate::clock::Clock;
use crate::store::{EventStore, ReservationStore};

/// How long a hold lasts: between one second and one week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldTtl(TimeDelta);

impl HoldTtl {
    /// The longest hold, in seconds.
    pub const MAX_SECONDS: u64 = 7 * 24 * 3600;

    /// A TTL of `seconds`, if between 1 and [`HoldTtl::MAX_SECONDS`].
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (1..=Self::MAX_SECONDS)
            .contains(&seconds)
            .then(|| i64::try_from(seconds).ok())
            .flatten()
            .map(|s| Self(TimeDelta::seconds(s)))
    }

    /// The TTL.
    pub const fn get(self) -> TimeDelta {
        self.0
    }
}

/// The reservation service's use cases: what the HTTP API and the command line call.
#[derive(Clone)]
pub struct Ticketing {
    pub(crate) events: Arc<dyn EventStore>,
    pub(crate) reservations: Arc<dyn ReservationStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hold_ttl: HoldTtl,
}

impl fmt::Debug for Ticketing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketing")
            .field("hold_ttl", &self.hold_ttl)
            .finish_non_exhaustive()
    }
}

impl Ticketing {
    /// Wires the use cases to their ports.
    pub fn new(
        events: Arc<dyn EventStore>,
        reservations: Arc<dyn ReservationStore>,
        clock: Arc<dyn Clock>,
        hold_ttl: HoldTtl,
    ) -> Self {
        Self {
            events,
            reservations,
            clock,
            hold_ttl,
        }
    }

    /// How long a new hold lasts.
    pub fn hold_ttl(&self) -> HoldTtl {
        self.hold_ttl
    }

    /// The clock the use cases read.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_ttl_is_between_one_second_and_one_week() {
        assert!(HoldTtl::from_seconds(0).is_none());
        assert_eq!(
            HoldTtl::from_seconds(600).map(HoldTtl::get),
            Some(TimeDelta::seconds(600))
        );
        assert!(HoldTtl::from_seconds(HoldTtl::MAX_SECONDS).is_some());
        assert!(HoldTtl::from_seconds(HoldTtl::MAX_SECONDS + 1).is_none());
    }
}
