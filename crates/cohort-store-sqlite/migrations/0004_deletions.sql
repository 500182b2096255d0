-- The deletions log: which customers were deleted and when, and nothing else.

CREATE TABLE deletions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    deleted_at  INTEGER NOT NULL
);

CREATE INDEX deletions_by_time ON deletions (deleted_at, seq);
