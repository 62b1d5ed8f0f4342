// Package db opens the posbridge SQLite database with the pragmas the tool
// relies on (WAL, busy timeout, foreign keys, immediate write transactions),
// applies the embedded numbered migrations, and takes online backups.
package db
