-- triggers_file finds the triggers of an export file by its id alone. It
-- was (file_id, record_key, sub_key), in the keys' order for reading a
-- file's records after its claim; a large claim's records are now read
-- beside it from the claimable triggers (export.besideRead), and a small
-- one's are few. Every trigger a claim takes adds an entry to this index:
-- on PostgreSQL an id alone is an 8-byte key, kept once per file
-- (B-tree deduplication) rather than once per trigger with its text keys,
-- and the claim of 1,000,000 SKU triggers takes 4.5-4.8 s instead of
-- 5.5 s. On SQLite the claim costs the same either way.
DROP INDEX triggers_file;
CREATE INDEX triggers_file ON triggers(file_id) WHERE file_id IS NOT NULL;
