-- The same model as migrations/postgres (webhooks), in SQLite's types.
CREATE TABLE webhook_endpoints (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    url             TEXT    NOT NULL,
    kinds           TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    removed         INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
    disabled_reason TEXT    NULL,
    created_us      INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id),
    event_id        INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    reservation_id  TEXT    NULL,
    message_us      INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_us INTEGER NOT NULL,
    last_status     INTEGER NULL,
    last_error      TEXT    NULL,
    UNIQUE (endpoint_id, event_id, seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (id) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    at_us       INTEGER NOT NULL,
    status_code INTEGER NULL,
    error       TEXT    NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- The sweep deletes finished deliveries of messages older than the retention.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (message_us) WHERE status <> 'pending';
