//! Assigned seating: plans, seat holds by label and best available, the seats moving with
//! purchase, cancel, expiry, extend and release, and the seat map's versions, on every store.

use std::collections::HashSet;

use chrono::TimeDelta;
use domain::{
    Capacity, DomainError, EventId, EventName, EventPatch, Extend, NewPlan, NewRow, NewSection,
    NewTicketType, Operation, Quantity, Release, ReleasePart, Reservation, Reserve, SeatMapView,
    SeatRequest, SeatStatus, TicketTypeId, Ticketing,
};

use crate::concurrency::together;
use crate::{assert_consistent, batch, cancel, live, one, purchase, Fixture, Harness, TTL};

/// A plan of one section `A` of rows `1`, `2`, ... of `seats` seats each, labelled `1` to n,
/// the first row best.
fn rows(seats: &[usize]) -> NewPlan {
    NewPlan {
        sections: vec![NewSection {
            name: "A".into(),
            ticket_type: None,
            rows: seats
                .iter()
                .enumerate()
                .map(|(i, n)| NewRow {
                    name: (i + 1).to_string(),
                    seats: (1..=*n).map(|s| s.to_string()).collect(),
                    rank: None,
                })
                .collect(),
        }],
    }
}

fn seated(t: &Ticketing, plan: &NewPlan) -> EventId {
    let event = crate::create_event(t, 1).id;
    t.load_seating(event, plan).unwrap();
    event
}

fn seats(event: EventId, labels: &[&str]) -> Operation {
    Operation::Reserve(Reserve::seated(
        event,
        Quantity::new(i64::try_from(labels.len()).unwrap(), 100).unwrap(),
        None,
        SeatRequest::Labels(labels.iter().map(|l| (*l).to_owned()).collect()),
    ))
}

fn best(event: EventId, quantity: u32) -> Operation {
    Operation::Reserve(Reserve::seated(
        event,
        Quantity::new(i64::from(quantity), 100).unwrap(),
        None,
        SeatRequest::Best {
            quantity,
            ticket_type: None,
            together: true,
        },
    ))
}

fn map(t: &Ticketing, event: EventId) -> SeatMapView {
    t.seat_maps(&[event]).unwrap().pop().expect("a seat map")
}

/// Each row's letters, `F`, `H` or `S`.
fn letters(t: &Ticketing, event: EventId) -> Vec<String> {
    let view = map(t, event);
    let statuses = view.map.statuses(view.now);
    view.map
        .plan()
        .rows()
        .iter()
        .map(|row| {
            row.seats()
                .map(|s| statuses[usize::try_from(s.get() - 1).unwrap()].letter())
                .collect()
        })
        .collect()
}

fn labels_of(r: &Reservation) -> Vec<&str> {
    r.seats.iter().map(|s| s.label.as_str()).collect()
}

/// Every seat of every hold the store holds belongs to that hold on the map, and no seat to
/// two.
fn assert_seats_consistent<H: Harness>(h: &H, t: &Ticketing, event: EventId, held: &[Reservation]) {
    let view = map(t, event);
    let mut seen = HashSet::new();
    for hold in held {
        for seat in &hold.seats {
            assert!(seen.insert(seat.id), "seat {} in two holds", seat.label);
            assert_eq!(
                view.map.holder(seat.id).map(domain::Holder::reservation),
                Some(hold.id),
                "seat {} of {}",
                seat.label,
                hold.id
            );
        }
    }
    assert_consistent(h, t, event);
}

pub fn a_plan_sets_the_capacity_and_every_seat_reads_free<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[3, 2]));
    assert_eq!(f.t.event_summary(event).unwrap().event.capacity, 5);
    assert_eq!(letters(&f.t, event), vec!["FFF", "FF"]);
    let view = map(&f.t, event);
    assert_eq!(
        view.map.plan().label(domain::SeatId::new(4)).as_deref(),
        Some("A-2-1")
    );
    assert!(f
        .t
        .seat_maps(&[crate::create_event(&f.t, 3).id])
        .unwrap()
        .is_empty());
}

