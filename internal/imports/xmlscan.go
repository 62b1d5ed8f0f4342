package imports

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// xmlTxnBuilder gathers the attributes of an InventoryTransaction element
// and of its Transaction and TransactionTo children, matched by local name
// (both readers of the OMS upload use it).
type xmlTxnBuilder struct {
	row          txnRow
	batch, ident string
	// The to side's upc and retail reference name nothing.
	toUPC, toRef string
}

// txnField is where the InventoryTransaction attribute name goes, or nil.
func (b *xmlTxnBuilder) txnField(name string) *string {
	switch name {
	case "batch_number":
		return &b.batch
	case "identification_nbr":
		return &b.ident
	case "transaction_code":
		return &b.row.Code
	case "transaction_reason":
		return &b.row.Reason
	case "transaction_quantity":
		return &b.row.Quantity
	case "entered_by_user":
		return &b.row.User
	}
	return nil
}

// sideField is where the attribute name of a child element goes: of
// Transaction (the from side), TransactionTo, or nil for another element.
func (b *xmlTxnBuilder) sideField(element, name string) *string {
	r := &b.row
	var item, sku, upc, ref, warehouse, location *string
	switch element {
	case "Transaction":
		item, sku, upc, ref, warehouse, location = &r.Item, &r.SKU, &r.UPC, &r.RetailRef, &r.Warehouse, &r.Location
	case "TransactionTo":
		item, sku, upc, ref, warehouse, location = &r.ToItem, &r.ToSKU, &b.toUPC, &b.toRef, &r.ToWarehouse, &r.ToLocation
	default:
		return nil
	}
	switch name {
	case "item_number":
		return item
	case "sku_code":
		return sku
	case "upc_code":
		return upc
	case "retail_reference_nbr":
		return ref
	case "warehouse":
		return warehouse
	case "location":
		return location
	}
	return nil
}

func (b *xmlTxnBuilder) done() txnRow {
	r := b.row
	r.Reference = or(b.ident, b.batch)
	return r
}

// maxScanElement bounds the bytes of an InventoryTransaction element the
// scanner keeps; encoding/xml reads a larger one.
const maxScanElement = 1 << 20

// errUnusual stops the xmlScanner at a construct it leaves to
// encoding/xml.
var errUnusual = errors.New("XML construct outside the scanner's subset")

// xmlScanner reads the OMS upload as its senders write it, several times
// faster than encoding/xml (whose tokenizer was half the CPU of an XML
// import): elements and attributes with ASCII names and no namespaces,
// attribute values with the predefined entities, whitespace between
// elements, comments and a UTF-8 XML declaration. At anything else
// (other text, CDATA, a DOCTYPE, a numeric character reference, a
// carriage return in a value, a mismatched or missing end tag, any
// malformed input) it stops with errUnusual without having returned any
// record it has not read completely, and rest hands encoding/xml the
// input from there, preceded by the start tags still open and at the same
// line: the decoder then reads or rejects the rest of the file exactly as
// it would have read it from the start.
type xmlScanner struct {
	br   *bufio.Reader
	line int
	// mark is the line where cur starts; cur holds the bytes of the
	// construct being read.
	mark int
	cur  []byte
	// stack is the elements open; their entries are reused.
	stack []openTag
	depth int
	// txn is the stack depth of the InventoryTransaction being read, 0 when
	// none is.
	txn     int
	txnLine int
	b       xmlTxnBuilder
	val     []byte
}

// openTag is an open element: its name, the line of its '<' (of the
// InventoryTransaction's for its descendants) and the bytes of its start
// tag after the name.
type openTag struct {
	name string
	line int
	rest []byte
}

// xmlScanBuffer is the scanner's buffer; tests make it small, so that
// every construct is met across the end of a buffer.
var xmlScanBuffer = 64 * 1024

func newXMLScanner(r io.Reader) *xmlScanner {
	br := bufio.NewReaderSize(r, xmlScanBuffer)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	return &xmlScanner{br: br, line: 1}
}

// rest is the input for encoding/xml after errUnusual: start tags that
// open the same elements, with newlines inside them to keep the lines of
// the file, then the construct the scanner stopped in and what follows.
func (x *xmlScanner) rest() io.Reader {
	var pre bytes.Buffer
	// A dummy element outside any other carries the newlines before the
	// first open element (or before the construct).
	open := x.stack[:x.depth]
	if x.txn > 0 {
		// cur holds the InventoryTransaction element from its start.
		open = x.stack[:x.txn-1]
	}
	at := x.mark
	if len(open) > 0 {
		at = open[0].line
	}
	pre.WriteString("<_")
	pre.Write(bytes.Repeat([]byte{'\n'}, at-1))
	pre.WriteString("/>")
	line := at
	for i, t := range open {
		pre.WriteString("<" + t.name)
		pre.Write(t.rest[:len(t.rest)-1])
		line += bytes.Count(t.rest, []byte{'\n'})
		next := x.mark
		if i+1 < len(open) {
			next = open[i+1].line
		}
		pre.Write(bytes.Repeat([]byte{'\n'}, next-line))
		line = next
		pre.WriteByte('>')
	}
	pre.Write(x.cur)
	return io.MultiReader(&pre, x.br)
}

