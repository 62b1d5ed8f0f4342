package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/cli"
)

var date = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// TestManPages: one page per command that --help lists, each with the
// command's description and examples as --help prints them.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if err := writeManPages(dir, date); err != nil {
		t.Fatal(err)
	}
	want := map[string]*cobra.Command{}
	visit(cli.NewRootCommand(), func(c *cobra.Command) {
		if c.HasParent() && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		want[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = c
	})
	for _, name := range []string{"posbridge.1", "posbridge-run.1", "posbridge-jobs-list.1", "posbridge-status.1", "posbridge-completion.1"} {
		if want[name] == nil {
			t.Errorf("no command for %s in the tree", name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
		if want[e.Name()] == nil {
			t.Errorf("page %s: no visible command of that name", e.Name())
		}
	}
	for name, c := range want {
		if !slices.Contains(got, name) {
			t.Errorf("no page %s for %q", name, c.CommandPath())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		page := words(deroff(string(b)))
		if !strings.HasPrefix(string(b), ".nh\n.TH \""+strings.ToUpper(strings.TrimSuffix(name, ".1"))+"\" \"1\" \"Nov 2026\" \"posbridge\"") {
			t.Errorf("%s: header %q", name, firstLines(string(b), 2))
		}
		desc := c.Long
		if desc == "" {
			desc = c.Short
		}
		if !strings.Contains(page, words(desc)) {
			t.Errorf("%s: the description is not the help's:\n%s\nwant:\n%s", name, deroff(string(b)), desc)
		}
		if c.Example == "" {
			t.Errorf("%s: %q has no example", name, c.CommandPath())
		}
		for _, ex := range strings.Split(c.Example, "\n") {
			if !strings.Contains(page, words(ex)) {
				t.Errorf("%s: example %q missing", name, ex)
			}
		}
	}
}

// TestManPagesDeterministic: the same tree and date give the same bytes.
func TestManPagesDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := writeManPages(a, date); err != nil {
		t.Fatal(err)
	}
	if err := writeManPages(b, date); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		x, _ := os.ReadFile(filepath.Join(a, e.Name()))
		y, err := os.ReadFile(filepath.Join(b, e.Name()))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs (%v)", e.Name(), err)
		}
	}
}

func TestSourceDate(t *testing.T) {
	if d, err := sourceDate("1795417533"); err != nil || d.Format("Jan 2006") != "Nov 2026" {
		t.Errorf("sourceDate(1795417533) = %v, %v", d, err)
	}
	if _, err := sourceDate("yesterday"); err == nil {
		t.Error("sourceDate(yesterday): no error")
	}
}

func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: pbdocs -out DIR") {
		t.Errorf("pbdocs without -out: exit %d, %q", code, stderr.String())
	}
}

// deroff leaves the text of a man page: no requests, no font changes, no
// escapes.
func deroff(page string) string {
	var lines []string
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, ".") {
			continue
		}
		lines = append(lines, line)
	}
	return strings.NewReplacer(`\&`, "", `\fB`, "", `\fI`, "", `\fP`, "", `\-`, "-", `\e`, `\`, `\\`, `\`).Replace(strings.Join(lines, "\n"))
}

// words compares texts that a man page reflows: single spaces only.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
