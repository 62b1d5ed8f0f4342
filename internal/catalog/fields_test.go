package catalog

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/format"
)

// rowTypes are the row types of the kinds, for the oracle.
var rowTypes = map[string]any{
	"warehouses": warehouseRow{},
	"vendors":    vendorRow{},
	"customers":  customerRow{},
	"items":      itemRow{},
	"invoices":   invoiceRow{},
	"inventory":  inventoryRow{},
}

// oracleParse is parse as it was when gocsv mapped each batch of rows
// onto the kind's row struct (format.DecodeRows) and oracleConvert read
// the struct's fields back by reflection: what parse must still produce.
func oracleParse(l *loader, rr format.RowReader) []parsed {
	var out []parsed
	header := rr.Header()
	sliceType := reflect.SliceOf(reflect.TypeOf(rowTypes[l.k.name]))
	width := len(l.k.plan.cols) + 2
	var rec int64
	batch := make([]format.Row, 0, stageBatch)
	cur := parsed{vals: make([]any, 0, stageBatch*width)}
	convert := func() error {
		if len(batch) == 0 {
			return nil
		}
		slice := reflect.New(sliceType)
		if err := format.DecodeRows(header, batch, slice.Interface()); err != nil {
			return fmt.Errorf("decode rows: %w", err)
		}
		sl := slice.Elem()
		for i := 0; i < sl.Len(); i++ {
			start := len(cur.vals)
			rec++
			cur.vals = append(cur.vals, rec, int64(batch[i].Line))
			var problems []string
			cur.vals, problems = oracleConvert(l.k.plan, sl.Index(i), l.opts.MaxFieldLength, cur.vals)
			if len(problems) > 0 {
				cur.vals = cur.vals[:start]
				cur.rejects = append(cur.rejects, rejected{batch[i].Line, strings.Join(problems, "; "), batch[i].Fields})
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return append(out, parsed{err: fmt.Errorf("%w: %v", ErrFile, err)})
		}
		cur.read++
		if row.Err != nil {
			cur.rejects = append(cur.rejects, rejected{row.Line, row.Err.Error(), row.Fields})
			continue
		}
		batch = append(batch, row)
		if len(batch) == stageBatch {
			if err := convert(); err != nil {
				return append(out, parsed{err: err})
			}
			out = append(out, cur)
			cur = parsed{vals: make([]any, 0, stageBatch*width)}
		}
	}
	if err := convert(); err != nil {
		return append(out, parsed{err: err})
	}
	return append(out, cur)
}

// oracleConvert is plan.convert as it was, over the row struct (the plan's
// columns are its fields, in order).
func oracleConvert(p plan, row reflect.Value, maxLen int, dst []any) ([]any, []string) {
	var problems []string
	for i, c := range p.cols {
		raw := strings.TrimSpace(row.Field(i).String())
		if err := format.CheckText(raw, 0); err != nil {
			problems = append(problems, fmt.Sprintf("field %s %v", c.name, err))
			dst = append(dst, nil)
			continue
		}
		if raw == "" {
			raw = c.def
		}
		if raw == "" {
			if c.required {
				problems = append(problems, fmt.Sprintf("field %s is required", c.name))
			}
			if c.typ == "text" {
				dst = append(dst, "")
			} else {
				dst = append(dst, nil)
			}
			continue
		}
		var v any
		var err error
		switch c.typ {
		case "text":
			limit := c.max
			if limit == 0 || limit > maxLen {
				limit = maxLen
			}
			v = raw
			if c.upper {
				v = strings.ToUpper(raw)
			}
			err = format.CheckText(raw, limit)
		case "int", "qty":
			var n int64
			n, err = format.ParseInt(raw)
			if err == nil && c.typ == "qty" {
				err = format.CheckQuantity(n)
			}
			if err == nil && c.min != nil && n < *c.min {
				err = fmt.Errorf("must be at least %d", *c.min)
			}
			v = n
		case "decimal":
			var n int64
			n, err = format.ParseAmount(raw)
			if err == nil {
				err = format.CheckAmount(n)
			}
			if err == nil && c.min != nil && n < *c.min*format.AmountScale {
				err = fmt.Errorf("must be at least %d", *c.min)
			}
			v = n
		case "flag":
			var b bool
			b, err = format.ParseFlag(raw)
			if b {
				v = int64(1)
			} else {
				v = int64(0)
			}
		case "date":
			v, err = format.ParseDate(raw)
		}
		if err != nil {
			shown := raw
			if len(shown) > 40 {
				shown = shown[:40] + "..."
			}
			problems = append(problems, fmt.Sprintf("field %s %q: %v", c.name, shown, err))
			v = nil
		}
		dst = append(dst, v)
	}
	return dst, problems
}

// sliceRows is a RowReader of rows given as they are: any header (names
// twice, untrimmed), rows of any width, rows that did not split.
type sliceRows struct {
	header []string
	rows   []format.Row
}

func (s *sliceRows) Header() []string   { return s.header }
func (s *sliceRows) Warnings() []string { return nil }
func (s *sliceRows) Present() []string  { return s.header }
func (s *sliceRows) Next() (format.Row, error) {
	if len(s.rows) == 0 {
		return format.Row{}, io.EOF
	}
	r := s.rows[0]
	s.rows = s.rows[1:]
	return r, nil
}

// trickyValues are field values for every column, whatever its type:
// spaces, numbers good and bad, flags, dates, text that is not text, and
// lengths around every limit of the plans (and the field length limits
// the test loads with).
var trickyValues = func() []string {
	v := []string{"", " ", "  ", "x", " a1 ", "abc", "Ünïcödé", "ab ", "i", "0", "1", "-1", "+5", "007", "1.5", "12.3456",
		"1.23456", ".5", "5.", "-", ".", "1e3", "1,000", "-0.01", "99999999999", "99999999999999", "999999999999999",
		"9223372036854775808", "-9223372036854775809", "1000000000", "Y", "N", "y", "n", "yes", "no", "true", "T",
		"2026-12-07", " 2026-12-07 ", "2026-02-30", "20261207", "12/07/2026", "a\x01b", "a\x00", "\x7f", "bad\xffutf8",
		"tab\there", "line\nbreak", "cr\rx", "=1+2", "'=x", "\"q\"", "a,b", " 42 ", "\u200b", "\u00a0x\u00a0"}
	for _, n := range []int{3, 4, 9, 10, 11, 19, 20, 21, 30, 31, 40, 41, 60, 61, 120, 121, 999, 1000, 1001} {
		v = append(v, strings.Repeat("x", n), strings.Repeat("é", n))
	}
	return v
}()

// headerNames are the header's candidates for kind k: its columns, and
// unknown names, some of which gocsv matched to a column anyway.
func headerNames(k *kindSpec) []string {
	var names []string
	for _, c := range k.plan.cols {
		names = append(names, c.name, c.name+"\u200b", "\ufeff"+c.name, c.name+"\u200d", " "+c.name+" ", strings.ToUpper(c.name), c.name+"x")
	}
	return append(names, "extra", "notes", "\u200c", "")
}

// randomHeader is the plan's columns in a random order, some left out,
// given twice or in another spelling, among unknown names; or, at times,
// any names of headerNames.
func randomHeader(r *rand.Rand, k *kindSpec, names []string) []string {
	if r.IntN(4) == 0 {
		h := make([]string, r.IntN(len(names)/3+2))
		for i := range h {
			h[i] = names[r.IntN(len(names))]
		}
		return h
	}
	var h []string
	for _, c := range k.plan.cols {
		if c.required || r.IntN(3) > 0 {
			h = append(h, c.name)
		}
	}
	for range r.IntN(4) {
		if n := names[r.IntN(len(names))]; !slices.Contains(h, n) {
			h = append(h, n)
		}
	}
	r.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	return h
}

// goodValues are valid values of each type of column (text as long as
// its column allows, and not empty when it is required).
var goodValues = map[string][]string{
	"text":    {"", "A", " b ", "Ü", "Ab", "x y"},
	"int":     {"1", "2", " 7 "},
	"qty":     {"0", "5", "300"},
	"decimal": {"0", "12.50", "1000", " 3.2 "},
	"flag":    {"", "Y", "N"},
	"date":    {"2026-12-07", "2025-01-31"},
}

// randomFields are fields for the columns header names: mostly valid for
// the column the name is, else any of trickyValues.
func randomFields(r *rand.Rand, k *kindSpec, header []string) []string {
	f := make([]string, len(header))
	for i, h := range header {
		if c := slices.IndexFunc(k.plan.cols, func(c column) bool { return c.name == h }); c >= 0 && r.IntN(40) > 0 {
			col := k.plan.cols[c]
			good := goodValues[col.typ]
			for {
				f[i] = good[r.IntN(len(good))]
				if (f[i] != "" || !col.required) && (col.max == 0 || utf8.RuneCountInString(strings.TrimSpace(f[i])) <= col.max) {
					break
				}
			}
		} else {
			f[i] = trickyValues[r.IntN(len(trickyValues))]
		}
	}
	return f
}

// csvField writes v as a CSV field, quoted when it must be or by chance.
func csvField(r *rand.Rand, v string) string {
	if strings.ContainsAny(v, ",\"\r\n") || r.IntN(4) == 0 {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

// randomCSV is a CSV file of rows rows with a random header; some lines
// are short, long or badly quoted.
func randomCSV(r *rand.Rand, k *kindSpec, names []string, rows int) []byte {
	header := randomHeader(r, k, names)
	if len(header) == 0 {
		header = []string{names[0]}
	}
	var b bytes.Buffer
	line := func(fields []string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(csvField(r, f))
		}
		b.WriteString([]string{"\n", "\r\n"}[r.IntN(2)])
	}
	line(header)
	for range rows {
		switch r.IntN(40) {
		case 0:
			line(randomFields(r, k, append(header, "extra")))
		case 1:
			line(randomFields(r, k, header[1:]))
		case 2:
			b.WriteString("a\"b,c\n")
		default:
			line(randomFields(r, k, header))
		}
	}
	return b.Bytes()
}

// randomXML is an XML file of the kind with rows records, their fields
// as attributes or elements, several records on a line at times.
func randomXML(r *rand.Rand, k *kindSpec, names []string, rows int) []byte {
	var b bytes.Buffer
	b.WriteString("<" + k.root + ">\n")
	for range rows {
		b.WriteString("<" + k.record)
		var elems []string
		attrs := map[string]bool{} // an attribute twice is malformed XML
		header := randomHeader(r, k, names)
		for i, v := range randomFields(r, k, header) {
			name := header[i]
			if !xmlName(name) || !xmlText(v) {
				continue
			}
			var e bytes.Buffer
			xml.EscapeText(&e, []byte(v))
			if r.IntN(2) == 0 && !attrs[name] {
				attrs[name] = true
				fmt.Fprintf(&b, ` %s="%s"`, name, e.String())
			} else {
				elems = append(elems, fmt.Sprintf("<%s>%s</%s>", name, e.String(), name))
			}
		}
		b.WriteString(">" + strings.Join(elems, "") + "</" + k.record + ">")
		if r.IntN(3) > 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString("</" + k.root + ">\n")
	return b.Bytes()
}

func xmlName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \u200b\u200c\u200d\ufeff")
}

func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f })
}

