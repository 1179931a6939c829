-- The same model as migrations/postgres (the outbox), in SQLite's types.
ALTER TABLE events ADD COLUMN message_seq INTEGER NOT NULL DEFAULT 0 CHECK (message_seq >= 0);

CREATE TABLE outbox (
    event_id       INTEGER NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq >= 1),
    kind           TEXT    NOT NULL,
    reservation_id TEXT    NULL,
    created_us     INTEGER NOT NULL,
    PRIMARY KEY (event_id, seq)
);

-- The sweep deletes messages older than the retention, oldest first.
CREATE INDEX outbox_created ON outbox (created_us);
