-- The Workbench filters stories by device (agent UUID or name) and by a file's hash. Without
-- these, such a filter read every story of the account. A hash keys a random place in an index,
-- so every new story dirties one more page per hash index: measured, indexes on sha1, sha256
-- and md5 cost ingest a fifth of its throughput. A SHA-1 is found through the story's
-- correlation hash (stories_hash), which is its SHA-1 whenever it has one; SHA-256 gets its own
-- index; an MD5 (rarely the only hash) is looked up within the list's time range.
CREATE INDEX stories_device_name ON stories(account_id, device_name COLLATE NOCASE);
CREATE INDEX stories_sha256 ON stories(account_id, sha256);

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
