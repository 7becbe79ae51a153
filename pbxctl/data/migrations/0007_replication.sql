-- pbxctl schema 7: the self-service tables, ready to be replicated per prefecture.
--
-- Each prefecture's IVR holds its own slice of accounts, bills and outages through PostgreSQL
-- logical replication (publications with a row filter per prefecture: PostgreSQL 15+).
-- A row filter can only name the table's own columns, so bills carry their account's
-- prefecture (kept by triggers, never written by hand); and a row filter on UPDATE/DELETE
-- may only use replica-identity columns, so each table's identity is its key + prefecture.

ALTER TABLE bills ADD COLUMN prefecture text;
UPDATE bills b SET prefecture = a.prefecture FROM accounts a WHERE a.account_no = b.account_no;
ALTER TABLE bills ALTER COLUMN prefecture SET NOT NULL;

CREATE FUNCTION pbxctl_bill_prefecture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An unknown account gets '': the foreign key then names the real problem.
    NEW.prefecture := coalesce(
        (SELECT prefecture FROM accounts WHERE account_no = NEW.account_no), NEW.prefecture, '');
    RETURN NEW;
END $$;
CREATE TRIGGER bills_prefecture BEFORE INSERT OR UPDATE OF account_no ON bills
    FOR EACH ROW EXECUTE FUNCTION pbxctl_bill_prefecture();

-- An account moved to another prefecture takes its bills along (at a replica: an update
-- that leaves one slice is a delete there and an insert in the other).
CREATE FUNCTION pbxctl_account_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bills SET prefecture = NEW.prefecture WHERE account_no = NEW.account_no;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_moved AFTER UPDATE OF prefecture ON accounts
    FOR EACH ROW WHEN (OLD.prefecture IS DISTINCT FROM NEW.prefecture)
    EXECUTE FUNCTION pbxctl_account_moved();

CREATE UNIQUE INDEX accounts_replica ON accounts (account_no, prefecture);
ALTER TABLE accounts REPLICA IDENTITY USING INDEX accounts_replica;
CREATE UNIQUE INDEX bills_replica ON bills (account_no, period, prefecture);
ALTER TABLE bills REPLICA IDENTITY USING INDEX bills_replica;
CREATE UNIQUE INDEX outages_replica ON outages (id, prefecture);
ALTER TABLE outages REPLICA IDENTITY USING INDEX outages_replica;
