-- cohort's schema on PostgreSQL. Times are microseconds since the Unix epoch (UTC),
-- as BIGINT, the same as on SQLite. Attributes are JSONB; origin and scope lists keep
-- the text encodings shared with SQLite (cohort_store::codec).

CREATE TABLE applications (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    default_currency TEXT NOT NULL,
    allowed_origins  TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL
);

CREATE TABLE segment_groups (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    reference  TEXT NOT NULL UNIQUE,
    calculated BOOLEAN NOT NULL,
    exclusive  BOOLEAN NOT NULL
);

CREATE TABLE segments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id   BIGINT NOT NULL REFERENCES segment_groups (id),
    name       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    calculated BOOLEAN NOT NULL,
    UNIQUE (group_id, reference)
);

CREATE TABLE target_groups (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    active    BOOLEAN NOT NULL
);

CREATE TABLE customers (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    attributes        JSONB NOT NULL,
    active            BOOLEAN NOT NULL,
    profiling_consent BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE memberships (
    customer_seq        BIGINT NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    segment_id          BIGINT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    source              TEXT NOT NULL,
    assigned_at         BIGINT NOT NULL,
    application_counter BIGINT NOT NULL,
    expires_at          BIGINT,
    PRIMARY KEY (customer_seq, segment_id)
);

CREATE INDEX memberships_by_segment ON memberships (segment_id, customer_seq);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
