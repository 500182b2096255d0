-- The deletions log: which customers were deleted and when, and nothing else. `seq` is
-- the order of deletion (the list cursor). The same semantics as on SQLite.

CREATE TABLE deletions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id TEXT NOT NULL,
    deleted_at  BIGINT NOT NULL
);

CREATE INDEX deletions_by_time ON deletions (deleted_at, seq);
