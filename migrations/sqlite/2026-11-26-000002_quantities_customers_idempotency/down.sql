DROP TABLE idempotency_keys;
DROP INDEX reservations_event_customer_idx;
ALTER TABLE reservations DROP COLUMN customer;
ALTER TABLE reservations DROP COLUMN quantity;
