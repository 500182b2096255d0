-- Promotions, their code groups and codes, code uses per customer, placed orders and
-- per-application type priorities.

-- `definition` is JSON written by the application layer (the promotion without its id);
-- `budget` and `spent` are in minor units of the promotion's currency.
CREATE TABLE promotions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    definition TEXT NOT NULL,
    budget     INTEGER,
    spent      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row: bumped with every change of a definition or of type priorities.
CREATE TABLE promotions_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO promotions_version (id, version) VALUES (1, 0);

ALTER TABLE applications ADD COLUMN type_priorities TEXT;

CREATE TABLE code_groups (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id          INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    pattern               TEXT,
    count                 INTEGER NOT NULL,
    max_uses              INTEGER,
    max_uses_per_customer INTEGER,
    expires_at            INTEGER,
    created_at            INTEGER NOT NULL
);
CREATE INDEX code_groups_by_promotion ON code_groups (promotion_id);

-- Codes are unique across promotions (kept in upper case).
CREATE TABLE promotion_codes (
    code     TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES code_groups (id) ON DELETE CASCADE,
    used     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX promotion_codes_by_group ON promotion_codes (group_id, code);

CREATE TABLE code_uses (
    code         TEXT NOT NULL REFERENCES promotion_codes (code) ON DELETE CASCADE,
    customer_seq INTEGER NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    used         INTEGER NOT NULL,
    PRIMARY KEY (code, customer_seq)
) WITHOUT ROWID;
CREATE INDEX code_uses_by_customer ON code_uses (customer_seq);

-- Placed orders, for idempotent placing: the answer given is returned again. A deleted
-- customer's orders keep only their id, application, time and answer.
CREATE TABLE orders (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    customer_seq   INTEGER REFERENCES customers (seq) ON DELETE SET NULL,
    placed_at      INTEGER NOT NULL,
    answer         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX orders_by_customer ON orders (customer_seq);
