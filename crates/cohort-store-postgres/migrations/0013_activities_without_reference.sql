-- Activities keep their customer's key without a foreign key. Its check locked the
-- customer again for every inserted row (about two fifths of an insert), although every
-- writer already holds that lock: a batch takes key share locks on its customers
-- before inserting, an order locks its customer, and deleting a customer deletes its
-- activities after deleting the customer row, in the same transaction
-- (`delete_customer`), no longer by a cascade.
ALTER TABLE activities DROP CONSTRAINT activities_customer_seq_fkey;
