//! The tables, as Diesel sees them (see `migrations/sqlite`).

diesel::table! {
    events (id) {
        id -> BigInt,
        name -> Text,
        capacity -> Integer,
        purchased_count -> Integer,
        reserved_count -> Integer,
        created_at -> Text,
        updated_at -> Text,
        quota_count -> Integer,
        ticket_type_count -> Integer,
        seat_count -> Integer,
        seat_version -> BigInt,
    }
}

diesel::table! {
    reservations (id) {
        id -> Text,
        event_id -> BigInt,
        status -> Text,
        purchased_at -> Nullable<Text>,
        expires_at -> Nullable<Text>,
        payment_reference -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
        quantity -> Integer,
        customer -> Nullable<Text>,
        lines -> Nullable<Text>,
        seats -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        fingerprint -> Text,
        status -> Nullable<Integer>,
        body -> Nullable<Text>,
        created_at -> Text,
        expires_at -> Text,
    }
}

diesel::joinable!(reservations -> events (event_id));
diesel::allow_tables_to_appear_in_same_query!(events, reservations, idempotency_keys);
