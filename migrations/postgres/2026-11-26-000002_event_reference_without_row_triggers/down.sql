DROP TRIGGER events_keep_referenced ON events;
DROP FUNCTION events_forbid_delete_with_reservations();
DROP TRIGGER reservations_event_fixed ON reservations;
DROP FUNCTION reservations_forbid_event_change();
ALTER TABLE reservations
    ADD CONSTRAINT reservations_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
