-- A value sealed with the secret key every node of this database must share: a node started
-- with another key cannot open it, and refuses to start rather than seal connector tokens the
-- other nodes cannot read.
CREATE TABLE key_check (
    one     BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    sealed  BYTEA NOT NULL
);
