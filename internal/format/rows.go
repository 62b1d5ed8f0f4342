package format

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Row is one record of an input file. Fields follow the reader's Header.
// A row the reader could not split into fields has Err set; it is rejected
// and reading goes on.
type Row struct {
	Line   int
	Fields []string
	Err    error
}

// RowReader yields the records of a file in order.
type RowReader interface {
	// Header is the column names, lower case, in the order of Row.Fields.
	Header() []string
	// Next returns the next row, or io.EOF.
	Next() (Row, error)
	// Warnings lists notes about the file's shape (unknown columns, elements).
	Warnings() []string
	// Present lists the known columns the file has: the CSV header, or the
	// fields seen on any XML record read so far.
	Present() []string
}

// ErrEmpty means the file has no header row.
var ErrEmpty = errors.New("file is empty (no header row)")

// skipBOM drops a UTF-8 byte order mark at the start of r.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64*1024)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	return br
}

type csvRows struct {
	r      *csv.Reader
	header []string
	notes  []string
}

// NewCSVReader reads a CSV file with a header row: UTF-8 with or without a
// BOM, LF or CRLF, RFC 4180 quoting. Header names are trimmed and lowered.
func NewCSVReader(r io.Reader) (RowReader, error) {
	cr := csv.NewReader(skipBOM(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	seen := map[string]bool{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			return nil, fmt.Errorf("line 1: column %d has no name", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		seen[h] = true
		head[i] = h
	}
	return &csvRows{r: cr, header: head}, nil
}

func (c *csvRows) Header() []string   { return c.header }
func (c *csvRows) Present() []string  { return c.header }
func (c *csvRows) Warnings() []string { return c.notes }

func (c *csvRows) Next() (Row, error) {
	rec, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return Row{}, io.EOF
	}
	// A cell that posbridge quoted for spreadsheets reads back as its value.
	for i, v := range rec {
		rec[i] = SpreadsheetValue(v)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrQuote) {
			msg = fmt.Sprintf("extraneous or missing \" in quoted field %d (the record runs to line %d)", len(rec)+1, pe.Line)
		} else if errors.Is(pe.Err, csv.ErrBareQuote) {
			// rec holds the fields before the bad one.
			msg = fmt.Sprintf("bare \" in unquoted field %d (quote the field and double the quote)", len(rec)+1)
		}
		return Row{Line: pe.StartLine, Fields: rec, Err: errors.New("malformed CSV: " + msg)}, nil
	}
	if err != nil {
		return Row{}, err
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) != len(c.header) {
		return Row{Line: line, Fields: rec, Err: fmt.Errorf("has %d fields, the header has %d (truncated or misaligned line)", len(rec), len(c.header))}, nil
	}
	return Row{Line: line, Fields: rec}, nil
}

type xmlRows struct {
	d       *xml.Decoder
	header  []string
	index   map[string]int
	root    string
	record  string
	started bool
	notes   []string
	noted   map[string]bool
	seen    []bool
	done    bool // io.EOF was returned; it is returned again
}

// NewXMLReader reads records from XML: a root element named root whose
// child elements named record each hold one record, with the fields as
// attributes or as child elements, named like the CSV columns in columns.
// DTDs are not processed and entities other than XML's five are an error.
func NewXMLReader(r io.Reader, root, record string, columns []string) RowReader {
	d := NewXMLDecoder(r)
	idx := make(map[string]int, len(columns))
	for i, c := range columns {
		idx[c] = i
	}
	return &xmlRows{d: d, header: columns, index: idx, root: root, record: record, noted: map[string]bool{}, seen: make([]bool, len(columns))}
}

func (x *xmlRows) Header() []string { return x.header }

func (x *xmlRows) Present() []string {
	var out []string
	for i, ok := range x.seen {
		if ok {
			out = append(out, x.header[i])
		}
	}
	return out
}
func (x *xmlRows) Warnings() []string { return x.notes }

func (x *xmlRows) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !x.noted[msg] {
		x.noted[msg] = true
		x.notes = append(x.notes, msg)
	}
}

func (x *xmlRows) syntax(err error) error { return XMLError(x.d, err, "</"+x.root+">") }

// NewXMLDecoder reads XML strictly: a BOM is skipped, DTDs are not
// processed, entities other than XML's five are errors (so a billion-laughs
// file fails at once), and encodings other than UTF-8 are refused by name.
func NewXMLDecoder(r io.Reader) *xml.Decoder {
	d := xml.NewDecoder(skipBOM(r))
	d.Strict = true
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported: convert the file to UTF-8", label)
	}
	return d
}

// XMLError turns a decoder error into a message with a line number; end
// names the end tag a truncated file lacks.
func XMLError(d *xml.Decoder, err error, end string) error {
	line, _ := d.InputPos()
	var se *xml.SyntaxError
	// With elements still open, the decoder reports the end of the file as
	// a syntax error "unexpected EOF".
	if errors.Is(err, io.EOF) || (errors.As(err, &se) && se.Msg == "unexpected EOF") {
		return fmt.Errorf("line %d: XML ends before the %s end tag (truncated file?)", line, end)
	}
	if se != nil {
		return fmt.Errorf("line %d: malformed XML: %s", se.Line, se.Msg)
	}
	return fmt.Errorf("line %d: %w", line, err)
}

func (x *xmlRows) Next() (Row, error) {
	if x.done {
		return Row{}, io.EOF
	}
	for {
		line, _ := x.d.InputPos()
		tok, err := x.d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && !x.started {
				return Row{}, ErrEmpty
			}
			return Row{}, x.syntax(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !x.started && len(bytes.TrimSpace(t)) > 0 {
				return Row{}, fmt.Errorf("line %d: not XML: text before the <%s> root element (is this a CSV file? use --format csv)", line, x.root)
			}
		case xml.StartElement:
			if !x.started {
				if t.Name.Local != x.root {
					return Row{}, fmt.Errorf("line %d: root element is <%s>, want <%s>", line, t.Name.Local, x.root)
				}
				x.started = true
				continue
			}
			if t.Name.Local != x.record {
				x.note("ignored <%s> elements: records are <%s>", t.Name.Local, x.record)
				if err := x.d.Skip(); err != nil {
					return Row{}, x.syntax(err)
				}
				continue
			}
			return x.readRecord(t, line)
		case xml.EndElement:
			// The root closed: the rest of the file must be only misc.
			for {
				tok, err := x.d.Token()
				if errors.Is(err, io.EOF) {
					x.done = true
					return Row{}, io.EOF
				}
				if err != nil {
					return Row{}, x.syntax(err)
				}
				if _, ok := tok.(xml.StartElement); ok {
					return Row{}, fmt.Errorf("line %d: content after the </%s> end tag", line, x.root)
				}
			}
		}
	}
}

func (x *xmlRows) readRecord(start xml.StartElement, line int) (Row, error) {
	fields := make([]string, len(x.header))
	set := func(name, val string) {
		name = strings.ToLower(name)
		if i, ok := x.index[name]; ok {
			fields[i] = val
			x.seen[i] = true
		} else {
			x.note("ignored unknown field %q", name)
		}
	}
	for _, a := range start.Attr {
		set(a.Name.Local, a.Value)
	}
	for {
		tok, err := x.d.Token()
		if err != nil {
			return Row{}, x.syntax(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var text string
			if err := x.d.DecodeElement(&text, &t); err != nil {
				return Row{}, x.syntax(err)
			}
			set(t.Name.Local, text)
		case xml.EndElement:
			return Row{Line: line, Fields: fields}, nil
		}
	}
}
