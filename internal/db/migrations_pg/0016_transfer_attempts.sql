-- The record of a transfer attempt (issue 13): how far it got, so a run
-- killed at any point is finished by the next one without sending or
-- fetching a file twice (docs/transfers.md, "Recovery after a kill").
-- A row is written once the bytes are complete under the temporary name
-- temp_path, with stage 'rename' (its size checked, its sha256 in sha256):
-- the rename to the final name is asked for, and until the row is done
-- whether it happened is unknown. A failure that leaves nothing pending
-- sets stage 'temp'. temp_mtime is the
-- modification time the complete temporary file had on the site (a push):
-- a rename keeps it, so a final file with that size and time is the one
-- renamed. Rows from before this migration have stage ''.
ALTER TABLE transfers ADD COLUMN stage text NOT NULL DEFAULT '';
ALTER TABLE transfers ADD COLUMN temp_path text NOT NULL DEFAULT '';
ALTER TABLE transfers ADD COLUMN temp_mtime text NOT NULL DEFAULT '';

-- The latest attempt at a remote path, looked up for every file of a run.
CREATE INDEX transfers_remote ON transfers(site, remote_path, direction, id);