pub fn a_seat_hold_takes_its_seats_and_a_taken_seat_is_refused_naming_it<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[4]));
    let before = map(&f.t, event).version;
    let hold = one(&f.t, seats(event, &["A-1-2", "A-1-3"])).unwrap();
    assert_eq!(labels_of(&hold), vec!["A-1-2", "A-1-3"]);
    assert_eq!(hold.quantity, 2);
    assert_eq!(letters(&f.t, event), vec!["FHHF"]);
    assert!(map(&f.t, event).version > before);
    let refused = one(&f.t, seats(event, &["A-1-1", "A-1-3"]));
    assert_eq!(
        refused,
        Err(DomainError::SeatUnavailable(vec!["A-1-3".into()]))
    );
    assert_eq!(letters(&f.t, event), vec!["FHHF"], "nothing held");
    let summary = f.t.event_summary(event).unwrap();
    assert_eq!((summary.reserved, summary.available), (2, 2));
    assert_seats_consistent(&h, &f.t, event, &[hold]);
}

pub fn a_reserve_that_names_seats_wrongly_is_refused_on_seats<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[2]));
    let field = |r: Result<Reservation, DomainError>| match r {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(field(one(&f.t, seats(event, &["A-1-9"]))), "seats");
    assert_eq!(field(one(&f.t, crate::reserve(event, 1))), "seats");
    let plain = crate::create_event(&f.t, 5).id;
    assert_eq!(field(one(&f.t, seats(plain, &["A-1-1"]))), "seats");
    assert_eq!(letters(&f.t, event), vec!["FF"]);
}

pub fn best_available_takes_adjacent_seats_of_the_best_row_and_sells_out<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    // Row 2 is ranked best.
    let plan = NewPlan {
        sections: vec![NewSection {
            name: "A".into(),
            ticket_type: None,
            rows: vec![
                NewRow {
                    name: "1".into(),
                    seats: (1..=6).map(|s| s.to_string()).collect(),
                    rank: Some(2),
                },
                NewRow {
                    name: "2".into(),
                    seats: (1..=6).map(|s| s.to_string()).collect(),
                    rank: Some(1),
                },
            ],
        }],
    };
    let event = seated(&f.t, &plan);
    // In one batch: each reserve gets the next best block, never a seat of the one before.
    let got = batch(&f.t, vec![best(event, 2), best(event, 2), best(event, 4)]);
    let held: Vec<Reservation> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(labels_of(&held[0]), vec!["A-2-3", "A-2-4"]);
    assert_eq!(labels_of(&held[1]), vec!["A-2-1", "A-2-2"]);
    assert_eq!(
        labels_of(&held[2]),
        // The middle four would leave two lone seats.
        vec!["A-1-1", "A-1-2", "A-1-3", "A-1-4"]
    );
    assert_eq!(one(&f.t, best(event, 3)), Err(DomainError::SoldOut));
    let pair = one(&f.t, best(event, 2)).unwrap();
    assert_eq!(labels_of(&pair), vec!["A-2-5", "A-2-6"]);
    let mut all = held;
    all.push(pair);
    assert_seats_consistent(&h, &f.t, event, &all);
}

pub fn purchase_sells_the_seats_and_cancel_frees_them<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[4]));
    let bought = one(&f.t, seats(event, &["A-1-1"])).unwrap();
    let dropped = one(&f.t, seats(event, &["A-1-3", "A-1-4"])).unwrap();
    let v = map(&f.t, event).version;
    let bought = one(&f.t, purchase(bought.id, Some("pay-1"))).unwrap();
    assert_eq!(labels_of(&bought), vec!["A-1-1"]);
    one(&f.t, cancel(dropped.id)).unwrap();
    assert_eq!(letters(&f.t, event), vec!["SFFF"]);
    assert_eq!(map(&f.t, event).version, v + 2);
    // The freed seats are anyone's again.
    let again = one(&f.t, seats(event, &["A-1-3"])).unwrap();
    assert_eq!(letters(&f.t, event), vec!["SFHF"]);
    assert_eq!(
        one(&f.t, seats(event, &["A-1-1"])),
        Err(DomainError::SeatUnavailable(vec!["A-1-1".into()]))
    );
    assert_seats_consistent(&h, &f.t, event, &[bought, again]);
}

