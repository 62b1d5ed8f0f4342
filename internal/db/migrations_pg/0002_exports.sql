-- Exports (issue 3): per-kind sequence numbers that never repeat, and the
-- file rows that make a run recoverable after a crash.

CREATE TABLE sequences (
  kind text PRIMARY KEY,
  last bigint NOT NULL
);

-- Out files move writing -> written -> complete, or to abandoned when the
-- run failed or died before the file was finished.
ALTER TABLE files ADD COLUMN sequence bigint;
-- A marker file F.done is wanted for this file.
ALTER TABLE files ADD COLUMN marker bigint NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN error text NOT NULL DEFAULT '';

-- Triggers of one export file; loads leave file_id NULL, so they pay nothing.
CREATE INDEX triggers_file ON triggers(file_id, record_key, sub_key) WHERE file_id IS NOT NULL;
