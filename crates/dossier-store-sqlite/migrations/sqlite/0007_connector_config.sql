-- A connector's kind-specific fields that are not secret (a Defender connector's tenant id and
-- client id, a CrowdStrike connector's cloud and member CID), as a JSON object. Its one secret
-- stays sealed in token_enc. SentinelOne connectors have none.
ALTER TABLE connectors ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
