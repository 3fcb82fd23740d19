-- An incident row names its producer, so that its raw JSON is mapped again with its own
-- source's mapping when it is read. Every row stored before was SentinelOne's. Adding a column
-- with a constant default rewrites no row.
ALTER TABLE incidents ADD COLUMN producer TEXT NOT NULL DEFAULT 'sentinelone';
