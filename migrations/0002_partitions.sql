-- State follows its input partition: every row knows the partition it belongs to, so a partition
-- can be wiped and restored from its changelog on its own. The file is a cache of the changelogs.
ALTER TABLE processed_messages ADD COLUMN seen_key TEXT;
ALTER TABLE processed_messages ADD COLUMN part INTEGER;
CREATE INDEX processed_by_key ON processed_messages (seen_key);
CREATE INDEX processed_by_part ON processed_messages (part);

ALTER TABLE state ADD COLUMN part INTEGER;
CREATE INDEX state_by_part ON state (part);

ALTER TABLE timers ADD COLUMN part INTEGER;

-- value becomes nullable (a changelog tombstone); part is the input partition whose handling wrote
-- the row (NULL: not tied to a partition, e.g. an HTTP request); dest_partition pins a record to a
-- partition (changelog records go to the partition of their input).
CREATE TABLE outbox_v2 (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  topic          TEXT    NOT NULL,
  msg_key        TEXT    NOT NULL,
  value          TEXT,
  headers        TEXT,
  created_at     INTEGER NOT NULL,
  sent_at        INTEGER,
  part           INTEGER,
  dest_partition INTEGER,
  -- Rows written by one transaction share a unit; a relay never splits a unit between two sends.
  unit           INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_v2 (id, topic, msg_key, value, headers, created_at, sent_at)
  SELECT id, topic, msg_key, value, headers, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX outbox_unsent ON outbox (part, id) WHERE sent_at IS NULL;

-- A role that reads every partition itself (the api's read model) keeps its positions here, in the
-- same transaction as the state they produced, so a deleted file is re-read from the start.
CREATE TABLE positions (
  topic       TEXT    NOT NULL,
  part        INTEGER NOT NULL,
  next_offset TEXT    NOT NULL,
  PRIMARY KEY (topic, part)
);

-- saga show reads the topics and the changelog now; the journal's two envelopes per message go.
DROP TABLE journal;
