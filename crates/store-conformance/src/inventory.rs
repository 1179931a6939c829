//! Quotas, ticket types, typed and multi-line holds, extending and releasing a hold: every
//! rule and error, one request at a time, in batches and under concurrency.

use chrono::TimeDelta;
use domain::{
    Capacity, DomainError, EventId, EventName, Extend, LineRequest, NewQuota, NewTicketType,
    Operation, Quantity, QuotaId, QuotaPatch, Release, ReleasePart, Reservation, Reserve,
    Shortfall, TicketTypeId, Ticketing,
};

use crate::{assert_consistent, batch, cancel, one, purchase, Fixture, Harness, TTL};

/// A festival of 100 tickets: Saturday (30) and Sunday (40) quotas; a Saturday ticket, a
/// Sunday ticket, a weekend pass (both days), and a VIP table (the root only, at most 2 a
/// hold).
struct Festival {
    event: EventId,
    saturday: QuotaId,
    sunday: QuotaId,
    sat: TicketTypeId,
    sun: TicketTypeId,
    pass: TicketTypeId,
    vip: TicketTypeId,
}

fn name(text: &str) -> EventName {
    EventName::parse(text).unwrap()
}

fn quota(t: &Ticketing, event: EventId, label: &str, capacity: i64) -> QuotaId {
    let new = NewQuota {
        name: name(label),
        capacity: Capacity::new(capacity).unwrap(),
    };
    t.create_quota(event, &new).unwrap().quota.id
}

fn ticket_type(
    t: &Ticketing,
    event: EventId,
    label: &str,
    quotas: &[QuotaId],
    max: Option<i64>,
) -> TicketTypeId {
    let new = NewTicketType {
        name: name(label),
        quotas: quotas.to_vec(),
        max_per_reservation: max.map(|m| Quantity::new(m, 1_000).unwrap()),
    };
    t.create_ticket_type(event, &new).unwrap().ticket_type.id
}

fn festival(t: &Ticketing, capacity: i64) -> Festival {
    let event = crate::create_event(t, capacity).id;
    let saturday = quota(t, event, "Saturday", 30);
    let sunday = quota(t, event, "Sunday", 40);
    Festival {
        event,
        saturday,
        sunday,
        sat: ticket_type(t, event, "Saturday", &[saturday], None),
        sun: ticket_type(t, event, "Sunday", &[sunday], None),
        pass: ticket_type(t, event, "Weekend pass", &[saturday, sunday], None),
        vip: ticket_type(t, event, "VIP table", &[], Some(2)),
    }
}

/// A reserve of `lines` (type, tickets) of `event`, named as `lines` when more than one.
fn typed(event: EventId, lines: &[(TicketTypeId, u32)]) -> Operation {
    let total: u32 = lines.iter().map(|l| l.1).sum();
    Operation::Reserve(Reserve {
        event,
        quantity: Quantity::new(i64::from(total), 100).unwrap(),
        customer: None,
        lines: lines
            .iter()
            .map(|(t, n)| LineRequest {
                ticket_type: *t,
                quantity: Quantity::new(i64::from(*n), 100).unwrap(),
            })
            .collect(),
        lines_field: if lines.len() == 1 {
            "ticket_type"
        } else {
            "lines"
        },
        seats: None,
    })
}

/// `(purchased, reserved, available)` of a quota or a type.
type Counts = Vec<(i32, i32, i32)>;

/// The counts of each quota, then each type, by id.
fn counts(t: &Ticketing, event: EventId) -> (Counts, Counts) {
    let inventory = t.inventory(event).unwrap();
    (
        inventory
            .quotas
            .iter()
            .map(|q| (q.purchased, q.reserved, q.available))
            .collect(),
        inventory
            .ticket_types
            .iter()
            .map(|t| (t.purchased, t.reserved, t.available))
            .collect(),
    )
}

