-- Activities keep their customer's key without a foreign key. The reference cost every
-- inserted row a lookup of its customer (about a sixth of an insert), although every
-- writer already holds what it guarantees: activities are written only by the one
-- writer, after looking their customers up under its write lock, and deleting a customer
-- deletes its activities in the same transaction (`delete_customer`), no longer by a
-- cascade. SQLite cannot drop a constraint, so the table is rebuilt with the same columns.

CREATE TABLE activities_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    customer_seq INTEGER NOT NULL,
    type         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    attributes   TEXT NOT NULL,
    order_data   TEXT,
    recorded_at  INTEGER NOT NULL,
    amount_e4    INTEGER
);

INSERT INTO activities_new (seq, id, customer_seq, type, at, attributes, order_data, recorded_at, amount_e4)
SELECT seq, id, customer_seq, type, at, attributes, order_data, recorded_at, amount_e4 FROM activities;

DROP TABLE activities;
ALTER TABLE activities_new RENAME TO activities;

-- Covers the aggregates of builds: no table lookups.
CREATE INDEX activities_by_customer ON activities (customer_seq, type, at, amount_e4);
