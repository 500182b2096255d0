-- The membership log: every change to a customer's existence or memberships, written
-- by triggers in the same transaction, so in-memory indexes in any process can follow
-- every writer (API, imports, builders, other servers). `segment_id` is NULL for a
-- customer's creation or deletion. The same semantics as on SQLite.
--
-- Deleting a segment removes its memberships by ON DELETE CASCADE, and the cascade's
-- deletes fire the row triggers below like any other. A cascade's row triggers only run
-- after every row trigger of the statement that caused it, though, so a customer's
-- memberships would be logged gone after the customer: a BEFORE DELETE trigger removes
-- them first (logging each), and the cascade finds nothing left to do.

CREATE TABLE membership_log (
    position     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_seq BIGINT NOT NULL,
    segment_id   BIGINT,
    present      BOOLEAN NOT NULL,
    expires_at   BIGINT
);

CREATE FUNCTION membership_log_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
        VALUES (NEW.seq, NULL, TRUE, NULL);
    ELSE
        INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
        VALUES (OLD.seq, NULL, FALSE, NULL);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION membership_log_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
        VALUES (OLD.customer_seq, OLD.segment_id, FALSE, NULL);
    ELSE
        INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
        VALUES (NEW.customer_seq, NEW.segment_id, TRUE, NEW.expires_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER membership_log_customer_insert AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION membership_log_customer();

CREATE FUNCTION membership_log_customer_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memberships WHERE customer_seq = OLD.seq;
    RETURN OLD;
END;
$$;

CREATE TRIGGER membership_log_customer_memberships BEFORE DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION membership_log_customer_memberships();

CREATE TRIGGER membership_log_customer_delete AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION membership_log_customer();

CREATE TRIGGER membership_log_insert AFTER INSERT ON memberships
    FOR EACH ROW EXECUTE FUNCTION membership_log_membership();

-- Upserts (ON CONFLICT DO UPDATE) fire this one for the rows that existed.
CREATE TRIGGER membership_log_update AFTER UPDATE OF expires_at ON memberships
    FOR EACH ROW WHEN (NEW.expires_at IS DISTINCT FROM OLD.expires_at)
    EXECUTE FUNCTION membership_log_membership();

CREATE TRIGGER membership_log_delete AFTER DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION membership_log_membership();
