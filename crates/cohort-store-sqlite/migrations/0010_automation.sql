-- Automation rules (the client's JSON) with how often they fired, a version that moves
-- with their definitions, and the durable queue of actions with its dead letters. Jobs
-- and dead letters go with their rule and with their customer.

CREATE TABLE automation_rules (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    definition    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    fired         INTEGER NOT NULL DEFAULT 0,
    last_fired_at INTEGER
);

CREATE TABLE automation_version (version INTEGER NOT NULL);
INSERT INTO automation_version (version) VALUES (0);

CREATE TRIGGER automation_rules_inserted AFTER INSERT ON automation_rules
BEGIN UPDATE automation_version SET version = version + 1; END;
CREATE TRIGGER automation_rules_updated AFTER UPDATE OF definition ON automation_rules
BEGIN UPDATE automation_version SET version = version + 1; END;
CREATE TRIGGER automation_rules_deleted AFTER DELETE ON automation_rules
BEGIN UPDATE automation_version SET version = version + 1; END;

CREATE TABLE automation_jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id       INTEGER NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
    action        INTEGER NOT NULL,
    customer_seq  INTEGER NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    run_at        INTEGER NOT NULL,
    environment   TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    lease         INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER
);
CREATE INDEX automation_jobs_due ON automation_jobs (run_at, id);
CREATE INDEX automation_jobs_by_rule ON automation_jobs (rule_id);
CREATE INDEX automation_jobs_by_customer ON automation_jobs (customer_seq);

CREATE TABLE automation_dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id      INTEGER NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
    action       INTEGER NOT NULL,
    customer_seq INTEGER NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    environment  TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    failed_at    INTEGER NOT NULL
);
CREATE INDEX automation_dead_letters_by_rule ON automation_dead_letters (rule_id);
CREATE INDEX automation_dead_letters_by_customer ON automation_dead_letters (customer_seq);
