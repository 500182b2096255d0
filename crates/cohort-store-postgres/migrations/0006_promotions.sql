-- Promotions, their code groups and codes, code uses per customer, placed orders and
-- per-application type priorities.

-- `definition` is JSON written by the application layer (the promotion without its id);
-- `budget` and `spent` are in minor units of the promotion's currency.
CREATE TABLE promotions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    definition TEXT NOT NULL,
    budget     BIGINT,
    spent      BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row: bumped with every change of a definition or of type priorities.
CREATE TABLE promotions_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO promotions_version (id, version) VALUES (1, 0);

ALTER TABLE applications ADD COLUMN type_priorities TEXT;

CREATE TABLE code_groups (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id          BIGINT NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    pattern               TEXT,
    count                 BIGINT NOT NULL,
    max_uses              BIGINT,
    max_uses_per_customer BIGINT,
    expires_at            BIGINT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX code_groups_by_promotion ON code_groups (promotion_id);

-- Codes are unique across promotions (kept in upper case).
CREATE TABLE promotion_codes (
    code     TEXT COLLATE "C" PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES code_groups (id) ON DELETE CASCADE,
    used     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX promotion_codes_by_group ON promotion_codes (group_id, code);

CREATE TABLE code_uses (
    code         TEXT NOT NULL REFERENCES promotion_codes (code) ON DELETE CASCADE,
    customer_seq BIGINT NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    used         BIGINT NOT NULL,
    PRIMARY KEY (code, customer_seq)
);
CREATE INDEX code_uses_by_customer ON code_uses (customer_seq);

-- Placed orders, for idempotent placing: the answer given is returned again. A deleted
-- customer's orders keep only their id, application, time and answer.
CREATE TABLE orders (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    customer_seq   BIGINT REFERENCES customers (seq) ON DELETE SET NULL,
    placed_at      BIGINT NOT NULL,
    answer         TEXT NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_seq);
