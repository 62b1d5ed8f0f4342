-- Jobs (issue 6): a job run is a runs row (command 'run JOB') whose steps
-- are runs rows pointing at it; locks keep two runs that touch the same
-- data apart and let the next run take over the lock of a dead one.

ALTER TABLE runs ADD COLUMN parent_id bigint REFERENCES runs(id);
ALTER TABLE runs ADD COLUMN step bigint NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN exit_code bigint;
-- The start time of the process (Linux: /proc/PID/stat field 22), so a
-- reused pid is not taken for the process that started the run.
ALTER TABLE runs ADD COLUMN pid_start text NOT NULL DEFAULT '';

-- The steps of a job run, in order.
CREATE INDEX runs_parent ON runs(parent_id, step) WHERE parent_id IS NOT NULL;
-- Runs still running: the ones to check for a dead process.
CREATE INDEX runs_running ON runs(id) WHERE status = 'running';
-- The last run of each job.
CREATE INDEX runs_job ON runs(job, id) WHERE job <> '' AND parent_id IS NULL;

-- One row per held lock: the job itself (job:NAME) and the data its steps
-- touch (export:items, site:pos, folder:/srv/inbox). A run holds all of its
-- locks or none.
CREATE TABLE locks (
  name        text PRIMARY KEY,
  job         text NOT NULL,
  run_id      bigint REFERENCES runs(id),
  host        text NOT NULL,
  pid         bigint NOT NULL,
  pid_start   text NOT NULL DEFAULT '',
  acquired_at text NOT NULL,
  -- Renewed by the holder while it runs; a lock past it whose holder
  -- cannot be checked (another host) is taken over.
  expires_at  text NOT NULL
);
