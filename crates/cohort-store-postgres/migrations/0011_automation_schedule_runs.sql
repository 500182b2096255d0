-- A schedule run in progress: the server holding the lease records, with each page of
-- jobs it queues, the last customer key it did; a run whose lease ran out is taken
-- over and goes on after that key.
ALTER TABLE automation_rules ADD COLUMN schedule_lease BIGINT;
ALTER TABLE automation_rules ADD COLUMN schedule_until BIGINT;
ALTER TABLE automation_rules ADD COLUMN schedule_after BIGINT;
