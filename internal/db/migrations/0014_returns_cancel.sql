-- issue 12: being written
SELECT 1;
