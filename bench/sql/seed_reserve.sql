-- The seed's reserve, as one pgbench transaction: lock the event, count the tickets taken
-- (purchased, or held and not yet expired), insert a hold if one is left. Its cost grows with
-- the number of reservation rows of the event.
-- Variables: :event (the event id), :capacity (its capacity).
BEGIN;
SELECT id FROM events WHERE id = :event FOR UPDATE;
SELECT count(*) AS taken FROM reservations
 WHERE event_id = :event
   AND (status = 'purchased' OR (status = 'reserved' AND expires_at > now())) \gset
\if :taken < :capacity
INSERT INTO reservations (id, event_id, status, expires_at, created_at, updated_at)
VALUES (gen_random_uuid(), :event, 'reserved', now() + interval '10 minutes', now(), now());
\endif
COMMIT;