pub fn a_past_due_hold_frees_its_seats_at_once_and_the_sweep_releases_them<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[3]));
    let first = one(&f.t, seats(event, &["A-1-2"])).unwrap();
    let shown = map(&f.t, event).version;
    f.advance(TTL);
    // Past due: free on the map at once, before any write; the version shows the change.
    assert_eq!(letters(&f.t, event), vec!["FFF"]);
    let due = map(&f.t, event).version;
    assert_eq!(due, shown + 1);
    // Taken by the next reserve, which releases the past-due hold in its batch.
    let next = one(&f.t, seats(event, &["A-1-2", "A-1-3"])).unwrap();
    assert_eq!(
        f.stored_status(first.id),
        domain::ReservationStatus::Expired
    );
    assert_eq!(letters(&f.t, event), vec!["FHH"]);
    f.advance(TTL);
    let report = f.t.expire_due(100).unwrap();
    assert_eq!(report.holds, 1);
    assert_eq!(letters(&f.t, event), vec!["FFF"]);
    assert_eq!(f.stored_status(next.id), domain::ReservationStatus::Expired);
    assert_seats_consistent(&h, &f.t, event, &[]);
}

pub fn the_map_version_stays_while_a_past_due_hold_is_released<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[3]));
    one(&f.t, seats(event, &["A-1-1"])).unwrap();
    f.advance(TTL);
    let due = map(&f.t, event).version;
    f.t.expire_due(100).unwrap();
    assert_eq!(map(&f.t, event).version, due, "same map, same version");
    one(&f.t, seats(event, &["A-1-1"])).unwrap();
    assert!(map(&f.t, event).version > due);
}

pub fn extend_and_release_move_a_seated_holds_seats<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[4]));
    let hold = one(&f.t, seats(event, &["A-1-1", "A-1-2", "A-1-3"])).unwrap();
    let release = |labels: &[&str]| {
        Operation::Release(Release {
            id: hold.id,
            part: ReleasePart::Seats(labels.iter().map(|l| (*l).to_owned()).collect()),
        })
    };
    let left = one(&f.t, release(&["A-1-2"])).unwrap();
    assert_eq!(labels_of(&left), vec!["A-1-1", "A-1-3"]);
    assert_eq!(left.quantity, 2);
    assert_eq!(letters(&f.t, event), vec!["HFHF"]);
    let field = |r: Result<Reservation, DomainError>| match r {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(field(one(&f.t, release(&["A-1-1", "A-1-3"]))), "seats");
    assert_eq!(field(one(&f.t, release(&["A-1-4"]))), "seats");
    let quantity = Operation::Release(Release {
        id: hold.id,
        part: ReleasePart::Tickets(Quantity::ONE),
    });
    assert_eq!(field(one(&f.t, quantity)), "seats");
    f.advance(TTL - TimeDelta::minutes(1));
    let extended = one(
        &f.t,
        Operation::Extend(Extend {
            id: hold.id,
            seconds: Some(300),
        }),
    )
    .unwrap();
    f.advance(TimeDelta::minutes(2));
    // Past its first expiry, still held.
    assert_eq!(letters(&f.t, event), vec!["HFHF"]);
    let summary = f.t.event_summary(event).unwrap();
    assert_eq!((summary.reserved, summary.available), (2, 2));
    assert_seats_consistent(&h, &f.t, event, &[extended]);
}

