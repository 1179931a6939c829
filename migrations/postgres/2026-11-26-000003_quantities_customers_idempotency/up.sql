-- Several tickets per hold: counters count tickets (every existing hold holds one).
ALTER TABLE reservations
    ADD COLUMN quantity INTEGER NOT NULL DEFAULT 1 CONSTRAINT reservations_quantity_positive CHECK (quantity >= 1),
    -- The shop's own reference for the customer, for the optional per-customer limit.
    ADD COLUMN customer TEXT NULL
        CONSTRAINT reservations_customer_length CHECK (char_length(customer) BETWEEN 1 AND 128);

-- The past-due count of an event read sums tickets: carry the quantity in the index so the
-- range scan needs no heap visit for it.
DROP INDEX reservations_event_status_expires_idx;
CREATE INDEX reservations_event_status_expires_idx
    ON reservations (event_id, status, expires_at) INCLUDE (quantity);

-- The per-customer limit reads one customer's reservations of one event.
CREATE INDEX reservations_event_customer_idx
    ON reservations (event_id, customer) WHERE customer IS NOT NULL;

-- Idempotency keys and the first answer given under each, written in the same transaction as
-- the request's effect. status and body are NULL only inside the claiming transaction.
CREATE TABLE idempotency_keys (
    key         TEXT        PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 255),
    fingerprint TEXT        NOT NULL,
    status      SMALLINT    NULL,
    body        TEXT        NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