fn field_of(result: Result<Reservation, DomainError>) -> &'static str {
    match result {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

pub fn quotas_and_types_start_empty_and_are_read_with_the_event<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let summary = f.t.event_summary(fest.event).unwrap();
    let inventory = summary.inventory.as_ref().expect("an inventory");
    assert_eq!(
        inventory
            .quotas
            .iter()
            .map(|q| (q.quota.name.as_str(), q.quota.capacity, q.available))
            .collect::<Vec<_>>(),
        vec![("Saturday", 30, 30), ("Sunday", 40, 40)]
    );
    let types: Vec<(&str, Vec<QuotaId>, Option<u32>, i32)> = inventory
        .ticket_types
        .iter()
        .map(|t| {
            let k = &t.ticket_type;
            (
                k.name.as_str(),
                k.quotas.clone(),
                k.max_per_reservation,
                t.available,
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("Saturday", vec![fest.saturday], None, 30),
            ("Sunday", vec![fest.sunday], None, 40),
            ("Weekend pass", vec![fest.saturday, fest.sunday], None, 30),
            ("VIP table", vec![], Some(2), 100),
        ]
    );
    // An event without any keeps its old answer.
    let plain = f.event(5);
    assert_eq!(f.t.event_summary(plain.id).unwrap().inventory, None);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_typed_reserve_takes_its_tickets_from_every_quota_of_its_type<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let hold = one(&f.t, typed(fest.event, &[(fest.pass, 3)])).unwrap();
    assert_eq!(hold.quantity, 3);
    assert_eq!(
        hold.lines
            .iter()
            .map(|l| (l.ticket_type, l.quantity))
            .collect::<Vec<_>>(),
        vec![(fest.pass, 3)]
    );
    let (quotas, types) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(0, 3, 27), (0, 3, 37)]);
    assert_eq!(types, vec![(0, 0, 27), (0, 0, 37), (0, 3, 27), (0, 0, 97)]);
    let s = f.t.event_summary(fest.event).unwrap();
    assert_eq!((s.reserved, s.available), (3, 97));
    assert_eq!(f.t.reservation(hold.id).unwrap().lines, hold.lines);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_typed_reserve_short_of_a_shared_quota_fails_naming_the_types_and_holds_nothing<
    H: Harness,
>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    one(&f.t, typed(fest.event, &[(fest.sat, 25)])).unwrap();
    // Saturday has 5 left: a pass of 6 is short, a Sunday ticket is not.
    assert_eq!(
        one(&f.t, typed(fest.event, &[(fest.pass, 6)])),
        Err(DomainError::TypesSoldOut(vec![Shortfall {
            ticket_type: fest.pass,
            available: 5
        }]))
    );
    assert_eq!(
        one(
            &f.t,
            typed(fest.event, &[(fest.sun, 2), (fest.pass, 4), (fest.sat, 2)])
        ),
        Err(DomainError::TypesSoldOut(vec![
            Shortfall {
                ticket_type: fest.pass,
                available: 5
            },
            Shortfall {
                ticket_type: fest.sat,
                available: 5
            },
        ])),
        "the pass and the Saturday tickets share 5, in the request's order; the Sunday ones \
         are there"
    );
    let (quotas, _) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(0, 25, 5), (0, 0, 40)], "nothing held");
    let hold = one(
        &f.t,
        typed(fest.event, &[(fest.sun, 2), (fest.pass, 3), (fest.sat, 2)]),
    )
    .unwrap();
    assert_eq!(hold.quantity, 7);
    let (quotas, _) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(0, 30, 0), (0, 5, 35)]);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_reserve_that_names_types_wrongly_is_refused_on_its_field<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let other = festival(&f.t, 10);
    let untyped = Operation::Reserve(Reserve::untyped(fest.event, Quantity::ONE, None));
    assert_eq!(field_of(one(&f.t, untyped)), "ticket_type");
    assert_eq!(
        field_of(one(&f.t, typed(fest.event, &[(other.sat, 1)]))),
        "ticket_type"
    );
    assert_eq!(
        field_of(one(
            &f.t,
            typed(fest.event, &[(fest.sat, 1), (other.sun, 1)])
        )),
        "lines"
    );
    assert_eq!(
        field_of(one(&f.t, typed(fest.event, &[(TicketTypeId::new(999), 1)]))),
        "ticket_type"
    );
    assert_eq!(
        field_of(one(&f.t, typed(fest.event, &[(fest.vip, 3)]))),
        "ticket_type",
        "at most 2 VIP tables a hold"
    );
    let plain = f.event(5);
    assert_eq!(
        field_of(one(&f.t, typed(plain.id, &[(fest.sat, 1)]))),
        "ticket_type"
    );
    assert!(one(&f.t, typed(fest.event, &[(fest.vip, 2)])).is_ok());
    assert_consistent(&h, &f.t, fest.event);
}

