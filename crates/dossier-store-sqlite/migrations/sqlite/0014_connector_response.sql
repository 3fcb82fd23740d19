-- Whether a connector allows response actions from a story (kill, quarantine, disconnect, …):
-- off unless an editor turns it on, like write-back.
ALTER TABLE connectors ADD COLUMN response INTEGER NOT NULL DEFAULT 0;
