//! What a shop's API needs beyond the seed: per-customer limits, idempotency keys, operator
//! edits and listings.

use chrono::TimeDelta;
use domain::{
    Capacity, Command, CommandOutcome, Customer, DomainError, EventName, EventPatch, Fingerprint,
    IdempotencyClaim, IdempotencyKey, Operation, Quantity, ReservationStatus, Reserve,
};

use crate::{
    assert_consistent, cancel, one, outcome_id, purchase, reserve, Fixture, Harness, StatusAnswers,
    TTL,
};

fn for_customer(event: domain::EventId, quantity: u32, customer: &str) -> Operation {
    Operation::Reserve(Reserve::untyped(
        event,
        Quantity::new(i64::from(quantity), 100).unwrap(),
        Some(Customer::parse(customer).unwrap()),
    ))
}

fn keyed(operation: Operation, key: &str, fingerprint: &str) -> Command {
    Command {
        operation,
        idempotency: Some(IdempotencyClaim {
            key: IdempotencyKey::parse(key).unwrap(),
            fingerprint: Fingerprint(fingerprint.into()),
        }),
    }
}

pub fn the_customer_limit_counts_active_holds_and_purchases_only<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| p.max_tickets_per_customer = Some(4));
    let event = f.event(100);
    let other = f.event(100);
    let bought = one(&f.t, for_customer(event.id, 2, "acct-1")).unwrap();
    one(&f.t, purchase(bought.id, None)).unwrap();
    let canceled = one(&f.t, for_customer(event.id, 2, "acct-1")).unwrap();
    one(&f.t, cancel(canceled.id)).unwrap();
    let held = one(&f.t, for_customer(event.id, 1, "acct-1")).unwrap();
    // 2 bought + 1 held: one more fits, two do not.
    assert_eq!(
        one(&f.t, for_customer(event.id, 2, "acct-1")),
        Err(DomainError::CustomerLimitReached)
    );
    // Other customers and other events have limits of their own.
    one(&f.t, for_customer(event.id, 4, "acct-2")).unwrap();
    one(&f.t, for_customer(other.id, 4, "acct-1")).unwrap();
    one(&f.t, for_customer(event.id, 1, "acct-1")).unwrap();
    assert_eq!(
        one(&f.t, for_customer(event.id, 1, "acct-1")),
        Err(DomainError::CustomerLimitReached)
    );
    // A past-due hold stops counting, like everywhere else.
    f.advance(TTL);
    let _ = held;
    one(&f.t, for_customer(event.id, 2, "acct-1")).unwrap();
    assert_consistent(&h, &f.t, event.id);
}

pub fn a_reserve_without_customer_has_no_limit<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| p.max_tickets_per_customer = Some(1));
    let event = f.event(10);
    for _ in 0..3 {
        one(&f.t, reserve(event.id, 3)).unwrap();
    }
    // And without a configured limit, a customer has none either.
    let open = Fixture::on(h.store(), |_| {});
    one(&open.t, for_customer(event.id, 1, "acct")).unwrap();
    assert_eq!(
        one(&f.t, for_customer(event.id, 1, "acct")),
        Err(DomainError::CustomerLimitReached)
    );
}

pub fn a_retry_with_the_same_key_replays_the_first_answer_without_a_second_effect<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5);
    let first =
        f.t.execute(&[keyed(reserve(event.id, 2), "k-1", "fp")], &StatusAnswers)
            .unwrap();
    let CommandOutcome::Decided(Ok(hold)) = &first[0] else {
        panic!("{first:?}")
    };
    let retry =
        f.t.execute(&[keyed(reserve(event.id, 2), "k-1", "fp")], &StatusAnswers)
            .unwrap();
    assert_eq!(
        retry,
        vec![CommandOutcome::Replayed(domain::StoredAnswer {
            status: 201,
            body: hold.id.to_string()
        })]
    );
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!(s.reserved, 2, "the retry took no second hold");
    // Purchases and cancels replay the same way, long after the first answer.
    let bought =
        f.t.execute(
            &[keyed(purchase(hold.id, Some("p")), "k-2", "fp2")],
            &StatusAnswers,
        )
        .unwrap();
    f.advance(TimeDelta::hours(2));
    let again =
        f.t.execute(
            &[keyed(purchase(hold.id, Some("p")), "k-2", "fp2")],
            &StatusAnswers,
        )
        .unwrap();
    assert_eq!(outcome_id(&again[0]), outcome_id(&bought[0]));
    assert!(matches!(again[0], CommandOutcome::Replayed(ref a) if a.status == 200));
    assert_eq!(assert_consistent(&h, &f.t, event.id).purchased_tickets, 2);
}

