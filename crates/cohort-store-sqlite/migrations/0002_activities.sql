-- Activities and the queue of customers whose segments need building again.

CREATE TABLE activities (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    customer_seq INTEGER NOT NULL REFERENCES customers (seq) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    attributes   TEXT NOT NULL,
    order_data   TEXT,
    recorded_at  INTEGER NOT NULL
);

CREATE INDEX activities_by_customer ON activities (customer_seq, type, at);

CREATE TABLE segment_build_queue (
    customer_seq INTEGER PRIMARY KEY REFERENCES customers (seq) ON DELETE CASCADE,
    queued_at    INTEGER NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1
);

CREATE INDEX segment_build_queue_by_time ON segment_build_queue (queued_at, customer_seq);
