//! Identifier newtypes, so an event id can never be passed where a reservation id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The id of an event: a positive 64-bit integer assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(i64);

impl EventId {
    /// Wraps a raw id as stored.
    pub const fn new(raw: i64) -> Self {
        Self(raw)
    }

    /// The raw id, for the store and for JSON.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a path segment is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed id")]
pub struct MalformedId;

impl FromStr for EventId {
    type Err = MalformedId;

    /// Accepts only the canonical decimal form of a positive integer (`7`, not `+7` or `007`),
    /// so one event has exactly one URL.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && !(s.len() > 1 && s.starts_with('0'));
        if !canonical {
            return Err(MalformedId);
        }
        match s.parse::<i64>() {
            Ok(raw) if raw > 0 => Ok(Self(raw)),
            _ => Err(MalformedId),
        }
    }
}

/// The id of a reservation: a random (version 4) UUID, so holds cannot be found by counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(Uuid);

impl ReservationId {
    /// A new random id; 122 random bits make a guess hopeless.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps a UUID as stored.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID, for the store and for JSON.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ReservationId {
    type Err = MalformedId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(Self).map_err(|_| MalformedId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_accepts_only_canonical_positive_integers() {
        assert_eq!("42".parse::<EventId>(), Ok(EventId::new(42)));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "007",
            "1.0",
            "abc",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(bad.parse::<EventId>(), Err(MalformedId), "{bad:?}");
        }
    }

    #[test]
    fn reservation_id_round_trips_through_its_text_form() {
        let id = ReservationId::generate();
        assert_eq!(id.to_string().parse::<ReservationId>(), Ok(id));
        assert_eq!("not-a-uuid".parse::<ReservationId>(), Err(MalformedId));
    }

    #[test]
    fn generated_reservation_ids_are_random_v4_uuids() {
        let a = ReservationId::generate();
        let b = ReservationId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 4);
    }
}
