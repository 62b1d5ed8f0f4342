// Package db opens the posbridge SQLite database with the pragmas the tool
// relies on (WAL, busy timeout, foreign keys, immediate write transactions),
// applies the embedded numbered migrations, and takes online backups. It
// also holds what every domain shares on a connection: the Execer and
// Querier interfaces the domain functions take, and the counters of table
// sequences (NextSequence).
package db
