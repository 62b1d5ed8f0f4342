package main

import (
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// scriptT is the key of the script's testscript.T in its Env.Values (a
// command has no other way to skip its script).
type scriptT struct{}

// cmdPGDatabase sets VAR to the URL of a new empty PostgreSQL database on
// the test server, dropped when the script ends, whatever backend the
// suite runs on:
//
//	pgdatabase VAR
//
// Without PostgreSQL it skips the script, except under CI=true, where it
// fails (pgtest.Unavailable).
func cmdPGDatabase(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pgdatabase VAR")
	}
	url, drop, err := pgtest.NewDatabase(filepath.Base(ts.Getenv("WORK")) + "_" + args[0])
	if err != nil {
		skip, msg := pgtest.Unavailable(err)
		if skip {
			ts.Value(scriptT{}).(testscript.T).Skip(msg)
		}
		ts.Fatalf("%s", msg)
	}
	ts.Defer(func() {
		if err := drop(); err != nil {
			ts.Logf("pgdatabase %s: %v", args[0], err)
		}
	})
	ts.Setenv(args[0], url)
}
