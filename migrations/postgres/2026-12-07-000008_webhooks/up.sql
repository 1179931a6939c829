-- Webhook endpoints and their deliveries. A delivery is one outbox message for one endpoint,
-- written in the message's transaction (a copy of the message, so that pruning the outbox
-- never loses one), claimed by any server for an attempt.
CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text   NOT NULL,
    -- `*`, or the kinds of message wanted, joined by commas.
    kinds           text   NOT NULL,
    secret          text   NOT NULL,
    enabled         bigint NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    removed         bigint NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
    disabled_reason text   NULL,
    created_us      bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id),
    event_id        bigint NOT NULL,
    seq             bigint NOT NULL,
    kind            text   NOT NULL,
    reservation_id  text   NULL,
    message_us      bigint NOT NULL,
    status          text   NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_us bigint NOT NULL,
    last_status     bigint NULL,
    last_error      text   NULL,
    UNIQUE (endpoint_id, event_id, seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (id) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
    attempt     bigint NOT NULL CHECK (attempt >= 1),
    at_us       bigint NOT NULL,
    status_code bigint NULL,
    error       text   NULL,
    duration_ms bigint NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- The sweep deletes finished deliveries of messages older than the retention.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (message_us) WHERE status <> 'pending';
