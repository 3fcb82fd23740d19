-- Dossier schema, embedded SQLite. Timestamps are microseconds since the epoch (UTC).
-- Sortable text columns are NOT NULL with '' for "none", so keyset paging can compare them.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    licence     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT REFERENCES accounts(id),
    key_hash    TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE connectors (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT,
    tenant_url       TEXT NOT NULL,
    token_enc        BLOB NOT NULL,
    track_errors     INTEGER NOT NULL,
    write_back       INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL,
    status_detail    TEXT,
    last_success_at  INTEGER,
    token_expires_at INTEGER,
    -- Which expiry warning was given for the current token: 0 none, 30, 7, -1 expired.
    expiry_warned    INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    checkpoint       TEXT,
    polls            INTEGER NOT NULL DEFAULT 0,
    errors           INTEGER NOT NULL DEFAULT 0,
    threats          INTEGER NOT NULL DEFAULT 0,
    generation       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX connectors_account ON connectors(account_id);

-- A rowid table (with the story id unique) so that new stories append instead of landing on
-- random pages: story ids are hashes, and random inserts multiply what every commit writes.
CREATE TABLE stories (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL,
    producer            TEXT NOT NULL,
    engine_type         TEXT NOT NULL,
    vendor              TEXT NOT NULL,
    connector_id        TEXT,
    story_key           TEXT NOT NULL,
    previous_id         TEXT,
    indication          TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    verdict             TEXT NOT NULL DEFAULT '',
    severity            TEXT NOT NULL DEFAULT '',
    criticality         INTEGER NOT NULL,
    criticality_detail  TEXT NOT NULL,
    outbreak_tier       INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    first_signal_at     INTEGER NOT NULL,
    last_signal_at      INTEGER NOT NULL,
    incident_count      INTEGER NOT NULL,
    agent_uuid          TEXT NOT NULL DEFAULT '',
    device_name         TEXT NOT NULL DEFAULT '',
    os                  TEXT NOT NULL DEFAULT '',
    sha1                TEXT NOT NULL DEFAULT '',
    sha256              TEXT NOT NULL DEFAULT '',
    md5                 TEXT NOT NULL DEFAULT '',
    file_name           TEXT NOT NULL DEFAULT '',
    file_path           TEXT NOT NULL DEFAULT '',
    file_hash           TEXT NOT NULL DEFAULT '',
    mitigation          TEXT NOT NULL DEFAULT '',
    closed_at           INTEGER,
    search              TEXT NOT NULL DEFAULT ''
);
CREATE INDEX stories_updated ON stories(account_id, updated_at, id);
CREATE INDEX stories_created ON stories(account_id, created_at, id);
CREATE INDEX stories_first_signal ON stories(account_id, first_signal_at, id);
CREATE INDEX stories_status_updated ON stories(account_id, status, updated_at, id);
CREATE INDEX stories_agent ON stories(account_id, agent_uuid);
CREATE INDEX stories_previous ON stories(previous_id) WHERE previous_id IS NOT NULL;
-- Related stories, the hash filter, and how many devices carry a file (the outbreak factor).
CREATE INDEX stories_hash ON stories(account_id, file_hash, agent_uuid);
CREATE INDEX stories_all_updated ON stories(updated_at, id);

CREATE TABLE incidents (
    seq              INTEGER PRIMARY KEY,
    connector_id     TEXT NOT NULL,
    external_id      TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    story_id         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    agent            TEXT,
    sha1             TEXT,
    sha256           TEXT,
    md5              TEXT,
    storyline        TEXT,
    confidence_rank  INTEGER NOT NULL,
    false_positive   INTEGER NOT NULL,
    UNIQUE (connector_id, external_id)
);
-- Covering: a story's aggregates and its latest incident are read from the index alone.
CREATE INDEX incidents_story ON incidents(story_id, created_at, connector_id, external_id,
    confidence_rank, false_positive);
-- One covering index serves every correlation lookup: sha1 fully, and sha256, md5 and storyline
-- by scanning the (account, agent) prefix (a device has few incidents) without touching the
-- table. Four indexes with random keys would each add a random page write to every insert.
CREATE INDEX incidents_terms ON incidents(account_id, agent, sha1, sha256, md5, storyline,
    created_at, story_id, connector_id, external_id);

-- The bodies of incidents, apart from the rows correlation reads, so that those stay small and
-- hot in the cache: the normalised incident (JSON) and the producer's raw JSON, as evidence.
CREATE TABLE incident_bodies (
    seq         INTEGER PRIMARY KEY,
    normalised  TEXT NOT NULL,
    raw         TEXT NOT NULL
);

-- A story id that correlation replaced (an earlier incident arrived late), and its successor.
CREATE TABLE story_aliases (
    old_id  TEXT PRIMARY KEY,
    new_id  TEXT NOT NULL
) WITHOUT ROWID;

-- What happened to a story besides its incidents (which the timeline reads from incidents).
CREATE TABLE timeline (
    seq       INTEGER PRIMARY KEY,
    story_id  TEXT NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT,
    text      TEXT NOT NULL
);
CREATE INDEX timeline_story ON timeline(story_id, at);

CREATE TABLE comments (
    id          TEXT PRIMARY KEY,
    story_id    TEXT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX comments_story ON comments(story_id, created_at);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL
);

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    connector_id  TEXT,
    story_id      TEXT,
    incident_id   TEXT,
    message       TEXT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX events_account ON events(account_id, seq);
