-- Transfers (issue 5): one row per file moved to or from a site. A pull
-- skips a remote file that already has a done row with the same site,
-- remote path, size and mtime; the same name with new content is fetched.

CREATE TABLE transfers (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  site        text NOT NULL,
  direction   text NOT NULL CHECK (direction IN ('push','pull')),
  local_path  text NOT NULL,
  remote_path text NOT NULL,
  size        bigint NOT NULL DEFAULT 0,
  mtime       text NOT NULL DEFAULT '',
  sha256      text NOT NULL DEFAULT '',
  status      text NOT NULL CHECK (status IN ('started','done','failed','skipped')),
  attempts    bigint NOT NULL DEFAULT 0,
  error       text NOT NULL DEFAULT '',
  run_id      bigint REFERENCES runs(id),
  created_at  text NOT NULL,
  updated_at  text NOT NULL
);

-- "Already fetched?" for every listed remote file of a pull.
CREATE INDEX transfers_fetched ON transfers(site, remote_path, size, mtime) WHERE status = 'done';
