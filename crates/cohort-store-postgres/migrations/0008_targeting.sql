-- Targeting rules (the client's JSON), visitors with their state, and a version that
-- moves with every change of a rule or a target group, so servers compile again.

CREATE TABLE targeting_rules (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE targeting_version (version BIGINT NOT NULL);
INSERT INTO targeting_version (version) VALUES (0);

CREATE FUNCTION targeting_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targeting_version SET version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER targeting_rules_changed AFTER INSERT OR UPDATE OR DELETE ON targeting_rules
    FOR EACH ROW EXECUTE FUNCTION targeting_changed();
CREATE TRIGGER target_groups_changed AFTER INSERT OR UPDATE OR DELETE ON target_groups
    FOR EACH ROW EXECUTE FUNCTION targeting_changed();

CREATE TABLE visitors (
    id           TEXT PRIMARY KEY,
    customer_seq BIGINT REFERENCES customers (seq) ON DELETE SET NULL,
    last_seen    BIGINT NOT NULL,
    state        TEXT NOT NULL
);
CREATE INDEX visitors_by_customer ON visitors (customer_seq, last_seen) WHERE customer_seq IS NOT NULL;
CREATE INDEX visitors_by_last_seen ON visitors (last_seen);
