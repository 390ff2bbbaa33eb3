-- Every role's database has the same shape: an inbox, an outbox, keyed state, timers and a journal.
CREATE TABLE processed_messages (
  message_id   TEXT PRIMARY KEY,
  processed_at INTEGER NOT NULL
);

CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  topic      TEXT    NOT NULL,
  msg_key    TEXT    NOT NULL,
  value      TEXT    NOT NULL,
  headers    TEXT,
  created_at INTEGER NOT NULL,
  sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE state (
  scope      TEXT    NOT NULL,
  key        TEXT    NOT NULL,
  value      TEXT    NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);

-- At most one pending timer per key (a saga waits for one thing at a time).
CREATE TABLE timers (
  key    TEXT PRIMARY KEY,
  due_at INTEGER NOT NULL,
  input  TEXT    NOT NULL
);
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE journal (
  message_id TEXT PRIMARY KEY,
  order_id   TEXT    NOT NULL,
  saga_id    TEXT    NOT NULL,
  direction  TEXT    NOT NULL,
  topic      TEXT    NOT NULL,
  type       TEXT    NOT NULL,
  attempt    INTEGER,
  at         INTEGER NOT NULL,
  envelope   TEXT    NOT NULL
);
CREATE INDEX journal_order ON journal (order_id, at);
CREATE INDEX journal_saga ON journal (saga_id, at);
