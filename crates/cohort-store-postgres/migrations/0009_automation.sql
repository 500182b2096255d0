-- Automation rules (the client's JSON) with how often they fired, a version that moves
-- with their definitions, and the durable queue of actions with its dead letters. Jobs
-- and dead letters go with their rule and with their customer.

CREATE TABLE automation_rules (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    definition    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    fired         BIGINT NOT NULL DEFAULT 0,
    last_fired_at BIGINT
);

CREATE TABLE automation_version (version BIGINT NOT NULL);
INSERT INTO automation_version (version) VALUES (0);

CREATE FUNCTION automation_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE automation_version SET version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER automation_rules_written AFTER INSERT OR DELETE OR UPDATE OF definition ON automation_rules
    FOR EACH ROW EXECUTE FUNCTION automation_changed();

CREATE TABLE automation_jobs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id       BIGINT NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
    action        BIGINT NOT NULL,
    customer_seq  BIGINT NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    run_at        BIGINT NOT NULL,
    environment   TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    lease         BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT
);
CREATE INDEX automation_jobs_due ON automation_jobs (run_at, id);
CREATE INDEX automation_jobs_by_rule ON automation_jobs (rule_id);
CREATE INDEX automation_jobs_by_customer ON automation_jobs (customer_seq);

CREATE TABLE automation_dead_letters (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id      BIGINT NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
    action       BIGINT NOT NULL,
    customer_seq BIGINT NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    environment  TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    error        TEXT NOT NULL,
    failed_at    BIGINT NOT NULL
);
CREATE INDEX automation_dead_letters_by_rule ON automation_dead_letters (rule_id);
CREATE INDEX automation_dead_letters_by_customer ON automation_dead_letters (customer_seq);
