-- Segment builders; order amounts that aggregates can sum exactly; customer changes
-- queue the customer for building.

-- A group has at most one builder, which owns its memberships. `definition` and
-- `state` are JSON written by the application layer.
CREATE TABLE segment_builders (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    group_id   INTEGER NOT NULL UNIQUE REFERENCES segment_groups (id) ON DELETE CASCADE,
    definition TEXT NOT NULL,
    schedule   TEXT,
    enabled    INTEGER NOT NULL,
    state      TEXT,
    built_at   INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- An order's total in ten-thousandths. New rows get the exact value from the
-- application; the backfill of older rows goes through floating point, so a total with
-- more than four decimals may be off by 0.0001.
ALTER TABLE activities ADD COLUMN amount_e4 INTEGER;

UPDATE activities
SET amount_e4 = CAST(round(CAST(json_extract(order_data, '$.total') AS REAL) * 10000) AS INTEGER)
WHERE order_data IS NOT NULL;

-- Covers the aggregates of builds: no table lookups.
DROP INDEX activities_by_customer;
CREATE INDEX activities_by_customer ON activities (customer_seq, type, at, amount_e4);

CREATE TRIGGER build_queue_customer_insert AFTER INSERT ON customers BEGIN
    INSERT INTO segment_build_queue (customer_seq, queued_at) VALUES (NEW.seq, NEW.updated_at)
    ON CONFLICT (customer_seq) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER build_queue_customer_update AFTER UPDATE OF attributes ON customers
WHEN NEW.attributes IS NOT OLD.attributes BEGIN
    INSERT INTO segment_build_queue (customer_seq, queued_at) VALUES (NEW.seq, NEW.updated_at)
    ON CONFLICT (customer_seq) DO UPDATE SET version = version + 1;
END;
