//! One test suite for every store: the availability rule and the concurrency design
//! (docs/architecture.md), every error, quantities,
//! customer limits, idempotency keys, operator edits, the concurrency guarantees and expiry,
//! written once against the domain's use cases over the store under test.
//!
//! An adapter instantiates it in its own integration tests with a [`Harness`] that makes a
//! fresh, empty store per test:
//!
//! ```text
//! store_conformance::conformance_tests!(MyHarness);
//! ```
//!
//! A behaviour difference between two stores is a bug in one of them.
#![allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use domain::Store;

pub mod concurrency;
mod fixtures;
pub mod inventory;
pub mod outbox;
pub mod rules;
pub mod seating;
pub mod shop;
pub mod webhooks;

pub use fixtures::*;

/// Makes the stores a test runs against.
pub trait Harness: Sized {
    /// The store under test.
    type Store: Store + 'static;

    /// A fresh, empty, migrated store, used by this test only.
    fn new() -> Self;

    /// The store.
    fn store(&self) -> Arc<Self::Store>;

    /// A second handle on the same data (its own pool and connections where the store has
    /// them), standing in for a second server process.
    fn another_store(&self) -> Arc<Self::Store>;

    /// The event's counters and reservation rows, read straight from the store's tables with
    /// the harness's own query (see [`assert_consistent`]).
    fn stored_event(&self, event: domain::EventId) -> StoredEvent;
}