pub fn a_plan_is_locked_while_any_seat_is_held_or_sold<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[2]));
    let hold = one(&f.t, seats(event, &["A-1-1"])).unwrap();
    assert_eq!(
        f.t.load_seating(event, &rows(&[5])).map(|v| v.event),
        Err(DomainError::SeatingLocked)
    );
    one(&f.t, cancel(hold.id)).unwrap();
    f.t.load_seating(event, &rows(&[5])).unwrap();
    assert_eq!(letters(&f.t, event), vec!["FFFFF"]);
    assert_eq!(f.t.event_summary(event).unwrap().event.capacity, 5);
    // The capacity of a seated event is its seats.
    let patch = EventPatch {
        name: None,
        capacity: Some(Capacity::new(9).unwrap()),
    };
    assert!(matches!(
        f.t.update_event(event, &patch),
        Err(DomainError::Validation {
            field: "capacity",
            ..
        })
    ));
    // A past-due hold does not lock it.
    one(&f.t, seats(event, &["A-1-1"])).unwrap();
    f.advance(TTL);
    f.t.load_seating(event, &rows(&[1])).unwrap();
    assert_eq!(letters(&f.t, event), vec!["F"]);
    assert_eq!(
        f.t.load_seating(
            crate::create_event(&f.t, 1).id,
            &NewPlan { sections: vec![] }
        )
        .map(|v| v.event)
        .map_err(|e| matches!(
            e,
            DomainError::Validation {
                field: "sections",
                ..
            }
        )),
        Err(true)
    );
}

pub fn sections_sell_as_their_ticket_types_and_set_their_quotas<H: Harness>() {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = crate::create_event(&f.t, 1).id;
    let quota = |name: &str| {
        f.t.create_quota(
            event,
            &domain::NewQuota {
                name: EventName::parse(name).unwrap(),
                capacity: Capacity::new(1).unwrap(),
            },
        )
        .unwrap()
        .quota
        .id
    };
    let (stalls, balcony) = (quota("Stalls"), quota("Balcony"));
    let kind = |name: &str, quota| -> TicketTypeId {
        f.t.create_ticket_type(
            event,
            &NewTicketType {
                name: EventName::parse(name).unwrap(),
                quotas: vec![quota],
                max_per_reservation: None,
            },
        )
        .unwrap()
        .ticket_type
        .id
    };
    let (s, b) = (kind("Stalls", stalls), kind("Balcony", balcony));
    let section = |name: &str, ticket_type, seats: usize| NewSection {
        name: name.into(),
        ticket_type: Some(ticket_type),
        rows: vec![NewRow {
            name: "1".into(),
            seats: (1..=seats).map(|i| i.to_string()).collect(),
            rank: None,
        }],
    };
    let untyped = NewPlan {
        sections: vec![
            section("S", s, 4),
            NewSection {
                ticket_type: None,
                ..section("X", b, 1)
            },
        ],
    };
    assert!(matches!(
        f.t.load_seating(event, &untyped),
        Err(DomainError::Validation {
            field: "sections",
            ..
        })
    ));
    let plan = NewPlan {
        sections: vec![section("S", s, 4), section("B", b, 2)],
    };
    f.t.load_seating(event, &plan).unwrap();
    let inventory = f.t.inventory(event).unwrap();
    let capacities: Vec<i32> = inventory.quotas.iter().map(|q| q.quota.capacity).collect();
    assert_eq!(capacities, vec![4, 2]);
    let balcony_pair = Operation::Reserve(Reserve::seated(
        event,
        Quantity::new(2, 10).unwrap(),
        None,
        SeatRequest::Best {
            quantity: 2,
            ticket_type: Some(b),
            together: true,
        },
    ));
    let hold = one(&f.t, balcony_pair.clone()).unwrap();
    assert_eq!(labels_of(&hold), vec!["B-1-1", "B-1-2"]);
    assert_eq!(hold.lines.len(), 1);
    assert_eq!((hold.lines[0].ticket_type, hold.lines[0].quantity), (b, 2));
    assert_eq!(one(&f.t, balcony_pair), Err(DomainError::SoldOut));
    let mixed = one(&f.t, seats(event, &["S-1-1", "S-1-2"])).unwrap();
    assert_eq!(
        (mixed.lines[0].ticket_type, mixed.lines[0].quantity),
        (s, 2)
    );
    let inventory = f.t.inventory(event).unwrap();
    let reserved: Vec<i32> = inventory.quotas.iter().map(|q| q.reserved).collect();
    assert_eq!(reserved, vec![2, 2]);
    assert_seats_consistent(&h, &f.t, event, &[hold, mixed]);
}

