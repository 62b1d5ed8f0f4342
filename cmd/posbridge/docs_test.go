package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDocs replays the command examples of README.md and docs/*.md, by the
// rule of README.md's "How the examples run": every fenced block with a
// "$ " line, file by file in a fresh folder set up as the README says
// (examples/, the demo CSV files, testdata/xml and testdata/partners), each
// command through sh in that folder, its output (stdout and
// stderr as they interleave) compared with the lines shown under it after
// masking times, digests and durations. A doc that drifts from the binary
// fails here, naming the file and line.
func TestDocs(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	if _, err := exec.LookPath("posbridge"); err != nil {
		t.Fatalf("posbridge is not on PATH (TestMain puts this test binary there): %v", err)
	}
	for _, doc := range docs {
		name, _ := filepath.Rel(root, doc)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			examples, err := parseExamples(name, string(src))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := setupExamples(root, dir); err != nil {
				t.Fatal(err)
			}
			var fixes []docFix
			for _, ex := range examples {
				ok, fix := replay(t, dir, ex)
				if ok {
					continue
				}
				if !*updateDocs {
					// Later examples build on this one's state: their
					// failures would only repeat it.
					return
				}
				fixes = append(fixes, fix)
			}
			if len(fixes) > 0 {
				if err := os.WriteFile(doc, []byte(applyFixes(string(src), fixes)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// setupExamples makes dir the folder README.md tells a reader to follow the
// examples in: `cp -r examples /tmp/pb && cp -r testdata/demo/*.csv
// testdata/xml testdata/partners /tmp/pb`.
func setupExamples(root, dir string) error {
	if err := copyTree(filepath.Join(root, "examples"), dir); err != nil {
		return err
	}
	for _, sub := range []string{"xml", "partners"} {
		if err := copyTree(filepath.Join(root, "testdata", sub), filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	csvs, err := filepath.Glob(filepath.Join(root, "testdata", "demo", "*.csv"))
	if err != nil {
		return err
	}
	for _, f := range csvs {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the folder src into dst, subfolders included.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// docExample is one "$ " command of a doc and the output shown under it.
type docExample struct {
	file    string
	line    int      // of the "$ " line
	command string   // without the "$ "
	want    []string // the shown output lines
	lines   []int    // the doc line of each want line
	exit    int      // from a last output line "[exit N]"; else 0
	end     int      // the doc line the output ends on (the "$ " line when none)
}

// updateDocs rewrites the shown output of every example that no longer
// matches with what posbridge prints now, for a change that alters outputs
// on purpose; review the diff before committing it.
var updateDocs = flag.Bool("update-docs", false, "TestDocs: write the real output into the docs where they differ")

var (
	// optOutRe marks a block that is shown but not replayed.
	optOutRe = regexp.MustCompile(`^<!-- not replayed: .+ -->$`)
	exitRe   = regexp.MustCompile(`^\[exit (\d+)\]$`)
)

// parseExamples returns the examples of a doc's replayed blocks, in order.
func parseExamples(file, src string) ([]docExample, error) {
	lines := strings.Split(src, "\n")
	var (
		out  []docExample
		prev string // the last non-blank line before a block
	)
	for i := 0; i < len(lines); i++ {
		if !isFence(lines[i]) {
			if strings.TrimSpace(lines[i]) != "" {
				prev = strings.TrimSpace(lines[i])
			}
			continue
		}
		end := i + 1
		for end < len(lines) && !isFence(lines[end]) {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("%s:%d: a code block is not closed", file, i+1)
		}
		block, first := lines[i+1:end], i+1
		skip := optOutRe.MatchString(prev)
		i, prev = end, ""
		if skip || !slices.ContainsFunc(block, isCommand) {
			continue
		}
		if !isCommand(block[0]) {
			return nil, fmt.Errorf("%s:%d: a replayed block starts with its first \"$ \" command", file, first+1)
		}
		var cur *docExample
		for k, line := range block {
			if isCommand(line) {
				if cur != nil {
					out = append(out, finish(*cur))
				}
				cur = &docExample{file: file, line: first + k + 1, command: strings.TrimPrefix(line, "$ ")}
				continue
			}
			cur.want = append(cur.want, line)
			cur.lines = append(cur.lines, first+k+1)
		}
		out = append(out, finish(*cur))
	}
	return out, nil
}

func isFence(line string) bool   { return strings.HasPrefix(strings.TrimSpace(line), "```") }
func isCommand(line string) bool { return strings.HasPrefix(line, "$ ") }

// finish drops the blank lines that end an output (they separate examples)
// and takes the exit code from a last line "[exit N]".
func finish(ex docExample) docExample {
	for len(ex.want) > 0 && strings.TrimSpace(ex.want[len(ex.want)-1]) == "" {
		ex.want, ex.lines = ex.want[:len(ex.want)-1], ex.lines[:len(ex.lines)-1]
	}
	ex.end = ex.line
	if n := len(ex.lines); n > 0 {
		ex.end = ex.lines[n-1]
	}
	if n := len(ex.want); n > 0 {
		if m := exitRe.FindStringSubmatch(strings.TrimSpace(ex.want[n-1])); m != nil {
			ex.exit, _ = strconv.Atoi(m[1])
			ex.want, ex.lines = ex.want[:n-1], ex.lines[:n-1]
		}
	}
	return ex
}

// docFix replaces the output lines after a doc's "$ " line up to end.
type docFix struct {
	line, end int
	output    []string
}

// applyFixes writes the real outputs into a doc's text.
func applyFixes(src string, fixes []docFix) string {
	lines := strings.Split(src, "\n")
	for i := len(fixes) - 1; i >= 0; i-- {
		f := fixes[i]
		lines = slices.Replace(lines, f.line, f.end, f.output...)
	}
	return strings.Join(lines, "\n")
}

// replay runs one example in dir and reports a difference; it tells whether
// the example matched, and else what its output is now.
func replay(t *testing.T, dir string, ex docExample) (bool, docFix) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", ex.command)
	cmd.Dir = dir
	cmd.Env = docsEnv(dir)
	var buf strings.Builder
	// One writer for both: the child gets one pipe, so stdout and stderr
	// keep the order they were written in, as on a terminal.
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Errorf("%s:%d: $ %s: %v", ex.file, ex.line, ex.command, err)
		return false, docFix{}
	}
	got := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if buf.Len() == 0 {
		got = nil
	}
	for i := range got {
		got[i] = strings.ReplaceAll(got[i], dir, "/tmp/pb")
	}
	diff, same := diffOutput(ex, got)
	if same && code == ex.exit {
		return true, docFix{}
	}
	fix := docFix{line: ex.line, end: ex.end, output: got}
	if code != 0 {
		fix.output = append(slices.Clone(got), fmt.Sprintf("[exit %d]", code))
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "%s:%d: $ %s\n", ex.file, ex.line, ex.command)
	if code != ex.exit {
		fmt.Fprintf(&msg, "exit code %d, the doc shows %d (a last output line [exit N] shows N)\n", code, ex.exit)
	}
	if !same {
		msg.WriteString("output differs (-doc line, +posbridge now):\n")
		msg.WriteString(diff)
	}
	msg.WriteString("fix the doc or posbridge; when the new output is right, go test ./cmd/posbridge -run TestDocs -update-docs writes it into the doc (README.md, \"How the examples run\")")
	t.Error(msg.String())
	return false, fix
}

// docsEnv is the environment of a replayed command: the caller's PATH (with
// the posbridge under test first), HOME in the folder, UTC, and no
// POSBRIDGE_ variables or user config that would change an output.
func docsEnv(dir string) []string {
	env := []string{"HOME=" + dir, "TZ=UTC", "LC_ALL=C", "TMPDIR=" + dir}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

var (
	// masks hide what changes from run to run, in the doc and in the
	// output alike: times, sha256 digests, durations.
	masks = []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?`), "<time>"},
		{regexp.MustCompile(`\d{8}T\d{6}(\.\d+)?Z`), "<time>"},
		{regexp.MustCompile(`\b[0-9a-f]{64}\b`), "<sha256>"},
		{regexp.MustCompile(`(sha256[ =:]+"?)[0-9a-f]{8,}`), "${1}<sha256>"},
		{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)(\d+(\.\d+)?(ns|µs|us|ms|s|m|h))*\b`), "<duration>"},
	}
	spaces = regexp.MustCompile(`[ \t]+`)
)

// normalize masks a line and makes runs of blanks one space, so that a
// table whose columns widen with a masked value still compares.
func normalize(s string) string {
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

// lineMatches tells whether a shown line matches an output line: "..." (or
// "…") in the shown line stands for any text.
func lineMatches(want, got string) bool {
	parts := strings.Split(strings.ReplaceAll(normalize(want), "…", "..."), "...")
	got = normalize(got)
	if len(parts) == 1 {
		return parts[0] == got
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return strings.HasSuffix(got, last)
}

// anyLines tells whether a shown line stands for any number of lines.
func anyLines(want string) bool {
	w := strings.TrimSpace(want)
	return w == "..." || w == "…"
}

// diffOutput compares the shown output with the real one and returns a
// line diff (shown lines with their doc line numbers) and whether they
// match. A least-edits alignment, where "..." alone on a line takes any
// number of output lines.
func diffOutput(ex docExample, got []string) (string, bool) {
	want := ex.want
	n, m := len(want), len(got)
	// cost[i][j]: the fewest unmatched lines aligning want[i:] with got[j:].
	cost := make([][]int, n+1)
	for i := range cost {
		cost[i] = make([]int, m+1)
	}
	for i := n; i >= 0; i-- {
		for j := m; j >= 0; j-- {
			switch {
			case i == n:
				cost[i][j] = m - j
			case anyLines(want[i]):
				c := cost[i+1][j]
				if j < m {
					c = min(c, cost[i][j+1])
				}
				cost[i][j] = c
			case j == m:
				cost[i][j] = cost[i+1][j] + 1
			default:
				c := min(cost[i+1][j], cost[i][j+1]) + 1
				if lineMatches(want[i], got[j]) {
					c = min(c, cost[i+1][j+1])
				}
				cost[i][j] = c
			}
		}
	}
	if cost[0][0] == 0 {
		return "", true
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && anyLines(want[i]):
			if j < m && cost[i][j] == cost[i][j+1] {
				fmt.Fprintf(&b, "  %5d| %s\n", ex.lines[i], got[j])
				j++
			} else {
				i++
			}
		case i < n && j < m && lineMatches(want[i], got[j]) && cost[i][j] == cost[i+1][j+1]:
			fmt.Fprintf(&b, "  %5d| %s\n", ex.lines[i], want[i])
			i, j = i+1, j+1
		case i < n && (j == m || cost[i][j] == cost[i+1][j]+1):
			fmt.Fprintf(&b, "- %5d| %s\n", ex.lines[i], want[i])
			i++
		default:
			fmt.Fprintf(&b, "+      | %s\n", got[j])
			j++
		}
	}
	return b.String(), false
}

// TestDocsRules checks the replay's reading of a doc and its comparison,
// so that a drifted doc cannot pass by a mistake of the runner.
func TestDocsRules(t *testing.T) {
	doc := strings.Join([]string{
		"intro",                           // 1
		"```",                             // 2
		"$ posbridge init",                // 3
		"created database",                // 4
		"",                                // 5
		"$ posbridge frob",                // 6
		"level=ERROR msg=\"usage\"",       // 7
		"[exit 2]",                        // 8
		"```",                             // 9
		"<!-- not replayed: a reason -->", // 10
		"```",                             // 11
		"$ make build",                    // 12
		"```",                             // 13
		"```yaml",                         // 14
		"jobs: {}",                        // 15
		"```",                             // 16
	}, "\n")
	got, err := parseExamples("x.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d examples, want 2 (the opted-out and the shown-only blocks are not replayed): %+v", len(got), got)
	}
	if e := got[0]; e.line != 3 || e.command != "posbridge init" || e.exit != 0 || !slices.Equal(e.want, []string{"created database"}) || e.end != 4 {
		t.Errorf("first example: %+v", e)
	}
	if e := got[1]; e.line != 6 || e.exit != 2 || !slices.Equal(e.lines, []int{7}) || e.end != 8 {
		t.Errorf("second example: %+v", e)
	}
	if _, err := parseExamples("x.md", "```\nnot a command\n$ posbridge init\n```\n"); err == nil || !strings.Contains(err.Error(), "x.md:2:") {
		t.Errorf("text before a block's first command: err %v, want one naming x.md:2", err)
	}
	if _, err := parseExamples("x.md", "```\n$ posbridge init\n"); err == nil {
		t.Error("an unclosed block was accepted")
	}

	for _, c := range []struct {
		want, got string
		match     bool
	}{
		{"items: wrote /tmp/pb/a_20261123T051415Z_000001.xml (52 records)", "items: wrote /tmp/pb/a_20261207T020257Z_000001.xml (52 records)", true},
		{"items: wrote a (52 records)", "items: wrote a (53 records)", false},
		{"updated 2026-11-23T04:54:13Z", "updated 2026-12-07T02:02:57.123Z", true},
		{"sha256 7951dec1...", "sha256 0123abcd...", true},
		{`"sha256": "` + strings.Repeat("a", 64) + `"`, `"sha256": "` + strings.Repeat("b", 64) + `"`, true},
		{"duration=5ms ran=2", "duration=1.2s ran=2", true},
		{"duration=5ms ran=2", "duration=5ms ran=3", false},
		{"ID  TYPE  KEY", "ID   TYPE KEY   ", true},
		{"process: pid ... on ...", "process: pid 77 on vm", true},
		{"process: pid … on vm", "process: pid 77 on host", false},
		{"a...c", "abc", true},
		{"a...c", "ab", false},
	} {
		if m := lineMatches(c.want, c.got); m != c.match {
			t.Errorf("lineMatches(%q, %q) = %v, want %v", c.want, c.got, m, c.match)
		}
	}

	ex := docExample{file: "x.md", line: 10, want: []string{"head", "...", "tail"}, lines: []int{11, 12, 13}}
	if _, same := diffOutput(ex, []string{"head", "1", "2", "tail"}); !same {
		t.Error(`a line "..." did not take the lines between`)
	}
	if _, same := diffOutput(ex, []string{"head", "tail"}); !same {
		t.Error(`a line "..." did not take zero lines`)
	}
	diff, same := diffOutput(ex, []string{"head", "1", "tale"})
	if same || !strings.Contains(diff, "-    13| tail") || !strings.Contains(diff, "tale") {
		t.Errorf("diff of a changed last line:\n%s", diff)
	}
	ex = docExample{file: "x.md", line: 10, want: []string{"a"}, lines: []int{11}}
	if _, same := diffOutput(ex, []string{"a", "b"}); same {
		t.Error("an extra output line passed")
	}
	if _, same := diffOutput(ex, nil); same {
		t.Error("a missing output line passed")
	}
}
