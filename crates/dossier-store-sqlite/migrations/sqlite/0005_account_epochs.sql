-- Per account, how many ingest commits have changed its incidents. A page's plan worked out on
-- a reader is used by the commit only if the epoch it read in its snapshot is still the
-- account's: the check is made inside the write transaction, against the database, so it holds
-- whichever process (or node) committed in between.
CREATE TABLE account_epochs (
    account_id TEXT PRIMARY KEY,
    epoch      INTEGER NOT NULL
) WITHOUT ROWID;
