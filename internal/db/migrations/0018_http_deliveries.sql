-- HTTP sites (issue 14). A delivery is one record (or one file) sent to a
-- partner's endpoint, by its key: the record's messageId, else the file's
-- sha256 and the record's number. A row is written as started before the
-- request goes, so a run killed before the answer sends the record again
-- with the same key (and Idempotency-Key header); done or rejected rows are
-- never sent again. One row per site, endpoint and key.
CREATE TABLE http_deliveries (
  id          INTEGER PRIMARY KEY,
  site        TEXT NOT NULL,
  endpoint    TEXT NOT NULL,
  key         TEXT NOT NULL,
  local_path  TEXT NOT NULL,
  record      INTEGER NOT NULL,
  status      TEXT NOT NULL,
  http_status INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0,
  error       TEXT NOT NULL DEFAULT '',
  run_id      INTEGER REFERENCES runs(id),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  UNIQUE (site, endpoint, key)
);
CREATE INDEX http_deliveries_status ON http_deliveries(site, status, id);

-- The watermark of an http pull: the start time of the last pull of the
-- endpoint that finished, sent as its since parameter by the next.
CREATE TABLE http_watermarks (
  site       TEXT NOT NULL,
  endpoint   TEXT NOT NULL,
  since      TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (site, endpoint)
);
