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
