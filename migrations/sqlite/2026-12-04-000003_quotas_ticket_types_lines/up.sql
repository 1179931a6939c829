-- The same model as migrations/postgres (quotas, ticket types, the lines of typed holds), in
-- SQLite's types. SQLite numbers rows itself (INTEGER PRIMARY KEY); (event_id, id) is unique so
-- the mapping of types to quotas can refer to it.
ALTER TABLE events ADD COLUMN quota_count INTEGER NOT NULL DEFAULT 0 CHECK (quota_count >= 0);
ALTER TABLE events ADD COLUMN ticket_type_count INTEGER NOT NULL DEFAULT 0
    CHECK (ticket_type_count >= 0);

CREATE TABLE quotas (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    name            TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    capacity        INTEGER NOT NULL CHECK (capacity >= 1 AND capacity <= 2147483647),
    purchased_count INTEGER NOT NULL DEFAULT 0 CHECK (purchased_count >= 0),
    reserved_count  INTEGER NOT NULL DEFAULT 0 CHECK (reserved_count >= 0),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (event_id, id),
    CONSTRAINT quotas_counters_within_capacity CHECK (purchased_count + reserved_count <= capacity)
);

CREATE TABLE ticket_types (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id            INTEGER NOT NULL REFERENCES events (id),
    name                TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    max_per_reservation INTEGER NULL CHECK (max_per_reservation >= 1),
    purchased_count     INTEGER NOT NULL DEFAULT 0 CHECK (purchased_count >= 0),
    reserved_count      INTEGER NOT NULL DEFAULT 0 CHECK (reserved_count >= 0),
    created_at          TEXT    NOT NULL,
    UNIQUE (event_id, id)
);

CREATE TABLE ticket_type_quotas (
    event_id       INTEGER NOT NULL,
    ticket_type_id INTEGER NOT NULL,
    quota_id       INTEGER NOT NULL,
    PRIMARY KEY (event_id, ticket_type_id, quota_id),
    FOREIGN KEY (event_id, ticket_type_id) REFERENCES ticket_types (event_id, id),
    FOREIGN KEY (event_id, quota_id) REFERENCES quotas (event_id, id)
);

-- A typed hold's tickets by type, as a JSON array of [type id, quantity] pairs; NULL for an
-- untyped hold. In the hold's own row: written, changed and released with it.
ALTER TABLE reservations ADD COLUMN lines TEXT NULL CHECK (lines IS NULL OR json_valid(lines));
