-- The by-segment index carries the expiry, so reading a segment's members (the live
-- index's snapshot) is a range scan of this index alone, without a lookup of every
-- membership in the table.
DROP INDEX memberships_by_segment;
CREATE INDEX memberships_by_segment ON memberships (segment_id, customer_seq, expires_at);
