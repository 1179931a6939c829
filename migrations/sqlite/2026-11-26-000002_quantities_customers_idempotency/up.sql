-- Several tickets per hold: counters count tickets (every existing hold holds one).
ALTER TABLE reservations ADD COLUMN quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1);
-- The shop's own reference for the customer, for the optional per-customer limit.
ALTER TABLE reservations ADD COLUMN customer TEXT NULL CHECK (length(customer) BETWEEN 1 AND 128);

CREATE INDEX reservations_event_customer_idx ON reservations (event_id, customer)
    WHERE customer IS NOT NULL;

-- Idempotency keys and the first answer given under each, written in the same transaction as
-- the request's effect. status and body are NULL only inside the claiming transaction.
CREATE TABLE idempotency_keys (
    key         TEXT    PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint TEXT    NOT NULL,
    status      INTEGER NULL,
    body        TEXT    NULL,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
