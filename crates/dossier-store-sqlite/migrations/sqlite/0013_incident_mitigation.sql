-- Whether each incident's threat is not mitigated, so that a story's criticality and summary
-- count every incident that is not, rather than speak of its latest alone. The covering index
-- takes the column, so a story's aggregates are still read from the index alone. Rows stored
-- before are filled in from their threats when the database is migrated.
ALTER TABLE incidents ADD COLUMN unmitigated INTEGER NOT NULL DEFAULT 0;
DROP INDEX incidents_story;
CREATE INDEX incidents_story ON incidents(story_id, created_at, connector_id, external_id,
    confidence_rank, false_positive, unmitigated);
