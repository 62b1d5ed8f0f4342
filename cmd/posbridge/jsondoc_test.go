package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/cli"
)

// docs/json.md lists, for every command with --output json, the fields of
// its output and their JSON types. The json_docs story runs each command
// through jsondoc, which holds its output to that list: a field the list
// does not have, a field it has that is missing, or a value of another
// type fails the story. `jsondoc -covered` at the end of the story fails
// unless every command with --output json has a section, every section
// was run and every field documented as always there was seen wherever
// its object was (so none hides in an array the story left empty); an
// optional field is checked where it appears.

// jsonSection is the part of docs/json.md for one command: the shape of
// its output (array or object) and its fields by path: "name",
// "lines[].sku" for a field of the objects of an array, "ship.city" for
// a field of an object.
type jsonSection struct {
	heading  string
	commands []jsonCommand
	array    bool
	fields   map[string]jsonField
	order    []string
}

// jsonCommand is a command a section is for: its path without
// "posbridge", and the flags that select the section (transfers list
// --deliveries) when the command has several.
type jsonCommand struct {
	path  string
	flags []string
}

func (c jsonCommand) String() string {
	return strings.Join(append([]string{"posbridge", c.path}, c.flags...), " ")
}

// jsonField is one row of a section's table.
type jsonField struct {
	typ      string // one of jsonTypes
	nullable bool   // "or null"
	optional bool   // ", optional": left out when empty
}

var jsonTypes = []string{"string", "integer", "amount", "percent", "boolean", "object", "array", "array of strings", "map of integers", "any"}

var (
	sectionHead = regexp.MustCompile("^### `posbridge [a-z -]+`")
	commandName = regexp.MustCompile("`posbridge ([a-z -]+)`")
	fieldRow    = regexp.MustCompile("^\\| `([a-z0-9_.\\[\\]]+)` \\| ([a-z ,]+) \\|")
)

// parseJSONDoc reads the sections of docs/json.md.
func parseJSONDoc(src string) ([]*jsonSection, error) {
	var out []*jsonSection
	var cur *jsonSection
	for i, line := range strings.Split(src, "\n") {
		at := fmt.Sprintf("docs/json.md:%d", i+1)
		if sectionHead.MatchString(line) {
			cur = &jsonSection{heading: strings.TrimPrefix(line, "### "), fields: map[string]jsonField{}}
			for _, m := range commandName.FindAllStringSubmatch(line, -1) {
				var c jsonCommand
				for _, w := range strings.Fields(m[1]) {
					if strings.HasPrefix(w, "--") {
						c.flags = append(c.flags, w)
					} else {
						c.path = strings.TrimSpace(c.path + " " + w)
					}
				}
				cur.commands = append(cur.commands, c)
			}
			out = append(out, cur)
			continue
		}
		if strings.HasPrefix(line, "#") {
			cur = nil
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.Contains(line, "writes an array"):
			cur.array = true
		case strings.HasPrefix(line, "| `"):
			m := fieldRow.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: a field row is | `name` | type | meaning |", at)
			}
			f := jsonField{typ: strings.TrimSpace(m[2])}
			f.typ, f.optional = strings.CutSuffix(f.typ, ", optional")
			f.typ, f.nullable = strings.CutSuffix(f.typ, " or null")
			if !slices.Contains(jsonTypes, f.typ) {
				return nil, fmt.Errorf("%s: type %q: want one of %s (then \" or null\", \", optional\")", at, m[2], strings.Join(jsonTypes, ", "))
			}
			if _, dup := cur.fields[m[1]]; dup {
				return nil, fmt.Errorf("%s: field %s twice", at, m[1])
			}
			cur.fields[m[1]] = f
			cur.order = append(cur.order, m[1])
		}
	}
	for _, s := range out {
		for _, p := range s.order {
			if parent := parentPath(p); parent != "" {
				if f, ok := s.fields[strings.TrimSuffix(parent, "[]")]; !ok || (f.typ != "object" && f.typ != "array") {
					return nil, fmt.Errorf("docs/json.md: %s: %s belongs to %s, which is not an object or array field", s.heading, p, parent)
				}
			}
		}
	}
	return out, nil
}

