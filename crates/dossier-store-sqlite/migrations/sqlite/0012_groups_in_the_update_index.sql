-- The Workbench groups the stories of its time range by file and by device. With the file's
-- identity and the agent id in the (account, updated_at) index, a grouping reads the index
-- alone: measured at a million stories, grouping two days by file took 47 ms this way and
-- about 200 ms reading each story's row. The entry is rewritten whenever a story is updated
-- anyway (updated_at changes), so the wider entry costs ingest little.
DROP INDEX stories_updated;
CREATE INDEX stories_updated ON stories(account_id, updated_at, id, criticality, incident_count,
    status, verdict, severity, device_name, indication, file_hash, agent_uuid);
