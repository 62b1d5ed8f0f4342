// Command testsummary runs go test -json and prints what go test prints
// without -v (the ok and FAIL lines of each package, and the output of
// each failed test, grouped by test), then every skipped test with the
// reason it gave, then one closing line "tests: N passed, N failed, N
// skipped". make test runs it, so that a skipped test (no sshd, no
// xmllint, running as root) is seen, not hidden in a passing package.
//
// Usage: testsummary GO [go test flags and packages]
//
// GO is the go command to run. The exit code is go test's, or 1 when a
// test failed and go test said nothing.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testsummary GO [go test flags and packages]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], append([]string{"test", "-json"}, os.Args[2:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	s := newSummary(os.Stdout)
	readErr := s.read(out)
	waitErr := cmd.Wait()
	s.close()
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		os.Exit(exit.ExitCode())
	case waitErr != nil || readErr != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", errors.Join(waitErr, readErr))
		os.Exit(1)
	case s.failed > 0 || s.buildFailed:
		os.Exit(1)
	}
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	// ImportPath is set on build-output and build-fail events.
	ImportPath string
}

// skip is a skipped test and its reason.
type skip struct{ pkg, test, reason string }

// summary turns the events into the short output.
type summary struct {
	w              io.Writer
	passed, failed int
	skipped        []skip
	buildFailed    bool
	output         map[string][]string // by package and test, until it ends
	running        map[string][]string // the tests of a package that have not ended
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, output: map[string][]string{}, running: map[string][]string{}}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (a line of a test binary that bypassed
			// test2json): show it as it is.
			fmt.Fprintln(s.w, sc.Text())
			continue
		}
		s.add(e)
	}
	return sc.Err()
}

// add takes one event.
func (s *summary) add(e event) {
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.w, e.Output)
	case e.Action == "build-fail":
		s.buildFailed = true
	case e.Test == "":
		s.packageEvent(e)
	case e.Action == "run":
		s.running[e.Package] = append(s.running[e.Package], key)
	case e.Action == "output":
		s.output[key] = append(s.output[key], e.Output)
	case e.Action == "pass":
		s.passed++
		delete(s.output, key)
	case e.Action == "skip":
		s.skipped = append(s.skipped, skip{pkg: e.Package, test: e.Test, reason: skipReason(s.output[key])})
		delete(s.output, key)
	case e.Action == "fail":
		s.failed++
		s.flush(key)
	}
}

// packageEvent prints a package's own lines as go test does without -v:
// not the bare PASS line. A package that failed shows the output of its
// tests that never ended (a panic, a timeout).
func (s *summary) packageEvent(e event) {
	switch e.Action {
	case "output":
		if e.Output == "FAIL\n" || strings.HasPrefix(e.Output, "FAIL\t") {
			for _, key := range s.running[e.Package] {
				s.flush(key)
			}
		}
		if e.Output != "PASS\n" {
			fmt.Fprint(s.w, e.Output)
		}
	case "fail":
		for _, key := range s.running[e.Package] {
			s.flush(key)
		}
	}
	if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
		delete(s.running, e.Package)
	}
}

// flush prints the output of a test, without the === lines of -v.
func (s *summary) flush(key string) {
	for _, line := range s.output[key] {
		if !strings.HasPrefix(line, "=== ") {
			fmt.Fprint(s.w, line)
		}
	}
	delete(s.output, key)
}

// logLine is a line of t.Log, t.Skip or a testscript's skip: file:line:
// message, indented.
var logLine = regexp.MustCompile(`^\s+([\w.-]+\.go:\d+): (.*\S)`)

// skipReason is the last logged line of a skipped test (t.Skip logs its
// reason last); testscript's own lines (the script's environment) do not
// count, its skip command's line does.
func skipReason(lines []string) string {
	reason := "(no reason given)"
	for _, l := range lines {
		if m := logLine.FindStringSubmatch(l); m != nil && !strings.HasPrefix(m[1], "testscript.go:") {
			reason = m[2] + " (" + m[1] + ")"
		}
	}
	return reason
}

// close prints the skipped tests and the closing line.
func (s *summary) close() {
	if len(s.skipped) > 0 {
		fmt.Fprintf(s.w, "\nskipped tests (%d):\n", len(s.skipped))
		for _, k := range s.skipped {
			fmt.Fprintf(s.w, "  %s %s: %s\n", k.pkg, k.test, k.reason)
		}
	}
	fmt.Fprintf(s.w, "\ntests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
}
