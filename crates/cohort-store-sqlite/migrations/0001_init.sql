-- cohort's schema on SQLite. Times are microseconds since the Unix epoch (UTC).
-- Surrogate keys use AUTOINCREMENT so a deleted row's id is never given again
-- (ids reach clients, and customer keys reach in-memory indexes).

CREATE TABLE applications (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    default_currency TEXT NOT NULL,
    allowed_origins  TEXT NOT NULL,
    enabled          INTEGER NOT NULL
);

-- Sources of segments. `config` holds the settings of http services as JSON.
CREATE TABLE segmentation_services (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    config    TEXT NOT NULL,
    available INTEGER NOT NULL
);

INSERT INTO segmentation_services (id, name, kind, config, available) VALUES ('standard', 'Standard', 'standard', '{}', 1);

-- Which services each application uses.
CREATE TABLE application_services (
    application_seq INTEGER NOT NULL REFERENCES applications (seq) ON DELETE CASCADE,
    service_id      TEXT NOT NULL REFERENCES segmentation_services (id) ON DELETE CASCADE,
    PRIMARY KEY (application_seq, service_id)
) WITHOUT ROWID;

CREATE TABLE segment_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    service    TEXT NOT NULL REFERENCES segmentation_services (id),
    name       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    calculated INTEGER NOT NULL,
    exclusive  INTEGER NOT NULL,
    UNIQUE (service, reference)
);

CREATE TABLE segments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id   INTEGER NOT NULL REFERENCES segment_groups (id),
    name       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    calculated INTEGER NOT NULL,
    UNIQUE (group_id, reference)
);

CREATE TABLE target_groups (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    active    INTEGER NOT NULL
);

CREATE TABLE customers (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    attributes        TEXT NOT NULL,
    active            INTEGER NOT NULL,
    profiling_consent INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE memberships (
    customer_seq        INTEGER NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    segment_id          INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    source              TEXT NOT NULL,
    assigned_at         INTEGER NOT NULL,
    application_counter INTEGER NOT NULL,
    expires_at          INTEGER,
    PRIMARY KEY (customer_seq, segment_id)
) WITHOUT ROWID;

CREATE INDEX memberships_by_segment ON memberships (segment_id, customer_seq);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
