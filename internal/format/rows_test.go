package format_test

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/format"
)

// readAll drains r and returns its rows and the error that ended reading
// (nil for a clean io.EOF).
func readAll(t *testing.T, r format.RowReader) ([]format.Row, error) {
	t.Helper()
	var rows []format.Row
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("reader does not reach the end")
		}
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

// wantRow is a row as a test expects it: Err is a substring of the row's
// error, "" for a good row.
type wantRow struct {
	line   int
	fields []string
	err    string
}

func checkRows(t *testing.T, got []format.Row, want []wantRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line {
			t.Errorf("row %d: line %d, want %d", i, g.Line, w.line)
		}
		if w.err == "" {
			if g.Err != nil {
				t.Errorf("row %d (line %d): unexpected error %v", i, g.Line, g.Err)
			}
			if !reflect.DeepEqual(g.Fields, w.fields) {
				t.Errorf("row %d (line %d): fields %q, want %q", i, g.Line, g.Fields, w.fields)
			}
			continue
		}
		if g.Err == nil {
			t.Errorf("row %d (line %d): no error, want one containing %q (fields %q)", i, g.Line, w.err, g.Fields)
		} else if !strings.Contains(g.Err.Error(), w.err) {
			t.Errorf("row %d (line %d): error %q, want it to contain %q", i, g.Line, g.Err, w.err)
		}
	}
}