pub fn purchase_and_cancel_move_every_quota_of_a_typed_hold<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let bought = one(&f.t, typed(fest.event, &[(fest.pass, 2), (fest.sun, 1)])).unwrap();
    let dropped = one(&f.t, typed(fest.event, &[(fest.sat, 4)])).unwrap();
    one(&f.t, purchase(bought.id, Some("pay_1"))).unwrap();
    one(&f.t, cancel(dropped.id)).unwrap();
    let (quotas, types) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(2, 0, 28), (3, 0, 37)]);
    assert_eq!(types, vec![(0, 0, 28), (1, 0, 37), (2, 0, 28), (0, 0, 97)]);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_past_due_typed_hold_stops_counting_at_once_and_its_tickets_go_to_the_next_reserve<
    H: Harness,
>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    one(&f.t, typed(fest.event, &[(fest.sat, 30)])).unwrap();
    f.advance(TTL);
    let (quotas, types) = counts(&f.t, fest.event);
    assert_eq!(quotas[0], (0, 0, 30), "past due: free before any sweep");
    assert_eq!(types[0], (0, 0, 30));
    // Saturday's counters still hold the 30: the reserve releases them and is granted.
    one(&f.t, typed(fest.event, &[(fest.pass, 30)])).unwrap();
    let (quotas, _) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(0, 30, 0), (0, 30, 10)]);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn expire_due_releases_every_quota_of_a_typed_hold<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    one(&f.t, typed(fest.event, &[(fest.pass, 2), (fest.vip, 2)])).unwrap();
    one(&f.t, typed(fest.event, &[(fest.sun, 5)])).unwrap();
    f.advance(TTL);
    assert_eq!(f.t.expire_due(1).unwrap().holds, 2);
    let audit = assert_consistent(&h, &f.t, fest.event);
    assert_eq!(audit.held_counter, 0);
    assert!(audit
        .quotas
        .iter()
        .chain(f.t.audit_event(fest.event).unwrap().quotas.iter())
        .all(|q| q.counters.held == 0));
}

pub fn extend_moves_the_expiry_up_to_the_longest_hold_and_no_further<H: Harness>() {
    let h = H::new();
    // Holds of 10 minutes, at most 30 minutes from creation.
    let f = Fixture::on(h.store(), |p| p.max_hold = TimeDelta::minutes(30));
    let event = f.event(5);
    let hold = one(&f.t, crate::reserve(event.id, 2)).unwrap();
    f.advance(TimeDelta::minutes(5));
    let extend = |seconds| {
        one(
            &f.t,
            Operation::Extend(Extend {
                id: hold.id,
                seconds,
            }),
        )
    };
    // By default by the TTL from now: 15 minutes after creation.
    let longer = extend(None).unwrap();
    assert_eq!(longer.expires_at, Some(f.now() + TTL));
    // Never shorter.
    assert_eq!(extend(Some(60)).unwrap().expires_at, longer.expires_at);
    assert_eq!(
        extend(Some(1_500)),
        Ok(Reservation {
            expires_at: Some(f.now() + TimeDelta::seconds(1_500)),
            updated_at: f.now(),
            ..longer.clone()
        })
    );
    assert_eq!(extend(Some(1_501)), Err(DomainError::HoldLifetimeExceeded));
    assert_eq!(
        f.t.reservation(hold.id).unwrap().expires_at,
        Some(f.now() + TimeDelta::seconds(1_500)),
        "a refused extend changes nothing"
    );
    f.advance(TimeDelta::seconds(1_500));
    assert_eq!(extend(None), Err(DomainError::InvalidOrExpired));
    let bought = one(&f.t, crate::reserve(event.id, 1)).unwrap();
    one(&f.t, purchase(bought.id, None)).unwrap();
    let again = Operation::Extend(Extend {
        id: bought.id,
        seconds: None,
    });
    assert_eq!(one(&f.t, again), Err(DomainError::AlreadyPurchased));
    assert_consistent(&h, &f.t, event.id);
}