func (x *xmlScanner) byte() (byte, error) {
	c, err := x.br.ReadByte()
	if err != nil {
		return 0, err
	}
	x.cur = append(x.cur, c)
	if c == '\n' {
		x.line++
	}
	return c, nil
}

// byteClass is a set of bytes: span reads a run of them.
type byteClass [256]bool

func newByteClass(in func(c byte) bool) *byteClass {
	var b byteClass
	for c := range 256 {
		b[c] = in(byte(c))
	}
	return &b
}

var (
	spaceBytes = newByteClass(isXMLSpace)
	nameBytes  = newByteClass(func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	})
	// valueBytes are the bytes value takes as they are: not a quote, an
	// entity, a '<', a carriage return, a control character other than
	// tab and newline or a byte of a multi-byte character.
	valueBytes = newByteClass(func(c byte) bool {
		return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\'' && c != '&' && c != '<' || c == '\t' || c == '\n'
	})
)

// span reads the longest run of bytes of class, as byte would read them
// one at a time, but a buffer's worth at once: byte was half the CPU of
// the scanner. It stops at the first byte not of class, which it leaves
// unread, or at the end of the input or an error, which the next byte
// reports.
func (x *xmlScanner) span(class *byteClass) {
	for {
		n := x.br.Buffered()
		if n == 0 {
			if _, err := x.br.Peek(1); err != nil {
				return
			}
			n = x.br.Buffered()
		}
		b, _ := x.br.Peek(n)
		i := 0
		for i < len(b) && class[b[i]] {
			i++
		}
		x.cur = append(x.cur, b[:i]...)
		if class['\n'] {
			x.line += bytes.Count(b[:i], []byte{'\n'})
		}
		x.br.Discard(i)
		if i < len(b) {
			return
		}
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// space reads whitespace and returns the byte after it.
func (x *xmlScanner) space() (byte, error) {
	x.span(spaceBytes)
	return x.byte()
}

// next returns the next InventoryTransaction, io.EOF at the end of a
// well-formed input, or errUnusual.
func (x *xmlScanner) next() (record, error) {
	for {
		// Inside an InventoryTransaction cur keeps the element from its
		// start, for rest: what was read of it is not returned yet.
		if x.txn == 0 {
			x.cur, x.mark = x.cur[:0], x.line
		} else if len(x.cur) > maxScanElement {
			return record{}, errUnusual
		}
		c, err := x.space()
		if errors.Is(err, io.EOF) {
			if x.depth > 0 {
				return record{}, errUnusual // encoding/xml reports the truncation
			}
			return record{}, io.EOF
		}
		if err != nil {
			return record{}, fmt.Errorf("line %d: %w", x.line, err)
		}
		if c != '<' {
			return record{}, errUnusual
		}
		if x.txn == 0 {
			x.cur, x.mark = append(x.cur[:0], '<'), x.line
		}
		if c, err = x.byte(); err != nil {
			return record{}, errUnusual
		}
		var done bool
		switch c {
		case '/':
			done, err = x.endTag()
		case '!':
			err = x.comment()
		case '?':
			err = x.declaration()
		default:
			done, err = x.startTag(c)
		}
		if err != nil {
			return record{}, errUnusual
		}
		if done {
			r := x.b.done()
			return record{line: x.txnLine, raw: r.values(), row: r}, nil
		}
	}
}

// name reads an ASCII name that starts with c and returns it and the byte
// after it.
func (x *xmlScanner) name(c byte) ([]byte, byte, error) {
	start := len(x.cur) - 1
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return nil, 0, errUnusual
	}
	x.span(nameBytes)
	c, err := x.byte()
	if err != nil {
		return nil, 0, err
	}
	return x.cur[start : len(x.cur)-1], c, nil
}

// elementName is name as a string, without allocating for the names of
// the upload.
func elementName(name []byte) string {
	switch string(name) {
	case "InventoryTransaction":
		return "InventoryTransaction"
	case "Transaction":
		return "Transaction"
	case "TransactionTo":
		return "TransactionTo"
	case "Message":
		return "Message"
	}
	return string(name)
}

// startTag reads a start tag after '<' and its first byte c; done says it
// ended an InventoryTransaction (an empty element).
func (x *xmlScanner) startTag(c byte) (done bool, err error) {
	nb, c, err := x.name(c)
	if err != nil {
		return false, err
	}
	name := elementName(nb)
	nameEnd := len(x.cur) - 1
	startTxn := x.txn == 0 && name == "InventoryTransaction"
	if startTxn {
		x.b = xmlTxnBuilder{}
	}
	side := x.txn > 0 && x.depth == x.txn
	for {
		if isXMLSpace(c) {
			if c, err = x.space(); err != nil {
				return false, err
			}
		}
		switch c {
		case '>', '/':
			empty := c == '/'
			if empty {
				if c, err = x.byte(); err != nil || c != '>' {
					return false, errUnusual
				}
			}
			if startTxn {
				x.txnLine = x.mark
				if empty {
					return true, nil
				}
				x.txn = x.depth + 1
			}
			if !empty {
				x.push(name, x.cur[nameEnd:])
			}
			return false, nil
		}
		an, c2, err := x.name(c)
		if err != nil {
			return false, err
		}
		var field *string
		if startTxn {
			field = x.b.txnField(string(an))
		} else if side {
			field = x.b.sideField(name, string(an))
		}
		if isXMLSpace(c2) {
			if c2, err = x.space(); err != nil {
				return false, err
			}
		}
		if c2 != '=' {
			return false, errUnusual
		}
		if c, err = x.space(); err != nil {
			return false, err
		}
		if err := x.value(c); err != nil {
			return false, err
		}
		if field != nil {
			*field = string(x.val)
		}
		if c, err = x.byte(); err != nil {
			return false, err
		}
	}
}

func (x *xmlScanner) push(name string, rest []byte) {
	if x.depth == len(x.stack) {
		x.stack = append(x.stack, openTag{})
	}
	t := &x.stack[x.depth]
	t.name, t.line, t.rest = name, x.mark, append(t.rest[:0], rest...)
	x.depth++
}

// value reads a quoted attribute value whose quote is q into x.val.
func (x *xmlScanner) value(q byte) error {
	if q != '"' && q != '\'' {
		return errUnusual
	}
	x.val = x.val[:0]
	high := false
	for {
		start := len(x.cur)
		x.span(valueBytes)
		x.val = append(x.val, x.cur[start:]...)
		c, err := x.byte()
		if err != nil {
			return err
		}
		switch {
		case c == q:
			// encoding/xml refuses invalid UTF-8 and the characters XML
			// excludes: it reports them.
			if high && !validXMLText(x.val) {
				return errUnusual
			}
			return nil
		case c == '&':
			r, err := x.entity()
			if err != nil {
				return err
			}
			x.val = append(x.val, r)
		case c == '<' || c == '\r' || (c < 0x20 && c != '\t' && c != '\n'):
			return errUnusual
		default:
			high = high || c >= utf8.RuneSelf
			x.val = append(x.val, c)
		}
	}
}

// entity reads a predefined entity after its '&'.
func (x *xmlScanner) entity() (byte, error) {
	var name [5]byte
	for i := 0; ; i++ {
		c, err := x.byte()
		if err != nil {
			return 0, err
		}
		if c == ';' {
			switch string(name[:i]) {
			case "lt":
				return '<', nil
			case "gt":
				return '>', nil
			case "amp":
				return '&', nil
			case "apos":
				return '\'', nil
			case "quot":
				return '"', nil
			}
			return 0, errUnusual
		}
		if i == len(name) {
			return 0, errUnusual
		}
		name[i] = c
	}
}

// validXMLText says b is UTF-8 of characters XML allows.
func validXMLText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return false
		}
		if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
		b = b[n:]
	}
	return true
}

