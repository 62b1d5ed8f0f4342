package imports

import (
	"encoding/json"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`[{"a":1},{"a":2}]`, ""},
		{`{"status":"pending","Status":"cancelled"}`, `keys "status" and "Status" in the record are one field in two spellings`},
		{`{"status":"pending","status":"cancelled"}`, `key "status" is given twice in the record`},
		{`{"salesOrder":{"orderItems":[{"rowNo":1,"ROWNO":2}]}}`, `keys "rowNo" and "ROWNO" in salesOrder.orderItems[]`},
		{`{"a":{"b":{"c":1,"c":2}}}`, `key "c" is given twice in a.b`},
		{`{"a":[[{"x":1,"X":1}]]}`, `in a[][]`},
		{`{"status":1,"ſtatus":2}`, `keys "status" and "ſtatus"`},
		{`{"k":1,"\u212a":2}`, `keys "k" and "K"`},
	} {
		err := CheckKeys([]byte(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
	var v struct{ Status string }
	if err := Decode([]byte(`{"STATUS":"pending"}`), &v); err != nil || v.Status != "pending" {
		t.Errorf("Decode: %v %+v", err, v)
	}
}

func TestEachJSONLines(t *testing.T) {
	for _, c := range []struct {
		name, in string
		lines    []int // of the records
		err      string
	}{
		{name: "array", in: "[\n{\"r\":1},\n\n  {\"r\":2,\n\"x\": \"a\\n b\"},\n\n\n{\"r\":3}\n]\n", lines: []int{2, 4, 8}},
		{name: "NDJSON with blank lines and CRLF", in: "{\"r\":1}\r\n\r\n\r\n{\"r\":2}\r\n  \t\n{\"r\":3}", lines: []int{1, 4, 6}},
		{name: "BOM and spaces in strings", in: "\xef\xbb\xbf[ {\"r\":1,  \"s\": \"  two  spaces \"},\n\n{\"r\":2}]", lines: []int{1, 3}},
		{name: "records over many lines", in: "[{\n\"r\":\n1\n,\n\"a\":\n[\n1\n,\n2\n]\n}\n,\n{\n\"r\"\n:\n2\n}\n]", lines: []int{1, 13}},
		{name: "syntax error in the second record", in: "[\n{\"r\":1},\n\n{\"r\":2 \"x\":1}\n]", lines: []int{2}, err: "invalid JSON at line 4"},
		{name: "syntax error far into a record", in: "{\"r\":1}\n{\"r\":2,\n\n\n\"x\": tru}\n", lines: []int{1}, err: "invalid JSON at line 5"},
		{name: "newline in a string", in: "{\"r\":1}\n\n{\"r\":\"a\nb\"}\n", lines: []int{1}, err: "invalid JSON at line 3"},
		{name: "garbage after NDJSON", in: "{\"r\":1}\n\n\nnot json\n", lines: []int{1}, err: "invalid JSON at line 4"},
		{name: "more after the array", in: "[{\"r\":1}]\n\n{\"r\":2}", lines: []int{1}, err: "invalid JSON at line 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var lines []int
			err := EachJSON(strings.NewReader(c.in), "records", func(n, line int, raw json.RawMessage) error {
				var v struct {
					R int
					S string
				}
				if err := json.Unmarshal(raw, &v); err != nil || v.R != n {
					t.Fatalf("record %d: %s (%v)", n, raw, err)
				}
				if v.S != "" && v.S != "  two  spaces " {
					t.Errorf("string %q changed", v.S)
				}
				lines = append(lines, line)
				return nil
			})
			if !slices.Equal(lines, c.lines) {
				t.Errorf("records on lines %v, want %v", lines, c.lines)
			}
			switch {
			case c.err == "" && err != nil:
				t.Fatal(err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want %q", err, c.err)
			}
		})
	}
}

// A file of blank lines costs the reader no more than its largest record
// (issue 13: "[" and 60 MB of newlines and "]" took 1.45 GB).
func TestEachJSONMemoryIsBoundedByTheRecord(t *testing.T) {
	const blank = 60 << 20
	for _, c := range []struct {
		name string
		in   io.Reader
		line int // of the record in the middle
	}{
		{name: "array", in: io.MultiReader(strings.NewReader("["), newlines(blank/2), strings.NewReader(`{"r":1}`), newlines(blank/2), strings.NewReader("]")), line: blank/2 + 1},
		{name: "NDJSON", in: io.MultiReader(newlines(blank/2), strings.NewReader(`{"r":1}`), newlines(blank/2)), line: blank/2 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := 0
			err := EachJSON(c.in, "records", func(n, line int, raw json.RawMessage) error {
				got = line
				return nil
			})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.line {
				t.Errorf("record on line %d, want %d", got, c.line)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("reading %d MiB of blank lines allocated %d MiB", blank>>20, alloc>>20)
			}
		})
	}
}

// newlines is a reader of n line ends.
func newlines(n int64) io.Reader {
	return io.LimitReader(repeatByte('\n'), n)
}

type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