pub fn release_gives_back_part_of_a_hold_at_once<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = f.event(5);
    let hold = one(&f.t, crate::reserve(event.id, 4)).unwrap();
    let release = |id, k: i64| {
        Operation::Release(Release {
            id,
            part: ReleasePart::Tickets(Quantity::new(k, 100).unwrap()),
        })
    };
    assert_eq!(field_of(one(&f.t, release(hold.id, 4))), "quantity");
    let kept = one(&f.t, release(hold.id, 3)).unwrap();
    assert_eq!(kept.quantity, 1);
    let s = f.t.event_summary(event.id).unwrap();
    assert_eq!((s.reserved, s.available), (1, 4));
    assert_eq!(f.t.reservation(hold.id).unwrap().quantity, 1);
    // The released tickets are reserved again at once.
    one(&f.t, crate::reserve(event.id, 4)).unwrap();
    // A typed hold gives back lines.
    let fest = festival(&f.t, 100);
    let typed_hold = one(
        &f.t,
        typed(fest.event, &[(fest.pass, 2), (fest.sun, 3), (fest.vip, 1)]),
    )
    .unwrap();
    let lines = |asked: &[(TicketTypeId, i64)]| {
        Operation::Release(Release {
            id: typed_hold.id,
            part: ReleasePart::Lines(
                asked
                    .iter()
                    .map(|(t, n)| LineRequest {
                        ticket_type: *t,
                        quantity: Quantity::new(*n, 100).unwrap(),
                    })
                    .collect(),
            ),
        })
    };
    assert_eq!(field_of(one(&f.t, release(typed_hold.id, 1))), "lines");
    assert_eq!(field_of(one(&f.t, lines(&[(fest.sat, 1)]))), "lines");
    assert_eq!(field_of(one(&f.t, lines(&[(fest.sun, 4)]))), "lines");
    assert_eq!(
        field_of(one(
            &f.t,
            lines(&[(fest.pass, 2), (fest.sun, 3), (fest.vip, 1)])
        )),
        "lines",
        "all of it is a cancel"
    );
    let kept = one(&f.t, lines(&[(fest.pass, 2), (fest.sun, 1)])).unwrap();
    assert_eq!(kept.quantity, 3);
    assert_eq!(
        kept.lines
            .iter()
            .map(|l| (l.ticket_type, l.quantity))
            .collect::<Vec<_>>(),
        vec![(fest.sun, 2), (fest.vip, 1)]
    );
    assert_eq!(f.t.reservation(typed_hold.id).unwrap().lines, kept.lines);
    let (quotas, _) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(0, 0, 30), (0, 2, 38)]);
    // What is left can be bought.
    assert_eq!(
        one(&f.t, purchase(typed_hold.id, None)).unwrap().quantity,
        3
    );
    assert_eq!(
        field_of(one(&f.t, release(hold.id, 1))),
        "quantity",
        "the untyped hold's last ticket: that is a cancel"
    );
    assert_consistent(&h, &f.t, event.id);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_batch_decides_extends_releases_and_reserves_in_arrival_order<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let hold = one(&f.t, typed(fest.event, &[(fest.sat, 30)])).unwrap();
    let outcomes = batch(
        &f.t,
        vec![
            typed(fest.event, &[(fest.sat, 10)]),
            Operation::Release(Release {
                id: hold.id,
                part: ReleasePart::Lines(vec![LineRequest {
                    ticket_type: fest.sat,
                    quantity: Quantity::new(10, 100).unwrap(),
                }]),
            }),
            typed(fest.event, &[(fest.pass, 10)]),
            Operation::Extend(Extend {
                id: hold.id,
                seconds: None,
            }),
            purchase(hold.id, None),
        ],
    );
    let summary: Vec<Result<i32, String>> = outcomes
        .iter()
        .map(|o| o.as_ref().map(|r| r.quantity).map_err(|e| format!("{e:?}")))
        .collect();
    assert!(
        matches!(summary[0], Err(ref e) if e.starts_with("TypesSoldOut")),
        "{summary:?}"
    );
    assert_eq!(summary[1..], [Ok(20), Ok(10), Ok(20), Ok(20)]);
    let (quotas, _) = counts(&f.t, fest.event);
    assert_eq!(quotas, vec![(20, 10, 0), (0, 10, 30)]);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn update_quota_never_goes_below_what_is_sold_and_ignores_past_due_holds<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let patch = |capacity: i64| QuotaPatch {
        name: None,
        capacity: Some(Capacity::new(capacity).unwrap()),
    };
    let bought = one(&f.t, typed(fest.event, &[(fest.sat, 5)])).unwrap();
    one(&f.t, purchase(bought.id, None)).unwrap();
    one(&f.t, typed(fest.event, &[(fest.pass, 5)])).unwrap();
    assert_eq!(
        f.t.update_quota(fest.event, fest.saturday, &patch(9)),
        Err(DomainError::CapacityBelowSold)
    );
    let renamed =
        f.t.update_quota(
            fest.event,
            fest.saturday,
            &QuotaPatch {
                name: Some(name("Samedi")),
                capacity: Some(Capacity::new(10).unwrap()),
            },
        )
        .unwrap();
    assert_eq!(
        (
            renamed.quota.name.as_str(),
            renamed.quota.capacity,
            renamed.available
        ),
        ("Samedi", 10, 0)
    );
    f.advance(TTL);
    // The pass's 5 are past due: they no longer count.
    let lowered =
        f.t.update_quota(fest.event, fest.saturday, &patch(5))
            .unwrap();
    assert_eq!(
        (lowered.purchased, lowered.reserved, lowered.available),
        (5, 0, 0)
    );
    assert_eq!(
        f.t.update_quota(fest.event, QuotaId::new(i64::MAX), &patch(5)),
        Err(DomainError::QuotaNotFound)
    );
    assert_eq!(
        f.t.update_quota(fest.event, QuotaId::new(i64::MAX), &patch(5)),
        Err(DomainError::QuotaNotFound)
    );
    let other = festival(&f.t, 10);
    assert_eq!(
        f.t.update_quota(other.event, fest.saturday, &patch(5)),
        Err(DomainError::QuotaNotFound),
        "another event's quota"
    );
    assert_consistent(&h, &f.t, fest.event);
}