// parentPath is the path of the object a field belongs to: "" for the top
// level (or the objects of a top-level array), "lines[]" for "lines[].sku".
func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// check holds v, the decoded output, to the section and records the
// fields seen.
func (s *jsonSection) check(v any, seen map[string]bool) []string {
	var problems []string
	if s.array {
		arr, ok := v.([]any)
		if !ok {
			return []string{"the output is not an array"}
		}
		for i, e := range arr {
			problems = append(problems, s.checkObject(e, "", fmt.Sprintf("[%d]", i), seen)...)
		}
		return problems
	}
	return s.checkObject(v, "", "", seen)
}

// checkObject checks an object whose fields have paths under prefix
// (where says where it is in the output).
func (s *jsonSection) checkObject(v any, prefix, where string, seen map[string]bool) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s is not an object", orTop(where))}
	}
	var problems []string
	for _, p := range s.order {
		if f := s.fields[p]; parentPath(p) == prefix {
			if _, ok := obj[lastName(p)]; !ok && !f.optional {
				problems = append(problems, fmt.Sprintf("%s: missing field %s (documented as always there)", orTop(where), p))
			}
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		at := where + "." + k
		f, ok := s.fields[p]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: field %s is not in docs/json.md", at, p))
			continue
		}
		seen[p] = true
		problems = append(problems, s.checkValue(obj[k], p, f, at, seen)...)
	}
	return problems
}

func (s *jsonSection) checkValue(v any, p string, f jsonField, at string, seen map[string]bool) []string {
	if v == nil {
		if f.nullable {
			return nil
		}
		return []string{fmt.Sprintf("%s: null, documented as %s", at, f.typ)}
	}
	bad := []string{fmt.Sprintf("%s: %s, documented as %s", at, describe(v), f.typ)}
	switch f.typ {
	case "string":
		if _, ok := v.(string); !ok {
			return bad
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad
		}
	case "integer":
		if n, ok := v.(json.Number); !ok || !isInteger(n) {
			return bad
		}
	case "amount", "percent":
		// The text the tables show: a decimal point and 2 to 4 places.
		if n, ok := v.(json.Number); !ok || !amountText.MatchString(n.String()) {
			return bad
		}
	case "object":
		return s.checkObject(v, p, at, seen)
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return bad
		}
		var problems []string
		for i, e := range arr {
			problems = append(problems, s.checkObject(e, p+"[]", fmt.Sprintf("%s[%d]", at, i), seen)...)
		}
		return problems
	case "array of strings":
		arr, ok := v.([]any)
		if !ok {
			return bad
		}
		for _, e := range arr {
			if _, ok := e.(string); !ok {
				return bad
			}
		}
	case "map of integers":
		m, ok := v.(map[string]any)
		if !ok {
			return bad
		}
		for _, e := range m {
			if n, ok := e.(json.Number); !ok || !isInteger(n) {
				return bad
			}
		}
	}
	return nil
}

