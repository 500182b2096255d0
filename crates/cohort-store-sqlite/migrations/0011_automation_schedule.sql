-- How far each rule's schedule has been run: a server claims the times up to now by
-- moving this from the value it read, so one server runs each scheduled time.
ALTER TABLE automation_rules ADD COLUMN scheduled_through INTEGER;
