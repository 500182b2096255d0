-- How many activities of each type every customer has, kept by every insert of
-- activities in its own transaction, so automation conditions read a count instead of
-- counting the customer's activities. Deleting a customer deletes its counts.

CREATE TABLE activity_counts (
    customer_seq INTEGER NOT NULL,
    type         TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (customer_seq, type)
) WITHOUT ROWID;

INSERT INTO activity_counts (customer_seq, type, count)
SELECT customer_seq, type, count(*) FROM activities GROUP BY customer_seq, type;

-- Activities automation has yet to react to: every transaction that records activities
-- adds the range of their seqs (one writer at a time: a batch's seqs follow each other).
-- `reacts` is false for activities that automation actions tracked: they are counted
-- but fire no rule. Entries are removed in the transaction that queues what they fired.

CREATE TABLE automation_inbox (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    first_activity INTEGER NOT NULL,
    last_activity  INTEGER NOT NULL,
    reacts         INTEGER NOT NULL
);
