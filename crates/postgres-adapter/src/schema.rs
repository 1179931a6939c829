//! The tables, as Diesel sees them (see `migrations/postgres`).

diesel::table! {
    events (id) {
        id -> Int8,
        name -> Text,
        capacity -> Int4,
        purchased_count -> Int4,
        reserved_count -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        quota_count -> Int4,
        ticket_type_count -> Int4,
    }
}

diesel::table! {
    reservations (id) {
        id -> Uuid,
        event_id -> Int8,
        status -> Text,
        purchased_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        payment_reference -> Nullable<Varchar>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        quantity -> Int4,
        customer -> Nullable<Text>,
        lines -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        fingerprint -> Text,
        status -> Nullable<Int2>,
        body -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(reservations -> events (event_id));
diesel::allow_tables_to_appear_in_same_query!(events, reservations, idempotency_keys);
