-- Nodes and the connectors each may run. A node says it is alive by pushing its expiry
-- forward; connectors are shared out evenly between live nodes. A lease is held by one node
-- until it expires or is given up; taking it bumps the connector's generation, which every
-- page's commit and every health write checks inside its own transaction, so a node that lost
-- a lease (a pause longer than its time to live, a partition) cannot write for it. Times are
-- the database's clock, in microseconds, so nodes' clocks need not agree.
CREATE TABLE nodes (
    id          TEXT COLLATE "C" PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE connector_leases (
    connector_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES connectors(id) ON DELETE CASCADE,
    owner         TEXT COLLATE "C" NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX connector_leases_owner ON connector_leases(owner);
