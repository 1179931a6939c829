//! The outbox: what happened, written in the transaction that made it happen.
//!
//! Every change a shop may want to hear about ([`MessageKind`]) becomes a [`Message`] in the
//! same [`crate::store::Changes`] as the change itself, so a store commits both or neither.
//! The store numbers each event's messages 1, 2, 3, ... with no gap (the event row is locked
//! while it does), which lets a reader resume from the last number it saw and notice anything
//! missing. Messages name what changed, not its state: a reader that needs the state reads it.

use crate::ids::{EventId, ReservationId};
use crate::store::Timestamp;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// A hold was granted.
    ReservationCreated,
    /// A hold was bought.
    ReservationPurchased,
    /// A hold was canceled by its client.
    ReservationCanceled,
    /// A hold ran out and its tickets went back on sale.
    ReservationExpired,
    /// A hold was given more time.
    ReservationExtended,
    /// Part of a hold went back on sale.
    ReservationReleased,
    /// An operator changed the event (its name, its capacity or its seating plan).
    EventUpdated,
    /// The event's last ticket was taken: nothing is left to hold.
    EventSoldOut,
}

impl MessageKind {
    /// Every kind, in the order of the list above.
    pub const ALL: [Self; 8] = [
        Self::ReservationCreated,
        Self::ReservationPurchased,
        Self::ReservationCanceled,
        Self::ReservationExpired,
        Self::ReservationExtended,
        Self::ReservationReleased,
        Self::EventUpdated,
        Self::EventSoldOut,
    ];

    /// Its name on the wire and in the stores, e.g. `reservation.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReservationCreated => "reservation.created",
            Self::ReservationPurchased => "reservation.purchased",
            Self::ReservationCanceled => "reservation.canceled",
            Self::ReservationExpired => "reservation.expired",
            Self::ReservationExtended => "reservation.extended",
            Self::ReservationReleased => "reservation.released",
            Self::EventUpdated => "event.updated",
            Self::EventSoldOut => "event.sold_out",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A message to write with the change it tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// The event it is about.
    pub event: EventId,
    /// What happened.
    pub kind: MessageKind,
    /// The reservation it happened to, for a `reservation.*` message.
    pub reservation: Option<ReservationId>,
}

impl Message {
    /// `kind` happened to the hold `id` of `event`.
    pub fn of_hold(event: EventId, kind: MessageKind, id: ReservationId) -> Self {
        Self {
            event,
            kind,
            reservation: Some(id),
        }
    }

    /// `kind` happened to `event` itself.
    pub fn of_event(event: EventId, kind: MessageKind) -> Self {
        Self {
            event,
            kind,
            reservation: None,
        }
    }
}

/// A message as the store keeps it: numbered within its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its place in its event's messages: 1, 2, 3, ... with no gap.
    pub seq: i64,
    /// The message.
    pub message: Message,
    /// When the transaction that wrote it ran.
    pub created_at: Timestamp,
}

/// The most messages one read returns.
pub const MAX_MESSAGES_PER_READ: u32 = 1000;

/// Whether `messages`, read after `after`, continue it with no gap: 1 more each time.
pub fn is_gap_free(after: i64, messages: &[StoredMessage]) -> bool {
    messages
        .iter()
        .zip(after + 1..)
        .all(|(m, expected)| m.seq == expected)
}

/// Adds `kind` of `id` to `messages` unless the same message is there already: a batch that
/// expires a hold twice (once by the rule, once by a release of past-due holds) tells of it once.
pub(crate) fn push_once(messages: &mut Vec<Message>, message: Message) {
    if !messages.contains(&message) {
        messages.push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MessageKind::parse("reservation.deleted"), None);
    }

    #[test]
    fn a_gap_or_a_repeat_in_the_numbers_is_noticed() {
        let at = DateTime::UNIX_EPOCH;
        let m = |seq| StoredMessage {
            seq,
            message: Message::of_event(EventId::new(1), MessageKind::EventUpdated),
            created_at: at,
        };
        assert!(is_gap_free(3, &[m(4), m(5), m(6)]));
        assert!(is_gap_free(3, &[]));
        assert!(!is_gap_free(3, &[m(4), m(6)]));
        assert!(!is_gap_free(3, &[m(4), m(4)]));
        assert!(!is_gap_free(0, &[m(2)]));
    }
}
