-- Activities and the queue of customers whose segments need building again.
-- `seq` is the order of recording (the list cursor); `at` is when the activity happened.
-- Orders are JSON text with decimals as strings (cohort_store::codec), so nothing is
-- rounded. Ids and types are only ever compared for equality: they compare bytes
-- (COLLATE "C", as on SQLite), which keeps their indexes fast whatever the locale.

CREATE TABLE activities (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT COLLATE "C" NOT NULL UNIQUE,
    customer_seq BIGINT NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    type         TEXT COLLATE "C" NOT NULL,
    at           BIGINT NOT NULL,
    attributes   JSONB NOT NULL,
    order_data   TEXT,
    recorded_at  BIGINT NOT NULL
);

CREATE INDEX activities_by_customer ON activities (customer_seq, type, at);

CREATE TABLE segment_build_queue (
    customer_seq BIGINT PRIMARY KEY REFERENCES customers (seq) ON DELETE CASCADE,
    queued_at    BIGINT NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1
);

CREATE INDEX segment_build_queue_by_time ON segment_build_queue (queued_at, customer_seq);
