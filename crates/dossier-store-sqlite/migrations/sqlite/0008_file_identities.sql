-- A file is known by several hashes, and producers key it by different ones (SentinelOne and
-- Defender by its SHA-1, CrowdStrike by its SHA-256). Each name of a file known by more than
-- one maps to the file's identity (dossier_domain::files); a hash with no row is its own. A
-- story's file_hash now holds the identity of its file, so that the outbreak count spans
-- producers. The rows of a database that already holds incidents are learnt from them when
-- this migration runs.
CREATE TABLE file_aliases (
    account_id  TEXT NOT NULL,
    hash        TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    PRIMARY KEY (account_id, hash)
) WITHOUT ROWID;
CREATE INDEX file_aliases_file ON file_aliases(account_id, file_id);
