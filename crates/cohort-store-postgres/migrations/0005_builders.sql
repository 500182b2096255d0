-- Segment builders; order amounts that aggregates can sum exactly; customer changes
-- queue the customer for building. The same semantics as on SQLite.

-- A group has at most one builder, which owns its memberships. `definition` and
-- `state` are JSON text written by the application layer.
CREATE TABLE segment_builders (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    group_id   BIGINT NOT NULL UNIQUE REFERENCES segment_groups (id) ON DELETE CASCADE,
    definition TEXT NOT NULL,
    schedule   TEXT,
    enabled    BOOLEAN NOT NULL,
    state      TEXT,
    built_at   BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- An order's total in ten-thousandths (cohort_store::codec::amount_e4): rounded half
-- away from zero, as numeric's round does, and NULL beyond the range of BIGINT.
ALTER TABLE activities ADD COLUMN amount_e4 BIGINT;

UPDATE activities a
SET amount_e4 = CASE WHEN abs(v.scaled) <= 9223372036854775807 THEN v.scaled::bigint END
FROM (
    SELECT seq, round((order_data::jsonb ->> 'total')::numeric * 10000) AS scaled
    FROM activities
    WHERE order_data IS NOT NULL
) AS v
WHERE a.seq = v.seq;

-- Covers the aggregates of builds: no table lookups (index-only scans).
DROP INDEX activities_by_customer;
CREATE INDEX activities_by_customer ON activities (customer_seq, type, at) INCLUDE (amount_e4);

-- A new customer, or one whose attributes changed, needs building. Queued at the
-- customer's `updated_at`; a customer already queued gets a new version, so a build
-- that read the older attributes does not take it off the queue.
CREATE FUNCTION build_queue_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO segment_build_queue (customer_seq, queued_at) VALUES (NEW.seq, NEW.updated_at)
    ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER build_queue_customer_insert AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION build_queue_customer();

CREATE TRIGGER build_queue_customer_update AFTER UPDATE OF attributes ON customers
    FOR EACH ROW WHEN (NEW.attributes IS DISTINCT FROM OLD.attributes)
    EXECUTE FUNCTION build_queue_customer();
