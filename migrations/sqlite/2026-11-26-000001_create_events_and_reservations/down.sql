DROP TABLE reservations;
DROP TABLE events;
