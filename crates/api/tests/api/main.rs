//! HTTP feature tests: the real actix app on a real socket, on a store of its own per test.
//! Every test runs on both stores (PostgreSQL and the embedded SQLite); the few that reach
//! under the app into PostgreSQL run there only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::too_many_lines
)]

mod helpers;

mod batching;
mod commit_outcome;
mod concurrency;
mod docs;
mod envelope;
mod events;
mod fuzz;
mod health;
mod idempotency;
mod inventory;
mod metrics;
mod protection;
mod purchase;
mod quantities;
mod reservations;
mod reserve;
mod seats;
mod stream;
mod webhooks;

/// One `#[actix_web::test]` per test and store.
macro_rules! tests {
    ($store:ident on $backend:ident: $($module:ident :: $name:ident),* $(,)?) => {
        mod $store {
            $(
                #[actix_web::test]
                async fn $name() {
                    crate::$module::$name(crate::helpers::Backend::$backend).await;
                }
            )*
        }
    };
}

macro_rules! both_stores {
    ($($module:ident :: $name:ident),* $(,)?) => {
        tests!(postgres on Postgres: $($module::$name),*);
        tests!(sqlite on Sqlite: $($module::$name),*);
    };
}

both_stores!(
    concurrency::fifty_parallel_reserves_on_capacity_ten_answer_ten_201_and_forty_409,
    concurrency::twenty_parallel_purchases_of_one_hold_answer_one_200_and_nineteen_409,
    docs::the_openapi_document_is_served_as_openapi_3_1,
    docs::the_docs_page_and_its_assets_come_from_the_binary,
    envelope::unknown_routes_answer_404_in_the_envelope,
    envelope::wrong_methods_answer_405_naming_the_allowed_ones,
    envelope::malformed_json_answers_400,
    envelope::bodies_over_64_kib_answer_413,
    envelope::bodies_of_another_content_type_answer_415,
    envelope::health_answers_200,
    events::create_event_answers_201_with_the_event_and_its_counts,
    fuzz::any_request_gets_a_json_answer_never_a_500_or_a_hang,
    events::create_event_answers_401_without_or_with_a_wrong_token,
    events::create_event_answers_401_to_everyone_when_no_token_is_configured,
    events::create_event_answers_422_listing_every_invalid_field,
    events::show_event_counts_only_active_holds_and_adds_up_to_capacity,
    events::show_event_answers_404_for_unknown_or_malformed_ids,
    events::list_events_pages_newest_first_with_a_next_cursor,
    events::list_events_answers_422_for_a_bad_limit_or_cursor,
    events::update_event_changes_name_and_capacity,
    events::update_event_refuses_below_sold_unknown_events_bad_fields_and_strangers,
    batching::five_hundred_parallel_reserves_on_capacity_one_hundred_grant_exactly_one_hundred_across_batches,
    batching::parallel_purchases_of_many_holds_are_each_won_once,
    health::live_and_ready_answer_200_when_the_store_is_up,
    health::ready_answers_503_while_migrations_are_pending_and_live_stays_200,
    metrics::metrics_are_prometheus_text_with_requests_outcomes_batches_and_the_pool,
    protection::a_sane_request_id_is_echoed_and_any_other_is_replaced_by_a_new_one,
    protection::every_answer_is_nosniff_and_no_store,
    protection::cors_lets_allowed_origins_in_and_tells_others_nothing,
    protection::without_allowed_origins_no_cors_header_is_sent,
    protection::writes_over_the_rate_limit_answer_429_with_retry_after_and_reads_pass,
    protection::x_forwarded_for_picks_the_bucket_only_behind_a_trusted_proxy,
    protection::oversized_headers_are_refused_without_reaching_a_handler,
    idempotency::a_retry_with_the_same_key_replays_the_first_answer_byte_for_byte,
    idempotency::purchase_and_cancel_retries_replay_their_first_answer,
    idempotency::a_refusal_is_replayed_too,
    idempotency::the_same_key_with_another_request_answers_422_idempotency_key_reused,
    idempotency::a_malformed_key_answers_422_and_changes_nothing,
    idempotency::twenty_parallel_identical_reserves_with_one_key_make_one_reservation,
    purchase::purchase_answers_200_with_the_purchased_reservation,
    purchase::purchase_answers_200_without_a_body,
    purchase::purchase_answers_409_already_purchased_the_second_time,
    purchase::purchase_answers_409_invalid_or_expired_once_the_hold_ran_out,
    purchase::purchase_answers_409_invalid_or_expired_after_a_cancel,
    purchase::purchase_answers_404_for_unknown_or_malformed_ids,
    purchase::purchase_answers_422_for_a_long_or_non_string_payment_reference,
    purchase::purchase_answers_422_for_control_characters_and_the_purchases_beside_it_succeed,
    quantities::reserve_of_several_tickets_answers_201_with_the_quantity_and_counts_tickets,
    quantities::reserve_answers_409_sold_out_with_the_seeds_body_when_fewer_than_asked_are_left,
    quantities::reserve_answers_422_for_a_bad_quantity_or_customer,
    quantities::purchase_and_cancel_move_every_ticket_of_a_hold,
    quantities::the_customer_limit_answers_409_customer_limit_reached,
    reservations::show_reservation_answers_200_and_404,
    reservations::cancel_releases_the_ticket_and_cannot_be_repeated,
    reserve::reserve_answers_201_with_a_hold_that_expires_after_the_ttl,
    reserve::reserve_answers_409_sold_out_when_no_ticket_is_left,
    reserve::reserve_answers_422_for_an_unknown_or_malformed_event,
    reserve::a_past_due_hold_frees_its_ticket_at_once_without_any_sweep,
    inventory::quotas_and_ticket_types_are_created_by_operators_and_listed_on_the_event,
    inventory::a_typed_reserve_takes_from_every_quota_and_answers_with_its_lines,
    inventory::a_short_typed_reserve_answers_sold_out_naming_the_short_types,
    inventory::a_reserve_naming_types_wrongly_answers_422_on_its_field,
    inventory::extend_and_release_change_a_hold_through_group_commit,
    inventory::update_quota_answers_409_below_sold_and_404_for_an_unknown_quota,
    seats::a_plan_loads_and_the_seat_map_reads_with_an_etag_304_and_gzip,
    seats::seats_are_held_by_label_or_best_available_and_a_taken_seat_is_named,
    seats::seated_reserves_and_releases_refuse_what_does_not_fit_on_their_fields,
    seats::a_plan_is_for_operators_checked_and_locked_once_a_seat_is_held,
    seats::the_seat_map_page_and_its_files_come_from_the_binary,
    stream::the_outbox_lists_each_change_in_order_for_operators_only,
    stream::the_stream_sends_availability_at_once_and_after_every_change,
    stream::the_stream_of_an_unknown_event_answers_404,
    stream::a_seated_events_stream_names_the_seats_that_changed,
    webhooks::deliveries_arrive_signed_and_a_failure_is_retried_with_the_same_id,
    webhooks::a_410_turns_the_endpoint_off_and_removed_endpoints_get_nothing,
    webhooks::a_private_target_is_refused_unless_allowed,
    webhooks::webhooks_are_for_operators_and_bad_requests_are_named,
    webhooks::a_hung_receiver_times_out_and_never_holds_up_reserves,
    webhooks::redirects_are_not_followed_and_names_are_checked_where_they_resolve,
);

// These reach under the app into PostgreSQL (kill its connections, drop its database).
tests!(postgres_only on Postgres:
    commit_outcome::a_commit_cut_off_answers_503_outcome_unknown_and_a_retry_settles_it,
    commit_outcome::the_statement_timeout_never_cancels_a_commit,
    envelope::a_lost_database_answers_503_in_the_envelope,
    health::ready_answers_503_within_a_second_when_the_database_is_gone,
    protection::a_batch_stuck_on_a_row_lock_answers_503_after_the_lock_timeout,
    batching::a_batch_whose_transaction_fails_answers_all_its_requests_503_and_grants_nothing,
);
