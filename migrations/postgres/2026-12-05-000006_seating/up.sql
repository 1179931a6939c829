-- Assigned seating (docs/architecture.md, "Seating"). An event's plan is its rows; a seat is
-- numbered by its place in the plan, so a row's seats are first_seat .. first_seat + n - 1.
-- Every table carries event_id and its keys lead with it (distribution by event).

-- seat_count > 0: the event has a plan, and every reserve names seats. seat_version counts
-- the changes of its seats (each hold, purchase, cancel, expiry, extend or release of seats,
-- and each plan loaded): the seat map's ETag starts from it.
ALTER TABLE events
    ADD COLUMN seat_count   INTEGER NOT NULL DEFAULT 0 CHECK (seat_count >= 0),
    ADD COLUMN seat_version BIGINT  NOT NULL DEFAULT 0 CHECK (seat_version >= 0);

CREATE TABLE seat_rows (
    event_id       BIGINT  NOT NULL REFERENCES events (id),
    id             INTEGER NOT NULL CHECK (id >= 0),
    section_index  INTEGER NOT NULL CHECK (section_index >= 0),
    section_name   TEXT    NOT NULL,
    ticket_type_id BIGINT  NULL,
    name           TEXT    NOT NULL,
    rank           INTEGER NOT NULL,
    first_seat     INTEGER NOT NULL CHECK (first_seat >= 1),
    -- The row's seats' own labels, in order: a JSON array of strings.
    labels         TEXT    NOT NULL CHECK (jsonb_typeof(labels::jsonb) = 'array'),
    PRIMARY KEY (event_id, id),
    FOREIGN KEY (event_id, ticket_type_id) REFERENCES ticket_types (event_id, id)
);

-- Who has each seat: at most one hold or sale, guaranteed by the primary key whatever the
-- code does. A hold's rows go when it is canceled, expires or releases them; a sale's stay.
-- No row-by-row foreign key on this hot insert path, as for reservations.event_id: rows are
-- written only by the transaction that has locked their event.
CREATE TABLE seat_holds (
    event_id       BIGINT  NOT NULL,
    seat_id        INTEGER NOT NULL CHECK (seat_id >= 1),
    reservation_id UUID    NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

-- A seated hold's seats, as a JSON array of [seat, label] pairs; NULL otherwise. NOT VALID:
-- every row before this migration is NULL.
ALTER TABLE reservations ADD COLUMN seats TEXT NULL;
ALTER TABLE reservations ADD CONSTRAINT reservations_seats_are_an_array
    CHECK (seats IS NULL OR jsonb_typeof(seats::jsonb) = 'array') NOT VALID;