// randomSliceRows is a reader of rows of any width under a header of any
// names, twice or untrimmed included; some rows did not split.
func randomSliceRows(r *rand.Rand, k *kindSpec, names []string, rows int) *sliceRows {
	s := &sliceRows{header: randomHeader(r, k, names)}
	for i := range rows {
		row := format.Row{Line: i + 2, Fields: randomFields(r, k, s.header)}
		switch r.IntN(30) {
		case 0:
			row.Fields = append(row.Fields, randomFields(r, k, names[:r.IntN(3)+1])...)
		case 1:
			row.Fields = row.Fields[:r.IntN(len(row.Fields)+1)]
		case 2:
			row.Err = errors.New("malformed CSV: bare \"")
		}
		s.rows = append(s.rows, row)
	}
	return s
}

// collect runs parse over rr to the end.
func collect(l *loader, rr format.RowReader) []parsed {
	batches, stop := l.startParse(rr)
	defer stop()
	var out []parsed
	for b := range batches {
		out = append(out, b)
	}
	return out
}

// sameParsed reports how got differs from want, "" when it does not. The
// rejects of a batch are compared in line order: the oracle listed the
// rows that did not split before those that did not convert.
func sameParsed(got, want []parsed) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d batches, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if fmt.Sprint(g.err) != fmt.Sprint(w.err) {
			return fmt.Sprintf("batch %d: error %v, want %v", i, g.err, w.err)
		}
		if g.read != w.read {
			return fmt.Sprintf("batch %d: read %d, want %d", i, g.read, w.read)
		}
		if !reflect.DeepEqual(g.vals, w.vals) {
			for j := range min(len(g.vals), len(w.vals)) {
				if !reflect.DeepEqual(g.vals[j], w.vals[j]) {
					return fmt.Sprintf("batch %d: value %d is %#v, want %#v", i, j, g.vals[j], w.vals[j])
				}
			}
			return fmt.Sprintf("batch %d: %d values, want %d", i, len(g.vals), len(w.vals))
		}
		byLine := func(a, b rejected) int { return a.line - b.line }
		gr, wr := slices.Clone(g.rejects), slices.Clone(w.rejects)
		slices.SortStableFunc(gr, byLine)
		slices.SortStableFunc(wr, byLine)
		if !reflect.DeepEqual(gr, wr) {
			return fmt.Sprintf("batch %d: rejects\n%+v\nwant\n%+v", i, gr, wr)
		}
	}
	return ""
}

