-- People who sign in to the web UI, their sessions, and what the audit page reads.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    -- NULL only for an operator, who spans accounts.
    account_id     TEXT REFERENCES accounts(id),
    username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    roles          TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_account ON users(account_id);

-- A session is found by the SHA-256 of its cookie, so a copy of the database does not hold
-- live session cookies.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

CREATE INDEX audit_account ON audit_log(account_id, seq);
