// Package pgtest gives tests a throwaway PostgreSQL server: Start starts one
// server per test binary from the installed PostgreSQL (Debian's postgresql
// package), on a free loopback port, and hands each test a new empty
// database of its own. The server runs with the C locale, so text compares
// bytewise as it does on SQLite.
//
// A test that stops and starts the server (a database restart in the
// middle of a job) takes one of its own with OwnServer, so that the tests
// sharing Start's server are not disturbed.
//
// A package whose tests use Start runs them through Main, so that the
// server is stopped and its files removed when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// A TestMain that hands m to another runner hands it WithServer(m)
// instead. Without either, the server still stops when the test binary
// exits (the kernel signals it when its parent dies), and the next Start
// removes its files.
//
// It runs on Linux, as any user: as root, the server runs as the postgres
// user, since PostgreSQL refuses to run as root.
package pgtest
