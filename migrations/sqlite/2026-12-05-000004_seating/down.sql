ALTER TABLE reservations DROP COLUMN seats;
DROP TABLE seat_holds;
DROP TABLE seat_rows;
ALTER TABLE events DROP COLUMN seat_version;
ALTER TABLE events DROP COLUMN seat_count;
