-- The Workbench filters stories by device (agent UUID or name) and by any of a file's hashes.
-- Without these, such a filter read every story of the account. They change only when a story
-- is created (SQLite updates an index only when its columns change), so ingest barely notices.
CREATE INDEX stories_device_name ON stories(account_id, device_name COLLATE NOCASE);
CREATE INDEX stories_sha1 ON stories(account_id, sha1);
CREATE INDEX stories_sha256 ON stories(account_id, sha256);
CREATE INDEX stories_md5 ON stories(account_id, md5);

-- The Workbench's default view is "updated in the last 2 days"; within it analysts sort and
-- group by other columns. Carrying those columns in the (account, updated_at) index lets the
-- page find its 50 rows without reading every matching story. The entry is rewritten whenever
-- a story is updated anyway (updated_at changes), so the wider entry costs ingest little.
DROP INDEX stories_updated;
CREATE INDEX stories_updated ON stories(account_id, updated_at, id, criticality, incident_count,
    status, verdict, severity, device_name, indication);
DROP INDEX stories_status_updated;
CREATE INDEX stories_status_updated ON stories(account_id, status, updated_at, id, criticality,
    device_name, indication);
