-- The transfers table's CHECK constraints as = ... OR ... instead of
-- IN (...), as migration 19 did for the triggers table: SQLite evaluates
-- an IN list of three or more constants through a temporary index built
-- for each row checked, 2-3% of a push of small files, which writes this
-- table two or three times per file. SQLite cannot alter a CHECK: the
-- table is rebuilt with the same columns in the same order, rows, ids,
-- indexes and AUTOINCREMENT sequence.
--
-- The PostgreSQL migration of this number drops the foreign key from
-- inventory_txns.file_id to files, which its server checked for every
-- history row an import writes. Here the key stays in the schema: the
-- import turns SQLite's checks off for its own transaction
-- (db.WithoutKeyChecks, imports.Upload.KeysHold), which spares the same
-- lookups without rebuilding a history table of millions of rows, and
-- every other writer of the table is still checked.
CREATE TEMP TABLE transfers_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'transfers';
CREATE TABLE transfers_new (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  site        TEXT NOT NULL,
  direction   TEXT NOT NULL CHECK (direction = 'push' OR direction = 'pull'),
  local_path  TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  size        INTEGER NOT NULL DEFAULT 0,
  mtime       TEXT NOT NULL DEFAULT '',
  sha256      TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL CHECK (status = 'started' OR status = 'done' OR status = 'failed' OR status = 'skipped'),
  attempts    INTEGER NOT NULL DEFAULT 0,
  error       TEXT NOT NULL DEFAULT '',
  run_id      INTEGER REFERENCES runs(id),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  stage       TEXT NOT NULL DEFAULT '',
  temp_path   TEXT NOT NULL DEFAULT '',
  temp_mtime  TEXT NOT NULL DEFAULT ''
);
INSERT INTO transfers_new (id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error, run_id,
    created_at, updated_at, stage, temp_path, temp_mtime)
  SELECT id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error, run_id,
    created_at, updated_at, stage, temp_path, temp_mtime FROM transfers;
DROP TABLE transfers;
ALTER TABLE transfers_new RENAME TO transfers;
-- Ids are never reused: the sequence goes on from where it was, not from
-- the highest id left.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM transfers_seq), 0)) WHERE name = 'transfers';
DROP TABLE transfers_seq;
-- "Already fetched?" for every listed remote file of a pull.
CREATE INDEX transfers_fetched ON transfers(site, remote_path, size, mtime) WHERE status = 'done';
-- The latest attempt at a remote path, looked up for every file of a run.
CREATE INDEX transfers_remote ON transfers(site, remote_path, direction, id);
-- A remote file is pulled once (migration 20).
CREATE UNIQUE INDEX transfers_pulled_once ON transfers(site, remote_path, size, mtime, sha256)
  WHERE direction = 'pull' AND status = 'done';
