-- The file ledger and the pull ledger unique by constraint, so that two
-- hosts sharing one database (PostgreSQL) that import the same content or
-- pull the same remote file at once record it once: the loser's insert or
-- update fails on the index instead of a second row, whatever the order in
-- which their checks ran. The SQLite migration of this number is the same.
--
-- An import of content already applied is recorded with mode 'force'
-- (import --force); loads record their mode (delta, full). Rows written
-- before this migration by forced re-imports had mode '': all but the first
-- applied row of each content become 'force', which is what they were.
UPDATE files SET mode = 'force'
WHERE direction = 'in' AND mode = '' AND (status = 'applied' OR status = 'partial')
  AND id NOT IN (SELECT min(id) FROM files WHERE direction = 'in' AND mode = '' AND (status = 'applied' OR status = 'partial')
                 GROUP BY kind, partner, sha256);
CREATE UNIQUE INDEX files_applied_once ON files(kind, partner, sha256)
  WHERE direction = 'in' AND mode = '' AND (status = 'applied' OR status = 'partial');

-- A remote file is pulled once: one done row per site, remote path, size,
-- mtime and content. A second done row written before this migration (a
-- run killed between its transfer and its ledger row, mended since) is
-- marked skipped, naming the first.
UPDATE transfers SET status = 'skipped',
  error = 'recorded twice; the first is transfer ' || (SELECT min(f.id) FROM transfers f
    WHERE f.direction = 'pull' AND f.status = 'done' AND f.site = transfers.site AND f.remote_path = transfers.remote_path
      AND f.size = transfers.size AND f.mtime = transfers.mtime AND f.sha256 = transfers.sha256)
WHERE direction = 'pull' AND status = 'done'
  AND id NOT IN (SELECT min(id) FROM transfers WHERE direction = 'pull' AND status = 'done'
                 GROUP BY site, remote_path, size, mtime, sha256);
CREATE UNIQUE INDEX transfers_pulled_once ON transfers(site, remote_path, size, mtime, sha256)
  WHERE direction = 'pull' AND status = 'done';
