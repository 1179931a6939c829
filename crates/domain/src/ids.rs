//! Identifier newtypes, so an event id can never be passed where a reservation id is expected.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Why a path segment is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed id")]
pub struct MalformedId;

/// Reads the canonical decimal form of a positive integer only (`7`, not `+7` or `007`), so
/// one resource has exactly one URL.
fn positive_id(s: &str) -> Result<i64, MalformedId> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && !(s.len() > 1 && s.starts_with('0'));
    match s.parse::<i64>() {
        Ok(raw) if canonical && raw > 0 => Ok(raw),
        _ => Err(MalformedId),
    }
}

/// A newtype of a positive 64-bit id assigned by the store.
macro_rules! store_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw id as stored.
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw id, for the store and for JSON.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = MalformedId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                positive_id(s).map(Self)
            }
        }
    };
}

store_id!(
    /// The id of an event: a positive 64-bit integer assigned by the store.
    EventId
);
store_id!(
    /// A seat of an event's seating plan, by its place in it: 1 for the first seat of the
    /// first row of the first section.
    SeatId
);
store_id!(
    /// The id of a quota (a pool of an event's tickets that ticket types draw from).
    QuotaId
);
store_id!(
    /// The id of a ticket type (a category of an event's tickets: VIP, stalls, early bird).
    TicketTypeId
);

impl EventId {
    /// A 16-bit hash of the id, the same in every process: the reservations of this event
    /// carry it (see [`ReservationId::lane_tag`]), so a server can route a purchase or cancel
    /// to the place where that event's requests are served without asking the database.
    pub const fn lane_tag(self) -> u16 {
        // Fibonacci hashing: consecutive ids land far apart.
        #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
        let mixed = (self.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        #[allow(clippy::cast_possible_truncation)]
        let tag = (mixed >> 48) as u16;
        tag
    }
}

/// The id of a reservation: a version 7 UUID whose last 16 bits are its event's
/// [`EventId::lane_tag`] and whose other 58 non-time bits are all random, so holds cannot be
/// found by counting or guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(Uuid);

impl ReservationId {
    /// A new id for a hold of `event` created at `now`.
    ///
    /// The leading 48 bits are `now` in milliseconds, so ids made together sit together in the
    /// stores' primary-key index (a fully random key scatters inserts over the whole index).
    /// The last 16 bits are the event's lane tag. The 58 bits between (beside the version and
    /// variant) are fresh random bits, not the counter `Uuid::now_v7` puts there: an id must not
    /// reveal its neighbours, and guessing one takes about 2^58 tries per millisecond.
    pub fn generate(now: DateTime<Utc>, event: EventId) -> Self {
        let random = *Uuid::new_v4().as_bytes();
        let mut tail = [0u8; 10];
        // Bytes 6 and 8 of a v4 UUID carry its fixed version and variant bits.
        tail[..6].copy_from_slice(&random[..6]);
        tail[6..].copy_from_slice(&random[9..13]);
        tail[1] ^= random[7];
        tail[5] ^= random[13];
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut bytes = *uuid::Builder::from_unix_timestamp_millis(millis, &tail)
            .into_uuid()
            .as_bytes();
        bytes[14..].copy_from_slice(&event.lane_tag().to_be_bytes());
        Self(Uuid::from_bytes(bytes))
    }

    /// The lane tag of the event this id was made for (meaningless for ids made elsewhere;
    /// routing by it is an optimisation, never a correctness matter).
    pub fn lane_tag(&self) -> u16 {
        let bytes = self.0.as_bytes();
        u16::from_be_bytes([bytes[14], bytes[15]])
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

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap_or_default()
    }

    const EVENT: EventId = EventId::new(42);

    #[test]
    fn reservation_id_round_trips_through_its_text_form() {
        let id = ReservationId::generate(now(), EVENT);
        assert_eq!(id.to_string().parse::<ReservationId>(), Ok(id));
        assert_eq!("not-a-uuid".parse::<ReservationId>(), Err(MalformedId));
    }

    #[test]
    fn generated_reservation_ids_are_v7_uuids_stamped_with_the_time_and_the_event_tag() {
        let id = ReservationId::generate(now(), EVENT);
        assert_eq!(id.lane_tag(), EVENT.lane_tag());
        assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let (secs, nanos) = id
            .as_uuid()
            .get_timestamp()
            .map(|t| t.to_unix())
            .unwrap_or_default();
        assert_eq!((secs, nanos), (1_800_000_000, 123_000_000));
    }

    #[test]
    fn ids_made_in_the_same_millisecond_share_no_guessable_bits() {
        // With a counter, consecutive ids would differ in a few low bits; with fresh random
        // bits, about half of the 58 differ.
        let ids: Vec<u128> = (0..200)
            .map(|_| ReservationId::generate(now(), EVENT).as_uuid().as_u128())
            .collect();
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len());
        // The tag spreads consecutive event ids over the whole 16 bits.
        let tags: std::collections::BTreeSet<u16> =
            (1..=64).map(|e| EventId::new(e).lane_tag() % 8).collect();
        assert_eq!(tags.len(), 8);
        let fixed = !0u128 << 76 | 0xF000_u128 << 64 | 0xC000_0000_0000_0000 | 0xFFFF;
        for pair in ids.windows(2) {
            let differing = ((pair[0] ^ pair[1]) & !fixed).count_ones();
            assert!(
                (10..=48).contains(&differing),
                "{differing} differing random bits"
            );
        }
    }
}
