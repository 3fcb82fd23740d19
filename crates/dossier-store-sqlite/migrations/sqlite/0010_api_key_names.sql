-- An API key's name, given when it is created: the actor that timelines and the audit log
-- show for it. Keys made before have none and keep the actor they had (`api-key:` and the
-- start of their id).
ALTER TABLE api_keys ADD COLUMN name TEXT;
