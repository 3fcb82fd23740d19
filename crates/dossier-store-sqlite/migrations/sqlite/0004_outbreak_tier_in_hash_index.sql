-- When a file reaches more devices, ingest looks for the stories of that file whose stored
-- outbreak tier is now wrong. With the tier in the index that finds them from the index alone;
-- without it, every story of the file was read from the table on every page that touched the
-- file (hundreds of random reads a page for a wide outbreak). The tier changes rarely, and
-- the entry is rewritten whenever the story is anyway (its agent and hash are set again).
DROP INDEX stories_hash;
CREATE INDEX stories_hash ON stories(account_id, file_hash, agent_uuid, outbreak_tier);
