-- A change of a customer's attributes or consent is written to the membership log as
-- its presence again (`segment_id` NULL, `present` TRUE), so caches of customer
-- profiles in every process learn of it with the memberships (the segment index
-- applies it as the customer's existence, which changes nothing). As on SQLite.

CREATE FUNCTION membership_log_customer_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
    VALUES (NEW.seq, NULL, TRUE, NULL);
    RETURN NULL;
END;
$$;

CREATE TRIGGER membership_log_customer_update AFTER UPDATE OF attributes, profiling_consent ON customers
    FOR EACH ROW
    WHEN (NEW.attributes IS DISTINCT FROM OLD.attributes OR NEW.profiling_consent IS DISTINCT FROM OLD.profiling_consent)
    EXECUTE FUNCTION membership_log_customer_update();
