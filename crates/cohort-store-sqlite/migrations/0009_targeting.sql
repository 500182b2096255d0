-- Targeting rules (the client's JSON), visitors with their state, and a version that
-- moves with every change of a rule or a target group, so servers compile again.

CREATE TABLE targeting_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE targeting_version (version INTEGER NOT NULL);
INSERT INTO targeting_version (version) VALUES (0);

CREATE TRIGGER targeting_rules_inserted AFTER INSERT ON targeting_rules
BEGIN UPDATE targeting_version SET version = version + 1; END;
CREATE TRIGGER targeting_rules_updated AFTER UPDATE ON targeting_rules
BEGIN UPDATE targeting_version SET version = version + 1; END;
CREATE TRIGGER targeting_rules_deleted AFTER DELETE ON targeting_rules
BEGIN UPDATE targeting_version SET version = version + 1; END;
CREATE TRIGGER target_groups_inserted AFTER INSERT ON target_groups
BEGIN UPDATE targeting_version SET version = version + 1; END;
CREATE TRIGGER target_groups_updated AFTER UPDATE ON target_groups
BEGIN UPDATE targeting_version SET version = version + 1; END;
CREATE TRIGGER target_groups_deleted AFTER DELETE ON target_groups
BEGIN UPDATE targeting_version SET version = version + 1; END;

CREATE TABLE visitors (
    id           TEXT PRIMARY KEY,
    customer_seq INTEGER REFERENCES customers (seq) ON DELETE SET NULL,
    last_seen    INTEGER NOT NULL,
    state        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX visitors_by_customer ON visitors (customer_seq, last_seen) WHERE customer_seq IS NOT NULL;
CREATE INDEX visitors_by_last_seen ON visitors (last_seen);