/// Every test of the suite, by name; [`conformance_tests!`] makes one `#[test]` of each.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:ty) => {
        $crate::conformance_tests!(@each $harness;
            rules::create_event_stores_name_and_capacity_with_nothing_taken,
            rules::event_summary_fails_with_event_not_found_for_an_unknown_event,
            rules::reserve_grants_a_hold_that_counts_as_reserved,
            rules::reserve_fails_with_sold_out_when_no_ticket_is_left,
            rules::reserve_fails_with_event_not_found_for_an_unknown_event,
            rules::reserve_of_several_tickets_takes_them_all_or_none,
            rules::a_batch_grants_in_arrival_order_until_sold_out,
            rules::a_past_due_hold_stops_counting_before_any_expire_run,
            rules::reserve_releases_past_due_holds_only_when_the_counters_refuse,
            rules::purchase_marks_an_active_hold_purchased_with_its_reference,
            rules::purchase_without_reference_keeps_it_empty,
            rules::purchase_fails_with_already_purchased_the_second_time,
            rules::purchase_fails_with_invalid_or_expired_when_the_hold_is_past_due,
            rules::purchase_fails_with_invalid_or_expired_when_canceled_or_expired,
            rules::purchase_fails_with_reservation_not_found_for_an_unknown_id,
            rules::cancel_releases_all_its_tickets_at_once,
            rules::cancel_fails_with_already_purchased_when_purchased,
            rules::cancel_fails_with_invalid_or_expired_when_the_hold_is_past_due,
            rules::cancel_fails_with_reservation_not_found_for_an_unknown_id,
            rules::reservation_reads_back_what_reserve_wrote,
            rules::reservation_fails_with_reservation_not_found_for_an_unknown_id,
            rules::expire_due_marks_only_past_due_holds_in_bounded_batches,
            rules::expire_due_is_idempotent,
            rules::a_purchased_hold_is_never_expired,
            rules::a_batch_of_purchases_decides_in_order_with_one_winner_per_hold,
            rules::a_batch_spanning_events_updates_each_events_counters,
            rules::a_batch_mixing_reserves_purchases_and_cancels_decides_in_arrival_order,
            shop::the_customer_limit_counts_active_holds_and_purchases_only,
            shop::a_reserve_without_customer_has_no_limit,
            shop::a_retry_with_the_same_key_replays_the_first_answer_without_a_second_effect,
            shop::a_key_reused_for_another_request_is_refused_and_changes_nothing,
            shop::the_first_answer_is_stored_even_when_it_is_a_refusal,
            shop::a_key_is_free_again_once_its_record_expired_and_the_sweep_purges_it,
            shop::update_event_renames_and_changes_capacity,
            shop::update_event_fails_with_capacity_below_sold_and_changes_nothing,
            shop::update_event_ignores_past_due_holds,
            shop::update_event_fails_with_event_not_found_for_an_unknown_event,
            shop::list_events_pages_newest_first_with_counts,
            concurrency::fifty_simultaneous_reserves_on_capacity_ten_grant_exactly_ten,
            concurrency::simultaneous_reserves_of_several_tickets_never_exceed_the_capacity,
            concurrency::twenty_simultaneous_purchases_of_one_hold_let_exactly_one_win,
            concurrency::twenty_simultaneous_requests_with_one_key_make_one_reservation,
            concurrency::simultaneous_reserves_of_one_customer_stay_within_the_limit,
            concurrency::lowering_the_capacity_while_reserves_go_on_never_oversells,
            concurrency::a_storm_of_reserves_purchases_and_expiries_never_oversells_nor_deadlocks,
            concurrency::two_stores_on_one_database_never_oversell_between_them,
            concurrency::concurrent_batches_over_shared_holds_neither_deadlock_nor_double_sell,
            concurrency::concurrent_expire_runs_mark_each_hold_once,
            inventory::quotas_and_types_start_empty_and_are_read_with_the_event,
            inventory::a_typed_reserve_takes_its_tickets_from_every_quota_of_its_type,
            inventory::a_typed_reserve_short_of_a_shared_quota_fails_naming_the_types_and_holds_nothing,
            inventory::a_reserve_that_names_types_wrongly_is_refused_on_its_field,
            inventory::purchase_and_cancel_move_every_quota_of_a_typed_hold,
            inventory::a_past_due_typed_hold_stops_counting_at_once_and_its_tickets_go_to_the_next_reserve,
            inventory::expire_due_releases_every_quota_of_a_typed_hold,
            inventory::extend_moves_the_expiry_up_to_the_longest_hold_and_no_further,
            inventory::release_gives_back_part_of_a_hold_at_once,
            inventory::a_batch_decides_extends_releases_and_reserves_in_arrival_order,
            inventory::update_quota_never_goes_below_what_is_sold_and_ignores_past_due_holds,
            inventory::a_ticket_type_draws_only_from_its_own_events_distinct_quotas,
            inventory::simultaneous_typed_and_multi_line_reserves_never_oversell_a_quota,
            seating::a_plan_sets_the_capacity_and_every_seat_reads_free,
            seating::a_seat_hold_takes_its_seats_and_a_taken_seat_is_refused_naming_it,
            seating::a_reserve_that_names_seats_wrongly_is_refused_on_seats,
            seating::best_available_takes_adjacent_seats_of_the_best_row_and_sells_out,
            seating::purchase_sells_the_seats_and_cancel_frees_them,
            seating::a_past_due_hold_frees_its_seats_at_once_and_the_sweep_releases_them,
            seating::the_map_version_stays_while_a_past_due_hold_is_released,
            seating::extend_and_release_move_a_seated_holds_seats,
            seating::a_plan_is_locked_while_any_seat_is_held_or_sold,
            seating::sections_sell_as_their_ticket_types_and_set_their_quotas,
            seating::simultaneous_seat_reserves_never_give_a_seat_twice,
            outbox::every_change_writes_its_message_numbered_without_a_gap,
            outbox::a_batch_tells_its_changes_in_arrival_order,
            outbox::simultaneous_writers_on_two_servers_number_messages_without_gap_or_repeat,
            outbox::the_sweep_prunes_messages_past_the_retention_and_numbers_go_on,
            webhooks::each_message_an_endpoint_wants_gets_a_delivery_in_its_transaction,
            webhooks::attempts_are_recorded_once_and_a_410_turns_the_endpoint_off,
            webhooks::servers_claiming_at_once_never_get_the_same_delivery,
        );
    };
    (@each $harness:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::$module::$name::<$harness>();
            }
        )*
    };
}
