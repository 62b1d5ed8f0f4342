// Command pbinqbench times inquiries on a large posbridge database for
// make bench (scripts/bench.sh, section inquiries; BENCHMARKS.md,
// "Inquiries"), against the sqlite3 shell answering the same questions on
// the same file.
//
// Usage:
//
//	pbinqbench -data DIR -posbridge BIN [-sqlite3 BIN] [-n 1000] [-seed 1]
//
// It picks n random live SKUs and n random live customers from
// DIR/posbridge.db (reservoir sampling, deterministic for a seed) and
// makes one lookup of each:
//
//   - inventory, in turn by item (all its SKUs, twice as often), by item
//     and SKU, by UPC and by retail reference;
//   - customer search, in turn by the first three letters of the last
//     name, by the part of the email before the @ (a prefix), by the phone
//     written "(303) 555-0101" (digits compared) and by the first three
//     characters of the postal code; first page of 50.
//
// Each lookup is timed four ways, and p50 and p99 are reported per kind:
//
//   - process: one posbridge process per lookup (posbridge inquire ...
//     --output json -q), what a store's script pays, against one sqlite3
//     process per lookup running the same question as one SQL statement;
//   - query: inquiry.Inventory or inquiry.SearchCustomers in one warm
//     process (wall time), against the same SQL statements in one sqlite3
//     shell with .timer on (its user + sys time: .timer's real time has
//     millisecond resolution).
//
// Every lookup must find something (the keys come from the data); one
// that finds nothing fails the run. The output is Markdown table rows on
// stdout, a line of progress per step on stderr.
package main
