-- A story's owner (a user name of its account, or an operator's) and why it was closed. Only
-- assigned stories are in the owner index, so ingest, which never sets an owner, writes no
-- entry into it.
ALTER TABLE stories ADD COLUMN assignee TEXT;
ALTER TABLE stories ADD COLUMN close_reason TEXT;
CREATE INDEX stories_assignee ON stories(account_id, assignee COLLATE NOCASE, updated_at, id)
    WHERE assignee IS NOT NULL;