/// 300 reserves of two random seats of a 100-seat plan, and as many best-available pairs, at
/// once over two servers' handles: no seat in two holds, every granted pair adjacent, and the
/// counters equal the seats held.
pub fn simultaneous_seat_reserves_never_give_a_seat_twice<H: Harness>() {
    let h = H::new();
    let servers = [live(h.store(), TTL), live(h.another_store(), TTL)];
    let event = seated(&servers[0], &rows(&[10; 10]));
    let labels: Vec<String> = (1..=10)
        .flat_map(|r| (1..=10).map(move |s| format!("A-{r}-{s}")))
        .collect();
    let picked = together(16, |worker| {
        let t = &servers[worker % 2];
        let mut got = Vec::new();
        for i in 0..20 {
            // A cheap, fixed spread of seat pairs per worker and request.
            let a = (worker * 37 + i * 11) % 100;
            let b = (a + 1 + (worker + i) % 7) % 100;
            if let Ok(hold) = one(t, seats(event, &[&labels[a], &labels[b]])) {
                got.push((hold, false));
            }
            if i % 2 == 0 {
                if let Ok(hold) = one(t, best(event, 2)) {
                    got.push((hold, true));
                }
            }
        }
        got
    });
    let (holds, bests): (Vec<Reservation>, Vec<bool>) = picked.into_iter().flatten().unzip();
    assert!(bests.iter().any(|b| *b) && bests.iter().any(|b| !*b));
    for (hold, best) in holds.iter().zip(&bests) {
        assert_eq!(hold.seats.len(), 2);
        if *best {
            let ids: Vec<i64> = hold.seats.iter().map(|s| s.id.get()).collect();
            assert!(
                ids[1] == ids[0] + 1 && (ids[0] - 1) / 10 == (ids[1] - 1) / 10,
                "a best-available pair is adjacent in one row: {:?}",
                labels_of(hold)
            );
        }
    }
    let taken: usize = holds.iter().map(|h| h.seats.len()).sum();
    let summary = servers[0].event_summary(event).unwrap();
    assert_eq!(
        i64::from(summary.reserved),
        i64::try_from(taken).unwrap(),
        "the counters equal the seats held"
    );
    assert_seats_consistent(&h, &servers[0], event, &holds);
    let free: usize = letters(&servers[1], event)
        .iter()
        .map(|row| {
            row.chars()
                .filter(|c| *c == SeatStatus::Free.letter())
                .count()
        })
        .sum();
    assert_eq!(free + taken, 100);
}

/// The database itself refuses a second holder of a seat: `write` inserts a holder row the
/// way a writer around the domain would (the seat, and a reservation id). The seat a hold has
/// is refused; a free seat is not (so the refusal is the key's, not a broken statement).
pub fn the_database_refuses_a_second_holder_of_a_seat<H: Harness>(
    write: impl Fn(&H, EventId, i64, &str) -> Result<(), String>,
) {
    let h = H::new();
    let f = Fixture::of(&h);
    let event = seated(&f.t, &rows(&[3]));
    let hold = one(&f.t, seats(event, &["A-1-1"])).unwrap();
    let stranger = "0190a1b2-0000-7000-8000-000000000001";
    let refused = write(&h, event, 1, stranger).expect_err("a second holder of seat 1");
    let lowered = refused.to_lowercase();
    assert!(
        lowered.contains("unique") || lowered.contains("duplicate"),
        "refused by the key: {refused}"
    );
    write(&h, event, 2, stranger).expect("a free seat takes a holder row");
    // Seat 1 is still the hold's.
    let view = map(&f.t, event);
    assert_eq!(
        view.map
            .holder(domain::SeatId::new(1))
            .map(domain::Holder::reservation),
        Some(hold.id)
    );
}
