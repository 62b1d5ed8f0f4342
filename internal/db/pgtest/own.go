package pgtest

import (
	"context"
	"testing"
	"time"
)

// Server is a PostgreSQL server of one test's own, which the test may stop
// and start again: the server of Start is shared by the tests of the
// package, which a restart would disturb.
type Server struct {
	// URL is the URL of the server's one database, empty when the server
	// starts, like Start's.
	URL string

	t   testing.TB
	srv *server
}

// OwnServer starts a server for t alone, as Start starts the shared one,
// with one empty database; it is stopped and its files removed at
// t.Cleanup. It skips or fails as Start does when PostgreSQL is missing.
func OwnServer(t testing.TB) *Server {
	t.Helper()
	srv, err := startServer()
	if err != nil {
		if skip, msg := Unavailable(err); skip {
			t.Skip(msg)
		} else {
			t.Fatal(msg)
		}
	}
	t.Cleanup(srv.stop)
	name := databaseName(t.Name(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return &Server{URL: srv.url(name), t: t, srv: srv}
}

// Stop shuts the server down as pg_ctl stop -m fast does (sessions are
// ended, transactions rolled back, a clean checkpoint written) and waits
// until it has exited.
func (s *Server) Stop() {
	s.srv.stopPostmaster()
}

// Start starts the stopped server again on its port and waits until it
// accepts connections; its data is what Stop left.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.srv.run(s.srv.port); err != nil {
		s.t.Fatalf("pgtest: restart: %v", err)
	}
}
