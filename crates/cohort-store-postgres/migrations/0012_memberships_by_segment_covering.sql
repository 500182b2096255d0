-- The by-segment index carries the expiry, so reading a segment's members (the live
-- index's snapshot) is an index-only scan, without a lookup of every membership in the table.
-- The new index is built before the old one is dropped: reads of memberships go on while
-- it builds (writes wait for it); only the drop and the rename take the table exclusively.
CREATE INDEX memberships_by_segment_covering ON memberships (segment_id, customer_seq) INCLUDE (expires_at);
DROP INDEX memberships_by_segment;
ALTER INDEX memberships_by_segment_covering RENAME TO memberships_by_segment;
