package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The script commands of the inventory transaction import stories
// (import_txn_*.txtar).

// cmdMtime sets the modification time of files to AGO before now, so that
// a script can make a file old enough for import.min_age:
//
//	mtime AGO FILE...
func cmdMtime(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mtime AGO FILE...")
	}
	ago, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("mtime: %v", err)
	}
	at := time.Now().Add(-ago)
	for _, f := range args[1:] {
		ts.Check(os.Chtimes(ts.MkAbs(f), at, at))
	}
}

// cmdSizeAtMost fails unless FILE holds at most MAX bytes (a number with an
// optional KiB or MiB suffix); a script can bound what a run wrote without
// printing it:
//
//	sizeatmost MAX FILE
func cmdSizeAtMost(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sizeatmost MAX FILE")
	}
	max := txnParseSize(ts, args[0])
	st, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if st.Size() > max {
		ts.Fatalf("%s has %d bytes, more than %s", args[1], st.Size(), args[0])
	}
}

func txnParseSize(ts *testscript.TestScript, s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "MiB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		mult, s = 1<<10, strings.TrimSuffix(s, "KiB")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		ts.Fatalf("%q is not a size", s)
	}
	return n * mult
}

// cmdMemrun runs a program like exitcode, with the script's environment
// and working folder, checks its exit code, fails when it ran longer than
// MAXTIME, and on Linux when its peak resident memory, as sampled while it
// ran, was above MAXMEM (KiB or MiB):
//
//	memrun MAXMEM MAXTIME N program [args...]
func cmdMemrun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 4 {
		ts.Fatalf("usage: memrun MAXMEM MAXTIME N program [args...]")
	}
	maxMem := txnParseSize(ts, args[0])
	maxTime, err := time.ParseDuration(args[1])
	if err != nil {
		ts.Fatalf("memrun: %v", err)
	}
	want, err := strconv.Atoi(args[2])
	if err != nil {
		ts.Fatalf("memrun: %q is not an exit code", args[2])
	}
	prog := args[3]
	if !strings.Contains(prog, string(filepath.Separator)) {
		prog = txnLookPath(ts, prog)
	}
	cmd := exec.Command(prog, args[4:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = txnScriptEnv(ts)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		ts.Fatalf("memrun: %v", err)
	}
	peak := make(chan int64)
	done := make(chan struct{})
	go func() { peak <- watchHWM(cmd.Process.Pid, done) }()
	err = cmd.Wait()
	took := time.Since(start)
	close(done)
	hwm := <-peak
	ts.Stdout().Write(stdout.Bytes())
	ts.Stderr().Write(stderr.Bytes())
	if strings.Contains(stderr.String(), "panic: ") {
		ts.Fatalf("%s panicked", args[3])
	}
	got := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode()
	default:
		ts.Fatalf("memrun: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[3], got, want)
	}
	if took > maxTime {
		ts.Fatalf("%s took %s, more than %s", args[3], took.Round(time.Millisecond), maxTime)
	}
	if hwm < 0 {
		ts.Logf("%s: %s, peak memory not measured (no /proc, or it ended before a sample)", args[3], took.Round(time.Millisecond))
		return
	}
	ts.Logf("%s: peak resident memory at least %d MiB, %s", args[3], hwm>>20, took.Round(time.Millisecond))
	if hwm > maxMem {
		ts.Fatalf("%s used %d MiB of memory at its peak, more than %s", args[3], hwm>>20, args[0])
	}
}

// watchHWM samples the peak resident memory (VmHWM in /proc/PID/status,
// Linux) of a running process every millisecond until done is closed, and
// returns the last sample in bytes, or -1 when there was none. The
// rusage of a child (ProcessState.SysUsage) is no use here: on Linux a
// child started from a large process (this test binary, running many
// scripts) reports the parent's peak as its own.
func watchHWM(pid int, done <-chan struct{}) int64 {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	last := int64(-1)
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					f := strings.Fields(rest)
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" && n*1024 > last {
						last = n * 1024
					}
				}
			}
		}
		select {
		case <-done:
			return last
		case <-time.After(time.Millisecond):
		}
	}
}

// txnScriptEnv is the process environment with the variables the script (and
// its setup) set: the ones posbridge reads and PATH.
func txnScriptEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	set := func(k string) {
		v := ts.Getenv(k)
		out := env[:0:0]
		for _, kv := range env {
			if !strings.HasPrefix(kv, k+"=") {
				out = append(out, kv)
			}
		}
		env = append(out, k+"="+v)
	}
	for _, k := range []string{"PATH", "HOME", "XDG_CONFIG_HOME", "POSBRIDGE_DATA_DIR", "POSBRIDGE_DATABASE",
		"POSBRIDGE_IMPORT_MIN_AGE", "POSBRIDGE_IMPORT_ALLOW_NEGATIVE_ON_HAND"} {
		if ts.Getenv(k) != "" || k == "XDG_CONFIG_HOME" {
			set(k)
		}
	}
	return env
}

// txnLookPath finds a program on the script's PATH.
func txnLookPath(ts *testscript.TestScript, prog string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	ts.Fatalf("memrun: %s is not on the script's PATH", prog)
	return ""
}
