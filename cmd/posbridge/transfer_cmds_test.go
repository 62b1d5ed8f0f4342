package main

import (
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/posbridge/posbridge/internal/fsx"
)

// cmdFileLock holds the lock on a lock file (as another posbridge run
// would) until the end of the script:
//
//	filelock LOCKFILE
func cmdFileLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: filelock LOCKFILE")
	}
	l, err := fsx.TryLock(ts.MkAbs(args[0]), 0)
	ts.Check(err)
	ts.Defer(func() { l.Unlock() })
}
