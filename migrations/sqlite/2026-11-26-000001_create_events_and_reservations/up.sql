-- The same model as migrations/postgres, in SQLite's types. Timestamps are UTC text with six
-- fractional digits ('2026-11-26T01:09:54.476266Z'): fixed width, so text order is time order,
-- and SQLite's date functions read them. Reservation ids are hyphenated UUID text.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    capacity        INTEGER NOT NULL CHECK (capacity >= 1 AND capacity <= 2147483647),
    -- reservations with status 'purchased'
    purchased_count INTEGER NOT NULL DEFAULT 0 CHECK (purchased_count >= 0),
    -- reservations with status 'reserved', past-due ones included until released
    reserved_count  INTEGER NOT NULL DEFAULT 0 CHECK (reserved_count >= 0),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    CONSTRAINT events_counters_within_capacity CHECK (purchased_count + reserved_count <= capacity)
);

CREATE TABLE reservations (
    id                TEXT    PRIMARY KEY NOT NULL,
    event_id          INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status            TEXT    NOT NULL
        CHECK (status IN ('reserved', 'purchased', 'expired', 'canceled')),
    purchased_at      TEXT    NULL,
    expires_at        TEXT    NULL,
    payment_reference TEXT    NULL CHECK (length(payment_reference) <= 64),
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    CONSTRAINT reservations_purchased_at_iff_purchased
        CHECK ((status = 'purchased') = (purchased_at IS NOT NULL)),
    CONSTRAINT reservations_hold_has_expiry CHECK (status <> 'reserved' OR expires_at IS NOT NULL)
);

CREATE INDEX reservations_event_status_expires_idx ON reservations (event_id, status, expires_at);
CREATE INDEX reservations_due_holds_idx ON reservations (expires_at) WHERE status = 'reserved';
