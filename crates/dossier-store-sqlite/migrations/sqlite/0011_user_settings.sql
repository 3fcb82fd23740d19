-- What a person chose for their own view of the Workbench (the story list's columns), kept
-- with the user so that it follows them from one browser to another, and goes with them.
CREATE TABLE user_settings (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
