-- The by-segment index carries the expiry, so reading a segment's members (the live
-- index's snapshot) is an index-only scan, without a lookup of every membership in the table.
-- Building it locks the memberships table: on a large database, upgrade while no other
-- server writes.
DROP INDEX memberships_by_segment;
CREATE INDEX memberships_by_segment ON memberships (segment_id, customer_seq) INCLUDE (expires_at);
