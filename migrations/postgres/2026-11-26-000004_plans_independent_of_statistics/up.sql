-- The partial index of due holds serves one query: the expiry sweep's search for the holds due
-- longest, across events. Its predicate names `quantity > 0` (true of every row, by the CHECK on
-- quantity), which only the sweep's query states: so no other query can use this index. On a
-- new database, before statistics exist, PostgreSQL otherwise took it (a scan of every due
-- hold) for an event's read and a batch's writes, and kept those plans as the table grew.
DROP INDEX reservations_due_holds_idx;
CREATE INDEX reservations_due_holds_idx ON reservations (expires_at)
    WHERE status = 'reserved' AND quantity > 0;
