-- A segment used as a target group has one linked to it; deleting the segment deletes it.

ALTER TABLE target_groups ADD COLUMN segment_id BIGINT REFERENCES segments (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX target_groups_by_segment ON target_groups (segment_id);
