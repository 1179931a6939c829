DROP INDEX reservations_due_holds_idx;
CREATE INDEX reservations_due_holds_idx ON reservations (expires_at) WHERE status = 'reserved';