// TestParseLikeGocsv checks that parse, which maps the header onto the
// plan once, stages and rejects exactly what the gocsv mapping did, on
// random files of every kind: headers in any order, with columns missing,
// unknown, given twice or with zero-width characters; fields empty,
// quoted, too long, not numbers, not text; rows that do not split.
func TestParseLikeGocsv(t *testing.T) {
	for name := range kinds {
		if _, ok := rowTypes[name]; !ok {
			t.Fatalf("kind %s has no row type for the oracle", name)
		}
	}
	r := rand.New(rand.NewPCG(18, 1))
	var batches, rejects, vals int
	for _, name := range slices.Sorted(maps.Keys(kinds)) {
		k := kinds[name]
		names := headerNames(k)
		for i := range 200 {
			rows := r.IntN(30)
			if i%50 == 0 {
				rows = 2*stageBatch + r.IntN(stageBatch) // several batches
			}
			l := &loader{ctx: context.Background(), k: k, opts: Options{MaxFieldLength: []int{1000, 1000, 40, 10, 3}[i%5]}}
			check := func(what string, input any, open func() format.RowReader) {
				t.Helper()
				got, want := collect(l, open()), oracleParse(l, open())
				if d := sameParsed(got, want); d != "" {
					t.Fatalf("%s %s #%d: %s\ninput: %q", name, what, i, d, input)
				}
				for _, b := range want {
					batches++
					rejects += len(b.rejects)
					vals += len(b.vals)
				}
			}
			csvText := randomCSV(r, k, names, rows)
			if _, err := format.NewCSVReader(bytes.NewReader(csvText)); err == nil {
				check("CSV", csvText, func() format.RowReader {
					rr, _ := format.NewCSVReader(bytes.NewReader(csvText))
					return rr
				})
			}
			xmlText := randomXML(r, k, names, rows)
			check("XML", xmlText, func() format.RowReader {
				return format.NewXMLReader(bytes.NewReader(xmlText), k.root, k.record, k.plan.names())
			})
			sr := randomSliceRows(r, k, names, rows)
			check("rows", sr, func() format.RowReader { c := *sr; return &c })
		}
	}
	// The inputs must reach what they are for: rows staged and rejected,
	// across batches.
	if batches < 2*len(kinds)*200 || rejects < 10000 || vals < 300000 {
		t.Errorf("only %d batches, %d rejects, %d values compared", batches, rejects, vals)
	}
	t.Logf("%d batches, %d rejects, %d values compared", batches, rejects, vals)
}