// endTag reads an end tag after "</"; done says it ended an
// InventoryTransaction.
func (x *xmlScanner) endTag() (done bool, err error) {
	c, err := x.byte()
	if err != nil {
		return false, err
	}
	nb, c, err := x.name(c)
	if err != nil {
		return false, err
	}
	if isXMLSpace(c) {
		if c, err = x.space(); err != nil {
			return false, err
		}
	}
	if c != '>' || x.depth == 0 || x.stack[x.depth-1].name != string(nb) {
		return false, errUnusual
	}
	x.depth--
	if x.depth < x.txn {
		x.txn = 0
		return true, nil
	}
	return false, nil
}

// comment reads a comment after "<!" as encoding/xml does: up to the first
// "--", which must be followed by '>'.
func (x *xmlScanner) comment() error {
	for range 2 {
		if c, err := x.byte(); err != nil || c != '-' {
			return errUnusual
		}
	}
	var b0, b1 byte
	for {
		c, err := x.byte()
		if err != nil {
			return err
		}
		if b0 == '-' && b1 == '-' {
			if c != '>' {
				return errUnusual
			}
			return nil
		}
		b0, b1 = b1, c
	}
}

// declaration reads the XML declaration after "<?": only the forms that
// declare UTF-8 (or no encoding) and version 1.0.
func (x *xmlScanner) declaration() error {
	for {
		c, err := x.byte()
		if err != nil {
			return err
		}
		if c == '>' && len(x.cur) >= 4 && x.cur[len(x.cur)-2] == '?' {
			break
		}
	}
	switch string(x.cur) {
	case `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`,
		`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`, `<?xml version='1.0' encoding='UTF-8'?>`:
		return nil
	}
	return errUnusual
}