pub fn a_key_reused_for_another_request_is_refused_and_changes_nothing<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5);
    f.t.execute(
        &[keyed(reserve(event.id, 1), "k", "reserve 1")],
        &StatusAnswers,
    )
    .unwrap();
    let reused =
        f.t.execute(
            &[keyed(reserve(event.id, 3), "k", "reserve 3")],
            &StatusAnswers,
        )
        .unwrap();
    assert_eq!(
        reused,
        vec![CommandOutcome::Decided(Err(
            DomainError::IdempotencyKeyReused
        ))]
    );
    assert_eq!(f.t.event_summary(event.id).unwrap().reserved, 1);
    // Two requests with one key in one batch: the first is served, the second is in progress.
    let twice =
        f.t.execute(
            &[
                keyed(reserve(event.id, 1), "pair", "a"),
                keyed(reserve(event.id, 1), "pair", "a"),
            ],
            &StatusAnswers,
        )
        .unwrap();
    assert!(matches!(twice[0], CommandOutcome::Decided(Ok(_))));
    assert_eq!(
        twice[1],
        CommandOutcome::Decided(Err(DomainError::IdempotencyKeyInProgress))
    );
    assert_eq!(f.t.event_summary(event.id).unwrap().reserved, 2);
}

pub fn the_first_answer_is_stored_even_when_it_is_a_refusal<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(1);
    one(&f.t, reserve(event.id, 1)).unwrap();
    let refused =
        f.t.execute(&[keyed(reserve(event.id, 1), "late", "fp")], &StatusAnswers)
            .unwrap();
    assert_eq!(
        refused,
        vec![CommandOutcome::Decided(Err(DomainError::SoldOut))]
    );
    // Even once a ticket is free again, the retry answers what the first request got.
    f.advance(TTL);
    let retry =
        f.t.execute(&[keyed(reserve(event.id, 1), "late", "fp")], &StatusAnswers)
            .unwrap();
    assert!(matches!(retry[0], CommandOutcome::Replayed(ref a) if a.status == 409));
    assert_eq!(f.t.event_summary(event.id).unwrap().available, 1);
}

pub fn a_key_is_free_again_once_its_record_expired_and_the_sweep_purges_it<H: Harness>() {
    let h = H::new();
    let f = Fixture::on(h.store(), |p| p.idempotency_ttl = TimeDelta::seconds(60));
    let event = f.event(5);
    f.t.execute(&[keyed(reserve(event.id, 1), "k", "fp")], &StatusAnswers)
        .unwrap();
    f.advance(TimeDelta::seconds(60));
    // Expired: the same key may now name another request.
    let fresh =
        f.t.execute(&[keyed(reserve(event.id, 2), "k", "other")], &StatusAnswers)
            .unwrap();
    assert!(matches!(fresh[0], CommandOutcome::Decided(Ok(ref r)) if r.quantity == 2));
    f.t.execute(&[keyed(reserve(event.id, 1), "k2", "fp")], &StatusAnswers)
        .unwrap();
    f.advance(TimeDelta::seconds(60));
    assert_eq!(f.t.expire_due(1).unwrap().keys, 2);
    assert_eq!(f.t.expire_due(1).unwrap().keys, 0);
}

