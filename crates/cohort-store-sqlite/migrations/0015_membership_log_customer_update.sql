-- A change of a customer's attributes or consent is written to the membership log as
-- its presence again (`segment_id` NULL, `present` 1), so caches of customer profiles
-- in every process learn of it with the memberships (the segment index applies it as
-- the customer's existence, which changes nothing).

CREATE TRIGGER membership_log_customer_update AFTER UPDATE OF attributes, profiling_consent ON customers
WHEN NEW.attributes IS NOT OLD.attributes OR NEW.profiling_consent IS NOT OLD.profiling_consent BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at) VALUES (NEW.seq, NULL, 1, NULL);
END;
