-- From this version an export's claim stores its triggers 'processed'
-- (trigger.Claim): a trigger is processing while the export file it
-- points to is not finished, and finishing the file writes no trigger.
-- Stored rows are not rewritten: a process of the older version that
-- opened the database before this migration may still be running, and it
-- claims as 'processing', gives back only 'processing' triggers and counts
-- only them in flight. So 'processing' stays a claim (trigger's legacy
-- form), made 'processed' when its file is complete.
--
-- files_unfinished finds the unfinished export files that the trigger
-- queries ask for (trigger's unfinished, written alike: SQLite matches a
-- partial index's predicate term by term, and evaluates an IN list of
-- constants slowly); it leads with direction, which SQLite's planner,
-- without statistics, would otherwise find through files_kind, every out
-- file of every kind. triggers_processing finds the triggers claimed the
-- older way, which is none once the older processes are gone.
CREATE INDEX files_unfinished ON files(direction, id) WHERE direction = 'out' AND (status = 'writing' OR status = 'written');
CREATE INDEX triggers_processing ON triggers(file_id) WHERE status = 'processing';
