DROP TABLE outbox;
ALTER TABLE events DROP COLUMN message_seq;
