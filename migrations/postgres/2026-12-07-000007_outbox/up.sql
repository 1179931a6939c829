-- The outbox: what happened, written in the transaction that made it happen. Each event's
-- messages are numbered 1, 2, 3, ... with no gap: `events.message_seq` is the last number
-- given, advanced under the event's row lock, and the primary key refuses a number twice.
ALTER TABLE events ADD COLUMN message_seq bigint NOT NULL DEFAULT 0 CHECK (message_seq >= 0);

CREATE TABLE outbox (
    event_id       bigint NOT NULL,
    seq            bigint NOT NULL CHECK (seq >= 1),
    kind           text   NOT NULL,
    reservation_id text   NULL,
    -- Microseconds since the Unix epoch: one integer type on every store.
    created_us     bigint NOT NULL,
    PRIMARY KEY (event_id, seq)
);

-- The sweep deletes messages older than the retention, oldest first.
CREATE INDEX outbox_created ON outbox (created_us);
