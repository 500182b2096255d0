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

-- Sources of segments. `config` holds the settings of http services as JSON text
-- (cohort_store::codec).
CREATE TABLE segmentation_services (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    config    TEXT NOT NULL,
    available BOOLEAN NOT NULL
);

INSERT INTO segmentation_services (id, name, kind, config, available) VALUES ('standard', 'Standard', 'standard', '{}', TRUE);

-- Which services each application uses.
CREATE TABLE application_services (
    application_seq BIGINT NOT NULL REFERENCES applications (seq) ON DELETE CASCADE,
    service_id      TEXT NOT NULL REFERENCES segmentation_services (id) ON DELETE CASCADE,
    PRIMARY KEY (application_seq, service_id)
);

CREATE TABLE segment_groups (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service    TEXT NOT NULL REFERENCES segmentation_services (id),
    name       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    calculated BOOLEAN NOT NULL,
    exclusive  BOOLEAN NOT NULL,
    UNIQUE (service, reference)
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
