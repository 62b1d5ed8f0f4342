-- HTTP sites (issue 14). A delivery is one record (or one file) sent to a
-- partner's endpoint, by its key: the record's messageId, else the file's
-- sha256 and the record's number. A row is written as started before the
-- request goes, so a run killed before the answer sends the record again
-- with the same key (and Idempotency-Key header); done or rejected rows are
-- never sent again. One row per site, endpoint and key.
-- The id is SQLite's rowid there (INTEGER PRIMARY KEY without
-- AUTOINCREMENT); the code never gives it, so it is an identity here too.
CREATE TABLE http_deliveries (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  site        text NOT NULL,
  endpoint    text NOT NULL,
  key         text NOT NULL,
  local_path  text NOT NULL,
  record      bigint NOT NULL,
  status      text NOT NULL,
  http_status bigint NOT NULL DEFAULT 0,
  attempts    bigint NOT NULL DEFAULT 0,
  error       text NOT NULL DEFAULT '',
  run_id      bigint REFERENCES runs(id),
  created_at  text NOT NULL,
  updated_at  text NOT NULL,
  UNIQUE (site, endpoint, key)
);
CREATE INDEX http_deliveries_status ON http_deliveries(site, status, id);

-- The watermark of an http pull: the start time of the last pull of the
-- endpoint that finished, sent as its since parameter by the next.
CREATE TABLE http_watermarks (
  site       text NOT NULL,
  endpoint   text NOT NULL,
  since      text NOT NULL,
  updated_at text NOT NULL,
  PRIMARY KEY (site, endpoint)
);
