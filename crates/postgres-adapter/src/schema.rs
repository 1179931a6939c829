//! The tables Diesel's query builder writes to (see `migrations/postgres` for all of them;
//! every other statement is a fixed text, prepared once per connection).

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
        seat_count -> Int4,
        seat_version -> Int8,
    }
}
