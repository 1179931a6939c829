-- The foreign key reservations.event_id -> events.id ran a trigger and a query for every
-- inserted hold: on a group-committed batch, a third of the database's time. The reference is
-- kept by other means:
--   * the service inserts holds only inside the transaction that has locked their event's row
--     (SELECT ... FOR UPDATE), so the event exists and cannot be deleted before the commit;
--   * a hold never moves to another event (trigger below; it fires only for UPDATEs that name
--     event_id, which the service never issues);
--   * an event with reservations cannot be deleted (trigger below; deletes are rare).
-- What is given up: a hand-written INSERT with an unknown event_id is not refused.
ALTER TABLE reservations DROP CONSTRAINT reservations_event_id_fkey;

CREATE FUNCTION reservations_forbid_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id IS DISTINCT FROM OLD.event_id THEN
        RAISE EXCEPTION 'a reservation cannot move to another event'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER reservations_event_fixed
    BEFORE UPDATE OF event_id ON reservations
    FOR EACH ROW EXECUTE FUNCTION reservations_forbid_event_change();

CREATE FUNCTION events_forbid_delete_with_reservations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = OLD.id) THEN
        RAISE EXCEPTION 'event % still has reservations', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER events_keep_referenced
    BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_forbid_delete_with_reservations();
