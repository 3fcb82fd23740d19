-- Failed sign-ins, counted by every node together, so that spreading guesses over the nodes
-- behind a load balancer gains nothing. A key is a digest of a user name, an address or both
-- (never the name as typed, which may be a password typed in the wrong field).
CREATE TABLE sign_in_failures (
    key  TEXT COLLATE "C" NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures(key, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures(at);
