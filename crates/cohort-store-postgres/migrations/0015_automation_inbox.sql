-- How many activities of each type every customer has, kept by every insert of
-- activities in its own transaction, so automation conditions read a count instead of
-- counting the customer's activities. Deleting a customer deletes its counts.

CREATE TABLE activity_counts (
    customer_seq BIGINT NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (customer_seq, type)
);

INSERT INTO activity_counts (customer_seq, type, count)
SELECT customer_seq, type, count(*) FROM activities GROUP BY customer_seq, type;

-- Activities automation has yet to react to: every transaction that records activities
-- adds the ranges of their seqs (concurrent transactions interleave their seqs, so a
-- batch may have several). `reacts` is false for activities that automation actions
-- tracked: they are counted but fire no rule. Entries are removed in the transaction
-- that queues what they fired. As on SQLite.

CREATE TABLE automation_inbox (
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_activity BIGINT NOT NULL,
    last_activity  BIGINT NOT NULL,
    reacts         BOOLEAN NOT NULL
);
