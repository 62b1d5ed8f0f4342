-- Transfers (issue 5): one row per file moved to or from a site. A pull
-- skips a remote file that already has a done row with the same site,
-- remote path, size and mtime; the same name with new content is fetched.

CREATE TABLE transfers (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  site        TEXT NOT NULL,
  direction   TEXT NOT NULL CHECK (direction IN ('push','pull')),
  local_path  TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  size        INTEGER NOT NULL DEFAULT 0,
  mtime       TEXT NOT NULL DEFAULT '',
  sha256      TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL CHECK (status IN ('started','done','failed','skipped')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  error       TEXT NOT NULL DEFAULT '',
  run_id      INTEGER REFERENCES runs(id),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- "Already fetched?" for every listed remote file of a pull.
CREATE INDEX transfers_fetched ON transfers(site, remote_path, size, mtime) WHERE status = 'done';