var amountText = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2,4}$`)

func isInteger(n json.Number) bool {
	_, err := strconv.ParseInt(n.String(), 10, 64)
	return err == nil
}

func describe(v any) string {
	switch v := v.(type) {
	case json.Number:
		return "the number " + v.String()
	case string:
		return "the string " + strconv.Quote(v)
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func orTop(where string) string {
	if where == "" {
		return "the output"
	}
	return where
}

func lastName(p string) string {
	return p[strings.LastIndexByte(p, '.')+1:]
}

// jsonDocRun is what the jsondoc commands of one script have seen.
type jsonDocRun struct {
	sections []*jsonSection
	run      map[string]bool // by jsonCommand.String
	seen     map[*jsonSection]map[string]bool
}

var (
	jsonDocMu   sync.Mutex
	jsonDocRuns = map[*testscript.TestScript]*jsonDocRun{}
)

// jsonDocState reads docs/json.md for the script on its first jsondoc.
func jsonDocState(ts *testscript.TestScript) *jsonDocRun {
	jsonDocMu.Lock()
	defer jsonDocMu.Unlock()
	if r := jsonDocRuns[ts]; r != nil {
		return r
	}
	root, err := repoRoot()
	ts.Check(err)
	src, err := os.ReadFile(filepath.Join(root, "docs", "json.md"))
	ts.Check(err)
	sections, err := parseJSONDoc(string(src))
	ts.Check(err)
	r := &jsonDocRun{sections: sections, run: map[string]bool{}, seen: map[*jsonSection]map[string]bool{}}
	jsonDocRuns[ts] = r
	return r
}

// cmdJSONDoc runs posbridge with args and holds its stdout to the
// section of docs/json.md for the command, or checks the coverage:
//
//	jsondoc [-exit N] ARGS...    (ARGS include --output json)
//	jsondoc -covered
func cmdJSONDoc(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! jsondoc")
	}
	r := jsonDocState(ts)
	if len(args) == 1 && args[0] == "-covered" {
		r.covered(ts)
		return
	}
	want := 0
	if len(args) > 2 && args[0] == "-exit" {
		var err error
		want, err = strconv.Atoi(args[1])
		ts.Check(err)
		args = args[2:]
	}
	if !slices.Contains(args, "json") {
		ts.Fatalf("jsondoc: the command needs --output json")
	}
	err := ts.Exec("posbridge", args...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else {
		ts.Check(err)
	}
	if got != want {
		ts.Fatalf("posbridge exited with %d, want %d", got, want)
	}
	cmd, _, err := cli.NewRootCommand().Find(args)
	ts.Check(err)
	s, c := r.section(cmd, args)
	if s == nil {
		ts.Fatalf("docs/json.md has no section for %s", cmd.CommandPath())
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(ts.ReadFile("stdout"))))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("%s: the output is not JSON: %v", cmd.CommandPath(), err)
	}
	if r.seen[s] == nil {
		r.seen[s] = map[string]bool{}
	}
	r.run[c.String()] = true
	if problems := s.check(v, r.seen[s]); len(problems) > 0 {
		ts.Fatalf("%s --output json differs from docs/json.md:\n\t%s", c, strings.Join(problems, "\n\t"))
	}
}

// section is the section for cmd run with args: the one of its command
// whose flags args all have, the one with the most flags first.
func (r *jsonDocRun) section(cmd *cobra.Command, args []string) (*jsonSection, jsonCommand) {
	path := strings.TrimPrefix(cmd.CommandPath(), "posbridge ")
	var best *jsonSection
	var bestCmd jsonCommand
	for _, s := range r.sections {
		for _, c := range s.commands {
			if c.path != path || (best != nil && len(bestCmd.flags) >= len(c.flags)) {
				continue
			}
			all := true
			for _, f := range c.flags {
				all = all && slices.Contains(args, f)
			}
			if all {
				best, bestCmd = s, c
			}
		}
	}
	return best, bestCmd
}

// covered fails unless every command with --output json has a section,
// every section ran, and every field documented as always there was seen
// where its object or array was.
func (r *jsonDocRun) covered(ts *testscript.TestScript) {
	var problems []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("output"); f != nil && strings.Contains(f.Usage, "json") {
			path := strings.TrimPrefix(c.CommandPath(), "posbridge ")
			if !slices.ContainsFunc(r.sections, func(s *jsonSection) bool {
				return slices.ContainsFunc(s.commands, func(c jsonCommand) bool { return c.path == path })
			}) {
				problems = append(problems, fmt.Sprintf("posbridge %s has --output json but no section in docs/json.md", path))
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cli.NewRootCommand())
	for _, s := range r.sections {
		for _, c := range s.commands {
			if !r.run[c.String()] {
				problems = append(problems, fmt.Sprintf("%s: no jsondoc ran it", c))
			}
		}
		for _, p := range s.order {
			parent := strings.TrimSuffix(parentPath(p), "[]")
			if !r.seen[s][p] && !s.fields[p].optional && (parent == "" || r.seen[s][parent]) {
				problems = append(problems, fmt.Sprintf("%s: field %s never appeared", s.heading, p))
			}
		}
	}
	if len(problems) > 0 {
		ts.Fatalf("docs/json.md is not covered:\n\t%s", strings.Join(problems, "\n\t"))
	}
}