pub fn update_event_renames_and_changes_capacity<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(10);
    one(&f.t, reserve(event.id, 3)).unwrap();
    f.advance(TimeDelta::seconds(5));
    let patch = EventPatch {
        name: Some(EventName::parse("Matinee").unwrap()),
        capacity: Some(Capacity::new(3).unwrap()),
    };
    let s = f.t.update_event(event.id, &patch).unwrap();
    assert_eq!(
        (
            s.event.name.as_str(),
            s.event.capacity,
            s.reserved,
            s.available
        ),
        ("Matinee", 3, 3, 0)
    );
    assert_eq!(
        (s.event.created_at, s.event.updated_at),
        (event.created_at, f.now())
    );
    assert_eq!(f.t.event_summary(event.id).unwrap(), s);
    let grow = EventPatch {
        name: None,
        capacity: Some(Capacity::new(20).unwrap()),
    };
    assert_eq!(f.t.update_event(event.id, &grow).unwrap().available, 17);
    assert_eq!(f.t.event_summary(event.id).unwrap().event.name, "Matinee");
    assert_consistent(&h, &f.t, event.id);
}

pub fn update_event_fails_with_capacity_below_sold_and_changes_nothing<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(10);
    let bought = one(&f.t, reserve(event.id, 2)).unwrap();
    one(&f.t, purchase(bought.id, None)).unwrap();
    one(&f.t, reserve(event.id, 2)).unwrap();
    let patch = EventPatch {
        name: Some(EventName::parse("Renamed").unwrap()),
        capacity: Some(Capacity::new(3).unwrap()),
    };
    assert_eq!(
        f.t.update_event(event.id, &patch),
        Err(DomainError::CapacityBelowSold)
    );
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!(
        (s.event.name.as_str(), s.event.capacity, s.event.updated_at),
        ("Conformance gala", 10, event.updated_at)
    );
    let exact = EventPatch {
        name: None,
        capacity: Some(Capacity::new(4).unwrap()),
    };
    assert_eq!(f.t.update_event(event.id, &exact).unwrap().available, 0);
}

pub fn update_event_ignores_past_due_holds<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(10);
    let old = one(&f.t, reserve(event.id, 6)).unwrap();
    f.advance(TTL);
    one(&f.t, reserve(event.id, 2)).unwrap();
    let patch = EventPatch {
        name: None,
        capacity: Some(Capacity::new(2).unwrap()),
    };
    let s = f.t.update_event(event.id, &patch).unwrap();
    assert_eq!((s.event.capacity, s.reserved, s.available), (2, 2, 0));
    assert_eq!(f.stored_status(old.id), ReservationStatus::Expired);
    assert_consistent(&h, &f.t, event.id);
}

pub fn update_event_fails_with_event_not_found_for_an_unknown_event<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    assert_eq!(
        f.t.update_event(
            domain::EventId::new(i64::MAX),
            &EventPatch {
                name: Some(EventName::parse("x").unwrap()),
                capacity: None
            }
        ),
        Err(DomainError::EventNotFound)
    );
}

pub fn list_events_pages_newest_first_with_counts<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let ids: Vec<_> = (1..=5).map(|c| f.event(c).id).collect();
    one(&f.t, reserve(ids[4], 2)).unwrap();
    let first = f.t.list_events(None, 2).unwrap();
    assert_eq!(
        first.events.iter().map(|s| s.event.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        (first.events[0].reserved, first.events[0].available),
        (2, 3)
    );
    assert_eq!(first.next, Some(ids[3]));
    let second = f.t.list_events(first.next, 2).unwrap();
    assert_eq!(
        second.events.iter().map(|s| s.event.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    let last = f.t.list_events(second.next, 2).unwrap();
    assert_eq!(
        (last.events.len(), last.events[0].event.id, last.next),
        (1, ids[0], None)
    );
    let all = f.t.list_events(None, 100).unwrap();
    assert_eq!((all.events.len(), all.next), (5, None));
}
