//! The outbox: every change writes its message in its own transaction, each event's messages
//! numbered 1, 2, 3, ... with no gap and no repeat, however many servers write at once.

use std::collections::HashMap;

use chrono::TimeDelta;
use domain::{
    Capacity, EventId, EventPatch, Extend, MessageKind, Operation, Quantity, Release, ReleasePart,
    ReservationId, StoredMessage, Ticketing,
};

use crate::concurrency::{together, two_servers};
use crate::{batch, cancel, create_event, one, purchase, reserve, Fixture, Harness, TTL};

fn all_messages(t: &Ticketing, event: EventId) -> Vec<StoredMessage> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |m: &StoredMessage| m.seq);
        let (page, head) = t.messages(event, after, 7).unwrap();
        assert!(domain::outbox::is_gap_free(after, &page), "{page:?}");
        if page.is_empty() {
            assert_eq!(head, after, "the head is the last message");
            return all;
        }
        all.extend(page);
    }
}

fn kinds(messages: &[StoredMessage]) -> Vec<(MessageKind, Option<ReservationId>)> {
    messages
        .iter()
        .map(|m| (m.message.kind, m.message.reservation))
        .collect()
}

pub fn every_change_writes_its_message_numbered_without_a_gap<H: Harness>() {
    use MessageKind as K;
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(4).id;
    assert_eq!(f.t.messages(event, 0, 10).unwrap(), (Vec::new(), 0));

    let first = one(&f.t, reserve(event, 3)).unwrap();
    let extended = Operation::Extend(Extend {
        id: first.id,
        seconds: Some(60),
    });
    one(&f.t, extended).unwrap();
    let released = Operation::Release(Release {
        id: first.id,
        part: ReleasePart::Tickets(Quantity::new(1, 10).unwrap()),
    });
    one(&f.t, released).unwrap();
    one(&f.t, purchase(first.id, Some("pay-1"))).unwrap();
    // 2 sold, 2 left: a hold of both sells the event out.
    let second = one(&f.t, reserve(event, 2)).unwrap();
    one(&f.t, cancel(second.id)).unwrap();
    let third = one(&f.t, reserve(event, 1)).unwrap();
    f.advance(TTL + TimeDelta::seconds(1));
    assert_eq!(f.t.expire_due(100).unwrap().holds, 1);
    let patch = EventPatch {
        name: None,
        capacity: Some(Capacity::new(5).unwrap()),
    };
    f.t.update_event(event, &patch).unwrap();
    // Refusals change nothing and tell nothing.
    assert!(one(&f.t, purchase(third.id, None)).is_err());

    let messages = all_messages(&f.t, event);
    assert_eq!(
        kinds(&messages),
        vec![
            (K::ReservationCreated, Some(first.id)),
            (K::ReservationExtended, Some(first.id)),
            (K::ReservationReleased, Some(first.id)),
            (K::ReservationPurchased, Some(first.id)),
            (K::ReservationCreated, Some(second.id)),
            (K::EventSoldOut, None),
            (K::ReservationCanceled, Some(second.id)),
            (K::ReservationCreated, Some(third.id)),
            (K::ReservationExpired, Some(third.id)),
            (K::EventUpdated, None),
        ]
    );
    assert!(messages.iter().all(|m| m.message.event == event));
    assert!(messages.iter().all(|m| m.created_at <= f.now()));
    // Another event's numbers are its own.
    let other = f.event(1).id;
    one(&f.t, reserve(other, 1)).unwrap();
    let theirs = all_messages(&f.t, other);
    assert_eq!(theirs.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        f.t.message_heads(&[other, event, EventId::new(999_999)])
            .unwrap(),
        vec![(event, 10), (other, 2)]
    );
}

pub fn a_batch_tells_its_changes_in_arrival_order<H: Harness>() {
    use MessageKind as K;
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(2).id;
    let old = one(&f.t, reserve(event, 2)).unwrap();
    f.advance(TTL + TimeDelta::seconds(1));
    // The purchase finds the hold past due (expired, refused); the reserve then takes its
    // tickets and sells the event out again.
    let outcomes = batch(&f.t, vec![purchase(old.id, None), reserve(event, 2)]);
    assert!(outcomes[0].is_err());
    let new = outcomes[1].clone().unwrap();
    assert_eq!(
        kinds(&all_messages(&f.t, event)),
        vec![
            (K::ReservationCreated, Some(old.id)),
            (K::EventSoldOut, None),
            (K::ReservationExpired, Some(old.id)),
            (K::ReservationCreated, Some(new.id)),
            (K::EventSoldOut, None),
        ]
    );
}

pub fn simultaneous_writers_on_two_servers_number_messages_without_gap_or_repeat<H: Harness>() {
    let h = H::new();
    let servers = two_servers(&h, TTL);
    let event = create_event(&servers[0], 30).id;
    let outcomes = together(40, |i| {
        let t = &servers[i % 2];
        let hold = one(t, reserve(event, 1))?;
        if i % 3 == 0 {
            one(t, cancel(hold.id))?;
        } else {
            one(t, purchase(hold.id, None))?;
        }
        Ok::<_, domain::DomainError>(hold.id)
    });
    let done: Vec<ReservationId> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    let messages = all_messages(&servers[1], event);
    let numbers: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(
        numbers,
        (1..=i64::try_from(messages.len()).unwrap()).collect::<Vec<_>>()
    );
    // Exactly the changes that were answered, each once, a hold's in its own order.
    let mut per_hold: HashMap<ReservationId, Vec<MessageKind>> = HashMap::new();
    for m in &messages {
        if let Some(id) = m.message.reservation {
            per_hold.entry(id).or_default().push(m.message.kind);
        }
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Ok(id) = outcome {
            let end = if i % 3 == 0 {
                MessageKind::ReservationCanceled
            } else {
                MessageKind::ReservationPurchased
            };
            assert_eq!(per_hold[id], vec![MessageKind::ReservationCreated, end]);
        }
    }
    assert_eq!(
        per_hold.len(),
        done.len(),
        "a message of a hold nobody was told of"
    );
}

pub fn the_sweep_prunes_messages_past_the_retention_and_numbers_go_on<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| p.outbox_retention = TimeDelta::hours(1));
    let event = f.event(5).id;
    one(&f.t, reserve(event, 1)).unwrap();
    one(&f.t, reserve(event, 1)).unwrap();
    f.advance(TimeDelta::minutes(61));
    one(&f.t, reserve(event, 1)).unwrap();
    let report = f.t.expire_due(100).unwrap();
    // The two old messages go; the new reserve and the two expiries (now) stay.
    assert_eq!((report.holds, report.messages), (2, 2));
    let (left, head) = f.t.messages(event, 0, 100).unwrap();
    assert_eq!(left.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(head, 5);
    assert_eq!(f.t.expire_due(100).unwrap().messages, 0);
    one(&f.t, reserve(event, 1)).unwrap();
    assert_eq!(f.t.message_heads(&[event]).unwrap(), vec![(event, 6)]);
}