func TestCSVReader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		header []string
		rows   []wantRow
	}{
		{
			name:   "plain LF file",
			in:     "item,description\nIT1,Shirt\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows:   []wantRow{{line: 2, fields: []string{"IT1", "Shirt"}}, {line: 3, fields: []string{"IT2", "Shoe"}}},
		},
		{
			name:   "no newline at the end",
			in:     "item,description\nIT1,Shirt",
			header: []string{"item", "description"},
			rows:   []wantRow{{line: 2, fields: []string{"IT1", "Shirt"}}},
		},
		{
			name:   "UTF-8 byte order mark is dropped",
			in:     "\xEF\xBB\xBFitem,description\nIT1,Shirt\n",
			header: []string{"item", "description"},
			rows:   []wantRow{{line: 2, fields: []string{"IT1", "Shirt"}}},
		},
		{
			name:   "CRLF line ends",
			in:     "item,description\r\nIT1,Shirt\r\nIT2,\"Two\r\nlines\"\r\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, fields: []string{"IT1", "Shirt"}},
				{line: 3, fields: []string{"IT2", "Two\nlines"}},
			},
		},
		{
			name:   "header names are trimmed and lower-cased, values are kept as they are",
			in:     " Item ,DESCRIPTION,\tSku_Description\nIT1, Shirt ,Red\n",
			header: []string{"item", "description", "sku_description"},
			rows:   []wantRow{{line: 2, fields: []string{"IT1", " Shirt ", "Red"}}},
		},
		{
			name:   "header only",
			in:     "item,description\n",
			header: []string{"item", "description"},
		},
		{
			name:   "blank lines are skipped but counted",
			in:     "item,description\n\nIT1,Shirt\n\n\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows:   []wantRow{{line: 3, fields: []string{"IT1", "Shirt"}}, {line: 6, fields: []string{"IT2", "Shoe"}}},
		},
		{
			name:   "quoted fields with commas and doubled quotes",
			in:     "item,description\nIT1,\"Shirt, \"\"red\"\"\"\n",
			header: []string{"item", "description"},
			rows:   []wantRow{{line: 2, fields: []string{"IT1", `Shirt, "red"`}}},
		},
		{
			name:   "too few fields is a row error, reading goes on",
			in:     "item,description,price\nIT1,Shirt\nIT2,Shoe,9.99\n",
			header: []string{"item", "description", "price"},
			rows: []wantRow{
				{line: 2, err: "has 2 fields, the header has 3"},
				{line: 3, fields: []string{"IT2", "Shoe", "9.99"}},
			},
		},
		{
			name:   "too many fields is a row error",
			in:     "item,description\nIT1,Shirt,extra\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, err: "has 3 fields, the header has 2"},
				{line: 3, fields: []string{"IT2", "Shoe"}},
			},
		},
		{
			name:   "bare quote in an unquoted field is a row error naming the field",
			in:     "item,description\nIT1,5\" screen\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, err: `malformed CSV: bare " in unquoted field 2`},
				{line: 3, fields: []string{"IT2", "Shoe"}},
			},
		},
		{
			name:   "unterminated quote runs to the end of the file",
			in:     "item,description\nIT1,Shirt\nIT2,\"Shoe\nIT3,Hat\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, fields: []string{"IT1", "Shirt"}},
				{line: 3, err: "malformed CSV: extraneous or missing \" in quoted field 2 (the record runs to line 4)"},
			},
		},
		{
			name:   "embedded newlines: the row has the line its record starts on",
			in:     "item,description\n\"IT\n1\",\"a\nb\nc\"\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, fields: []string{"IT\n1", "a\nb\nc"}},
				{line: 6, fields: []string{"IT2", "Shoe"}},
			},
		},
		{
			name:   "embedded newline in a later field keeps the start line",
			in:     "item,description\nIT1,\"a\nb\"\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, fields: []string{"IT1", "a\nb"}},
				{line: 4, fields: []string{"IT2", "Shoe"}},
			},
		},
		{
			name:   "field count error after a multi-line record names its start line",
			in:     "item,description\n\"IT\n1\"\nIT2,Shoe\n",
			header: []string{"item", "description"},
			rows: []wantRow{
				{line: 2, err: "has 1 fields, the header has 2"},
				{line: 4, fields: []string{"IT2", "Shoe"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := format.NewCSVReader(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("NewCSVReader: %v", err)
			}
			if !reflect.DeepEqual(r.Header(), tt.header) {
				t.Fatalf("Header() = %q, want %q", r.Header(), tt.header)
			}
			rows, err := readAll(t, r)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			checkRows(t, rows, tt.rows)
		})
	}
}

func TestCSVReaderFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		isEmpty bool   // errors.Is(err, format.ErrEmpty)
		wantErr string // substring
	}{
		{name: "empty file", in: "", isEmpty: true},
		{name: "only a byte order mark", in: "\xEF\xBB\xBF", isEmpty: true},
		{name: "only blank lines", in: "\n\r\n\n", isEmpty: true},
		{name: "duplicate column", in: "item,description,Item\nIT1,Shirt,IT1\n", wantErr: `line 1: column "item" appears twice`},
		{name: "duplicate column after trimming", in: "sku, sku \n", wantErr: `column "sku" appears twice`},
		{name: "column without a name", in: "item,,price\n", wantErr: "line 1: column 2 has no name"},
		{name: "blank column name", in: "item, \n", wantErr: "column 2 has no name"},
		{name: "malformed header", in: "item,\"desc\n", wantErr: "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := format.NewCSVReader(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("NewCSVReader succeeded with header %q, want an error", r.Header())
			}
			if tt.isEmpty {
				if !errors.Is(err, format.ErrEmpty) {
					t.Fatalf("error %v, want ErrEmpty", err)
				}
				return
			}
			if errors.Is(err, format.ErrEmpty) {
				t.Fatalf("error %v is ErrEmpty, want a header error", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

var itemColumns = []string{"item", "sku", "description", "price"}

func TestXMLReader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		rows     []wantRow
		warnings []string
	}{
		{
			name: "fields as attributes",
			in: `<?xml version="1.0" encoding="UTF-8"?>
<Items>
  <Item item="IT1" sku="RED" description="Shirt" price="12.50"/>
  <Item item="IT2" description="Shoe"/>
</Items>
`,
			rows: []wantRow{
				{line: 3, fields: []string{"IT1", "RED", "Shirt", "12.50"}},
				{line: 4, fields: []string{"IT2", "", "Shoe", ""}},
			},
		},
		{
			name: "fields as child elements, mixed with attributes",
			in: `<Items>
  <Item item="IT1">
    <sku>RED</sku>
    <description>Shirt &amp; tie</description>
    <price>12.50</price>
  </Item>
</Items>`,
			rows: []wantRow{{line: 2, fields: []string{"IT1", "RED", "Shirt & tie", "12.50"}}},
		},
		{
			name: "field names are case-insensitive",
			in:   `<Items><Item Item="IT1" SKU="RED"><Description>Shirt</Description></Item></Items>`,
			rows: []wantRow{{line: 1, fields: []string{"IT1", "RED", "Shirt", ""}}},
		},
		{
			name: "byte order mark and character references",
			in:   "\xEF\xBB\xBF<Items><Item item=\"IT1\" description=\"Caf&#233; &lt;1&gt;\"/></Items>",
			rows: []wantRow{{line: 1, fields: []string{"IT1", "", "Café <1>", ""}}},
		},
		{
			name: "unknown fields are ignored with one warning each",
			in: `<Items>
<Item item="IT1" colour="red"><weight>3</weight></Item>
<Item item="IT2" colour="blue"/>
</Items>`,
			rows: []wantRow{
				{line: 2, fields: []string{"IT1", "", "", ""}},
				{line: 3, fields: []string{"IT2", "", "", ""}},
			},
			warnings: []string{`ignored unknown field "colour"`, `ignored unknown field "weight"`},
		},
		{
			name: "non-record elements are skipped with a warning",
			in: `<Items>
<Header created="2024-01-01"><Count>2</Count></Header>
<Item item="IT1"/>
<Trailer/>
<Item item="IT2"/>
</Items>`,
			rows: []wantRow{
				{line: 3, fields: []string{"IT1", "", "", ""}},
				{line: 5, fields: []string{"IT2", "", "", ""}},
			},
			warnings: []string{"ignored <Header> elements: records are <Item>", "ignored <Trailer> elements: records are <Item>"},
		},
		{
			name: "comments, processing instructions and a DOCTYPE without entities are ignored",
			in: `<?xml version="1.0"?>
<!DOCTYPE Items>
<!-- exported nightly -->
<Items><?render fast?><Item item="IT1"/><!-- end --></Items>
<!-- trailer -->
`,
			rows: []wantRow{{line: 4, fields: []string{"IT1", "", "", ""}}},
		},
		{
			name: "a record's line is where its element starts, like a multi-line CSV record",
			in: `<Items>
  <Item
    item="IT1"
    description="Shirt"/>
  <Item item="IT2">
    <description>Shoe</description>
  </Item>
</Items>`,
			rows: []wantRow{
				{line: 2, fields: []string{"IT1", "", "Shirt", ""}},
				{line: 5, fields: []string{"IT2", "", "Shoe", ""}},
			},
		},
		{
			name: "empty root",
			in:   `<Items/>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := format.NewXMLReader(strings.NewReader(tt.in), "Items", "Item", itemColumns)
			if !reflect.DeepEqual(r.Header(), itemColumns) {
				t.Fatalf("Header() = %q, want %q", r.Header(), itemColumns)
			}
			rows, err := readAll(t, r)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			checkRows(t, rows, tt.rows)
			if !reflect.DeepEqual(r.Warnings(), tt.warnings) {
				t.Errorf("Warnings() = %q, want %q", r.Warnings(), tt.warnings)
			}
		})
	}
}

func TestXMLReaderFileErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		goodRows int      // rows returned before the error
		isEmpty  bool     // errors.Is(err, format.ErrEmpty)
		wantErr  []string // substrings of the error
	}{
		{name: "empty file", in: "", isEmpty: true},
		{name: "only whitespace and a declaration", in: "<?xml version=\"1.0\"?>\n\n", isEmpty: true},
		{name: "wrong root element", in: "<Vendors>\n<Vendor vendor=\"V1\"/></Vendors>",
			wantErr: []string{"line 1:", "root element is <Vendors>, want <Items>"}},
		{name: "truncated after a record", in: "<Items>\n<Item item=\"IT1\"/>\n",
			goodRows: 1, wantErr: []string{"line 3:", "truncated"}},
		{name: "truncated inside a record", in: "<Items>\n<Item item=\"IT1\"/>\n<Item item=\"IT2\">\n<sku>RE",
			goodRows: 1, wantErr: []string{"line 4:", "truncated"}},
		{name: "mismatched end tag", in: "<Items>\n<Item item=\"IT1\">\n</Items>",
			wantErr: []string{"line 3:", "malformed XML"}},
		{name: "unescaped ampersand", in: "<Items>\n<Item item=\"IT1\"/>\n<Item item=\"A&B\"/>\n</Items>",
			goodRows: 1, wantErr: []string{"line 3:", "malformed XML"}},
		{name: "unknown entity in text", in: "<Items>\n<Item><description>&nbsp;</description></Item>\n</Items>",
			wantErr: []string{"line 2:", "&nbsp;"}},
		{name: "content after the root", in: "<Items><Item item=\"IT1\"/></Items>\n<Items/>",
			goodRows: 1, wantErr: []string{"content after the </Items> end tag"}},
		{name: "undeclared encoding", in: "<?xml version=\"1.0\" encoding=\"EBCDIC\"?><Items/>",
			wantErr: []string{"line 1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := format.NewXMLReader(strings.NewReader(tt.in), "Items", "Item", itemColumns)
			rows, err := readAll(t, r)
			if err == nil {
				t.Fatalf("read %d rows and no error, want an error", len(rows))
			}
			if len(rows) != tt.goodRows {
				t.Errorf("got %d rows before the error, want %d", len(rows), tt.goodRows)
			}
			if tt.isEmpty != errors.Is(err, format.ErrEmpty) {
				t.Fatalf("error %v: errors.Is(err, ErrEmpty) = %v, want %v", err, !tt.isEmpty, tt.isEmpty)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// billionLaughs is the classic entity expansion attack: &lol9; expands to
// 10^9 "lol"s when a parser processes the DTD.
func billionLaughs(useInText bool) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<!DOCTYPE Items [\n  <!ENTITY lol \"lol\">\n")
	for i := 1; i <= 9; i++ {
		prev := "lol"
		if i > 1 {
			prev = fmt.Sprintf("lol%d", i-1)
		}
		fmt.Fprintf(&b, "  <!ENTITY lol%d \"%s\">\n", i, strings.Repeat("&"+prev+";", 10))
	}
	b.WriteString("]>\n<Items>\n")
	if useInText {
		b.WriteString("<Item item=\"IT1\"><description>&lol9;</description></Item>\n")
	} else {
		b.WriteString("<Item item=\"IT1\" description=\"&lol9;\"/>\n")
	}
	b.WriteString("</Items>\n")
	return b.String()
}

func TestXMLReaderRefusesCustomEntities(t *testing.T) {
	for _, inText := range []bool{false, true} {
		t.Run(fmt.Sprintf("entity in text=%v", inText), func(t *testing.T) {
			start := time.Now()
			r := format.NewXMLReader(strings.NewReader(billionLaughs(inText)), "Items", "Item", itemColumns)
			rows, err := readAll(t, r)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("took %v, want the file refused at once", elapsed)
			}
			if err == nil {
				t.Fatalf("read %d rows (%+v), want an error for the custom entity", len(rows), rows)
			}
			if len(rows) != 0 {
				t.Errorf("got %d rows before the error, want none", len(rows))
			}
			if !strings.Contains(err.Error(), "&lol9;") || !strings.Contains(err.Error(), "line 15:") {
				t.Errorf("error %q, want it to name the entity &lol9; and line 15", err)
			}
		})
	}
}
