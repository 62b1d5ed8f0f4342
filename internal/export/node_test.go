package export

import (
	"bufio"
	"strings"
	"testing"
)

func TestEscapeAttr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"PLAIN value 123-/.,;:=?!'", "PLAIN value 123-/.,;:=?!'"},
		{`a&b<c>d"e`, "a&amp;b&lt;c&gt;d&quot;e"},
		{"&", "&amp;"},
		{"tab\tnl\ncr\r", "tab&#9;nl&#10;cr&#13;"},
		{"bell\x07 del\x7f", "bell\uFFFD del\x7f"},
		{"Größe Ø 10€", "Größe Ø 10€"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"surrogate \xed\xa0\x80", "surrogate \uFFFD\uFFFD\uFFFD"},
		{"nonchar \uFFFE\uFFFF", "nonchar \uFFFD\uFFFD"},
		{"end<", "end&lt;"},
	} {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		escapeAttr(w, c.in)
		w.Flush()
		if b.String() != c.want {
			t.Errorf("escapeAttr(%q) = %q, want %q", c.in, b.String(), c.want)
		}
	}
}

// TestCSVRowsAttrOrder: a record's attributes give the same row whether
// they are in column order (taken by position) or not (looked up by name),
// missing ones empty.
func TestCSVRowsAttrOrder(t *testing.T) {
	cols := flat("action", "customer_number", "city")
	for _, attrs := range [][]attr{
		{{"action", "A"}, {"customer_number", "100"}, {"city", "Oslo"}},
		{{"city", "Oslo"}, {"action", "A"}, {"customer_number", "100"}},
		{{"action", "A"}, {"city", "Oslo"}, {"customer_number", "100"}, {"extra", "x"}},
	} {
		var got []string
		err := csvRows(cols, node{name: "Customer", attrs: attrs}, nil, func(r []string) error {
			got = append(got, strings.Join(r, "|"))
			return nil
		})
		if err != nil || len(got) != 1 || got[0] != "A|100|Oslo" {
			t.Errorf("csvRows(%v) = %q, %v; want one row A|100|Oslo", attrs, got, err)
		}
	}
	var got []string
	csvRows(cols, node{name: "Customer", attrs: []attr{{"customer_number", "7"}}}, nil, func(r []string) error {
		got = append(got, strings.Join(r, "|"))
		return nil
	})
	if len(got) != 1 || got[0] != "|7|" {
		t.Errorf("csvRows with attributes missing = %q, want |7|", got)
	}
}
