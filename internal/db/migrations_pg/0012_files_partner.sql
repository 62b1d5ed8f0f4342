-- The partner a file came from (issue 8). An upload's content is applied
-- once per partner: two partners may send byte-identical files (an empty
-- event list, a test file), and each must be applied for its own partner.
-- Empty for every file that is not a partner's.
ALTER TABLE files ADD COLUMN partner text NOT NULL DEFAULT '';
