-- The same model as migrations/postgres (assigned seating), in SQLite's types.
ALTER TABLE events ADD COLUMN seat_count INTEGER NOT NULL DEFAULT 0 CHECK (seat_count >= 0);
ALTER TABLE events ADD COLUMN seat_version INTEGER NOT NULL DEFAULT 0 CHECK (seat_version >= 0);

CREATE TABLE seat_rows (
    event_id       INTEGER NOT NULL REFERENCES events (id),
    id             INTEGER NOT NULL CHECK (id >= 0),
    section_index  INTEGER NOT NULL CHECK (section_index >= 0),
    section_name   TEXT    NOT NULL,
    ticket_type_id INTEGER NULL,
    name           TEXT    NOT NULL,
    rank           INTEGER NOT NULL,
    first_seat     INTEGER NOT NULL CHECK (first_seat >= 1),
    labels         TEXT    NOT NULL CHECK (json_valid(labels)),
    PRIMARY KEY (event_id, id),
    FOREIGN KEY (event_id, ticket_type_id) REFERENCES ticket_types (event_id, id)
);

-- Who has each seat: at most one hold or sale, guaranteed by the primary key.
CREATE TABLE seat_holds (
    event_id       INTEGER NOT NULL,
    seat_id        INTEGER NOT NULL CHECK (seat_id >= 1),
    reservation_id TEXT    NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

ALTER TABLE reservations ADD COLUMN seats TEXT NULL CHECK (seats IS NULL OR json_valid(seats));
