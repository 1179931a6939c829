DROP TABLE idempotency_keys;
DROP INDEX reservations_event_customer_idx;
DROP INDEX reservations_event_status_expires_idx;
CREATE INDEX reservations_event_status_expires_idx ON reservations (event_id, status, expires_at);
ALTER TABLE reservations DROP COLUMN customer, DROP COLUMN quantity;
