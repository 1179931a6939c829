ALTER TABLE reservations DROP COLUMN lines;
DROP TABLE ticket_type_quotas;
DROP TABLE ticket_types;
DROP TABLE quotas;
ALTER TABLE events DROP COLUMN ticket_type_count, DROP COLUMN quota_count;
