-- The membership log: every change to a customer's existence or memberships, written
-- by triggers in the same transaction, so in-memory indexes in any process can follow
-- every writer (API, imports, builders, other servers). `segment_id` is NULL for a
-- customer's creation or deletion.

CREATE TABLE membership_log (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_seq INTEGER NOT NULL,
    segment_id   INTEGER,
    present      INTEGER NOT NULL,
    expires_at   INTEGER
);

CREATE TRIGGER membership_log_customer_insert AFTER INSERT ON customers BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at) VALUES (NEW.seq, NULL, 1, NULL);
END;

CREATE TRIGGER membership_log_customer_delete AFTER DELETE ON customers BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at) VALUES (OLD.seq, NULL, 0, NULL);
END;

CREATE TRIGGER membership_log_insert AFTER INSERT ON memberships BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
    VALUES (NEW.customer_seq, NEW.segment_id, 1, NEW.expires_at);
END;

CREATE TRIGGER membership_log_update AFTER UPDATE OF expires_at ON memberships
WHEN NEW.expires_at IS NOT OLD.expires_at BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
    VALUES (NEW.customer_seq, NEW.segment_id, 1, NEW.expires_at);
END;

CREATE TRIGGER membership_log_delete AFTER DELETE ON memberships BEGIN
    INSERT INTO membership_log (customer_seq, segment_id, present, expires_at)
    VALUES (OLD.customer_seq, OLD.segment_id, 0, NULL);
END;