pub fn a_ticket_type_draws_only_from_its_own_events_distinct_quotas<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let fest = festival(&f.t, 100);
    let other = festival(&f.t, 10);
    let new = |quotas: Vec<QuotaId>| NewTicketType {
        name: name("Late"),
        quotas,
        max_per_reservation: None,
    };
    let field = |r: Result<domain::TypeSummary, DomainError>| match r {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(f.t.create_ticket_type(fest.event, &new(vec![other.saturday]))),
        "quotas"
    );
    assert_eq!(
        field(f.t.create_ticket_type(fest.event, &new(vec![QuotaId::new(i64::MAX)]))),
        "quotas"
    );
    assert_eq!(
        field(f.t.create_ticket_type(fest.event, &new(vec![fest.sunday, fest.sunday]))),
        "quotas"
    );
    assert_eq!(
        f.t.create_ticket_type(EventId::new(i64::MAX), &new(vec![])),
        Err(DomainError::EventNotFound)
    );
    assert_eq!(
        f.t.create_quota(
            EventId::new(i64::MAX),
            &NewQuota {
                name: name("X"),
                capacity: Capacity::new(1).unwrap()
            }
        ),
        Err(DomainError::EventNotFound)
    );
    let late =
        f.t.create_ticket_type(fest.event, &new(vec![fest.sunday]))
            .unwrap();
    assert_eq!(
        (late.ticket_type.quotas.clone(), late.available),
        (vec![fest.sunday], 40)
    );
    assert_eq!(f.t.inventory(fest.event).unwrap().ticket_types.len(), 5);
    assert_consistent(&h, &f.t, fest.event);
}

pub fn simultaneous_typed_and_multi_line_reserves_never_oversell_a_quota<H: Harness>() {
    let h = H::new();
    let servers = [
        crate::live(h.store(), TTL),
        crate::live(h.another_store(), TTL),
    ];
    let fest = festival(&servers[0], 60);
    let orders = [
        vec![(fest.sat, 2)],
        vec![(fest.pass, 1)],
        vec![(fest.sun, 3)],
        vec![(fest.pass, 2), (fest.sat, 1)],
        vec![(fest.sun, 1), (fest.vip, 2), (fest.pass, 1)],
    ];
    let outcomes = crate::concurrency::together(60, |i| {
        one(
            &servers[i % 2],
            typed(fest.event, &orders[i % orders.len()]),
        )
    });
    assert!(outcomes
        .iter()
        .all(|o| o.is_ok()
            || matches!(o, Err(DomainError::TypesSoldOut(short)) if !short.is_empty())));
    let granted: Vec<&Reservation> = outcomes.iter().flatten().collect();
    // The tickets granted of the types that draw from a quota, counted from the answers.
    let of_types = |types: &[TicketTypeId]| -> i32 {
        granted
            .iter()
            .flat_map(|r| r.lines.iter())
            .filter(|l| types.contains(&l.ticket_type))
            .map(|l| l.quantity)
            .sum()
    };
    let saturday = of_types(&[fest.sat, fest.pass]);
    let sunday = of_types(&[fest.sun, fest.pass]);
    let root: i32 = granted.iter().map(|r| r.quantity).sum();
    let (quotas, _) = counts(&servers[1], fest.event);
    assert_eq!(
        quotas,
        vec![(0, saturday, 30 - saturday), (0, sunday, 40 - sunday)]
    );
    assert!(
        saturday <= 30 && sunday <= 40 && root <= 60,
        "{saturday} {sunday} {root}"
    );
    assert!(outcomes.iter().any(Result::is_err), "the festival sold out");
    let audit = assert_consistent(&h, &servers[1], fest.event);
    assert_eq!(audit.reserved_tickets, i64::from(root));
}
