package export

import (
	"bufio"
	"strings"
	"unicode/utf8"
)

// attr is one field of a record. Empty values are left out of XML and
// written as empty CSV fields.
type attr struct{ name, value string }

// node is one record, or a part of one, as written to a file. A node
// given to an emit function is valid until it returns: the readers reuse
// its storage for the next record.
type node struct {
	name  string
	attrs []attr
	// wrap names the element around the children (SKUs, InvoiceDetails),
	// or is empty when they sit directly in the record.
	wrap string
	kids []node
}

func (n node) get(name string) string {
	for _, a := range n.attrs {
		if a.name == name {
			return a.value
		}
	}
	return ""
}

// xmlWriter streams XML with attributes only.
type xmlWriter struct{ w *bufio.Writer }

func (x xmlWriter) open(name string, attrs []attr, empty bool) {
	x.w.WriteByte('<')
	x.w.WriteString(name)
	for _, a := range attrs {
		if a.value == "" {
			continue
		}
		x.w.WriteByte(' ')
		x.w.WriteString(a.name)
		x.w.WriteString(`="`)
		escapeAttr(x.w, a.value)
		x.w.WriteByte('"')
	}
	if empty {
		x.w.WriteString("/>")
	} else {
		x.w.WriteByte('>')
	}
}

func (x xmlWriter) close(name string) {
	x.w.WriteString("</")
	x.w.WriteString(name)
	x.w.WriteByte('>')
}

// indents are the line breaks with the indentation of each depth that
// records reach, made once rather than for every element written.
var indents = func() (in [8]string) {
	for d := range in {
		in[d] = "\n" + strings.Repeat("  ", d)
	}
	return in
}()

// indent is the line break and indentation of depth.
func indent(depth int) string {
	if depth < len(indents) {
		return indents[depth]
	}
	return "\n" + strings.Repeat("  ", depth)
}

// node writes n at the given depth of indentation.
func (x xmlWriter) node(n node, depth int) {
	x.w.WriteString(indent(depth))
	if len(n.kids) == 0 && n.wrap == "" {
		x.open(n.name, n.attrs, true)
		return
	}
	x.open(n.name, n.attrs, false)
	kidDepth := depth + 1
	if n.wrap != "" {
		x.w.WriteString(indent(depth + 1))
		x.open(n.wrap, nil, len(n.kids) == 0)
		kidDepth++
	}
	for _, k := range n.kids {
		x.node(k, kidDepth)
	}
	if n.wrap != "" && len(n.kids) > 0 {
		x.w.WriteString(indent(depth + 1))
		x.close(n.wrap)
	}
	x.w.WriteString(indent(depth))
	x.close(n.name)
}

// escapeAttr writes s as an attribute value: markup characters and the
// whitespace that attribute normalisation would fold become references,
// and characters XML 1.0 does not allow become U+FFFD.
func escapeAttr(w *bufio.Writer, s string) {
	for i := 0; i < len(s); {
		// Most values are printable ASCII without markup: written as
		// runs, not rune by rune (which was 5% of the CPU of an XML
		// export of items).
		j := i
		for j < len(s) && plainAttrByte(s[j]) {
			j++
		}
		w.WriteString(s[i:j])
		if i = j; i == len(s) {
			return
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			w.WriteString("&amp;")
		case r == '<':
			w.WriteString("&lt;")
		case r == '>':
			w.WriteString("&gt;")
		case r == '"':
			w.WriteString("&quot;")
		case r == '\t':
			w.WriteString("&#9;")
		case r == '\n':
			w.WriteString("&#10;")
		case r == '\r':
			w.WriteString("&#13;")
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF, r == utf8.RuneError && size == 1:
			w.WriteRune(utf8.RuneError)
		default:
			w.WriteRune(r)
		}
	}
}

// plainAttrByte says whether b is written into an attribute value as it
// is: printable ASCII other than the markup characters.
func plainAttrByte(b byte) bool {
	return b >= 0x20 && b < utf8.RuneSelf && b != '&' && b != '<' && b != '>' && b != '"'
}

// csvCol is one CSV column: the record attribute (parent) or the child
// attribute (kid) it comes from. A kid column falls back to the parent's
// attribute of the same name when the kid has none (the action of a SKU
// without a trigger is the item's).
type csvCol struct {
	header string
	kid    bool
	attr   string
}

// csvRows flattens a record into rows: one per child, or one for a record
// without children.
func csvRows(cols []csvCol, n node, row []string, emit func([]string) error) error {
	kids := n.kids
	if len(kids) == 0 {
		kids = []node{{}}
	}
	for _, k := range kids {
		row = row[:0]
		for i, c := range cols {
			v := ""
			switch {
			case c.kid:
				v = k.get(c.attr)
				if v == "" && c.attr == "action" {
					v = n.get(c.attr)
				}
			case i < len(n.attrs) && n.attrs[i].name == c.attr:
				// A flat record's attributes are in column order:
				// looking each up by name made the CSV rows quadratic in
				// the columns (node.get was 4% of the CPU of a mass
				// download).
				v = n.attrs[i].value
			default:
				v = n.get(c.attr)
			}
			row = append(row, v)
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return nil
}

// csvHeader returns the header row of cols.
func csvHeader(cols []csvCol) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.header
	}
	return h
}
