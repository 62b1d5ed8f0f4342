package format_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/posbridge/posbridge/internal/format"
)

// checkReader drains r and checks the invariants every reader keeps,
// whatever its input: it ends, row lines never go backwards, and a row
// without Err has exactly one field per header column.
func checkReader(t *testing.T, r format.RowReader, inputLen int) {
	t.Helper()
	header := r.Header()
	last := 0
	// Every row consumes at least one byte, so more rows than bytes means
	// the reader is stuck.
	for i := 0; i <= inputLen+1; i++ {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			return
		}
		if row.Line < 1 || row.Line < last {
			t.Fatalf("row %d has line %d after line %d", i, row.Line, last)
		}
		last = row.Line
		if row.Err == nil && len(row.Fields) != len(header) {
			t.Fatalf("line %d: %d fields %q without an error, header has %d columns %q",
				row.Line, len(row.Fields), row.Fields, len(header), header)
		}
	}
	t.Fatalf("reader returned more rows than the %d input bytes", inputLen)
}

func FuzzCSVReader(f *testing.F) {
	seeds := []string{
		"item,description\nIT1,Shirt\n",
		"\xEF\xBB\xBFitem,description\r\nIT1,Shirt\r\n",
		"item,description\n\"IT\n1\",\"a,\"\"b\"\"\"\n",
		"item,description,price\nIT1,Shirt\nIT2,Shoe,1,2\n",
		"item,description\nIT1,5\" screen\n",
		"item,description\nIT1,\"Shirt\n",
		"item,description\nIT1,\"x\"y\n",
		"item,Item\n",
		"item,,x\n",
		"",
		"\n\n",
		"a\n\x00\n\xff\xfe\n",
		"a;b\n1;2\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := format.NewCSVReader(bytes.NewReader(data))
		if err != nil {
			if r != nil {
				t.Fatalf("NewCSVReader returned a reader and the error %v", err)
			}
			return
		}
		if len(r.Header()) == 0 {
			t.Fatal("NewCSVReader succeeded with an empty header")
		}
		checkReader(t, r, len(data))
	})
}

func FuzzXMLReader(f *testing.F) {
	seeds := []string{
		`<Items><Item item="IT1" sku="RED" description="Shirt" price="1.00"/></Items>`,
		"<?xml version=\"1.0\"?>\n<Items>\n<Item item=\"IT1\"><sku>RED</sku><colour>x</colour></Item>\n</Items>\n",
		`<Items><Header><Item item="nested"/></Header><Item item="IT1"/></Items>`,
		`<Items><Item item="IT1"><description><b>bold</b> text</description></Item></Items>`,
		`<Vendors><Vendor vendor="V1"/></Vendors>`,
		"<Items>\n<Item item=\"IT1\"/>\n",
		`<Items><Item item="A&B"/></Items>`,
		`<!DOCTYPE Items [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]><Items><Item item="&b;"/></Items>`,
		`<Items></Items><Items/>`,
		`<Items/>`,
		"",
		"\xEF\xBB\xBF<Items><Item item=\"&#233;\"/></Items>",
		`<x:Items xmlns:x="urn:x"><x:Item x:item="IT1"/></x:Items>`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := format.NewXMLReader(bytes.NewReader(data), "Items", "Item", itemColumns)
		checkReader(t, r, len(data))
	})
}

// FuzzParseAmount checks that every amount ParseAmount accepts is written
// by FormatAmount in a form that reads back to the same value.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "0.0125", "-3", "+7.25", "99999999999999.9999", "-0", ".5", "5.", "1.23456", "abc", "", "-", "1e5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := format.ParseAmount(s)
		if err != nil {
			return
		}
		out := format.FormatAmount(v)
		back, err := format.ParseAmount(out)
		if err != nil {
			t.Fatalf("ParseAmount(%q) = %d, FormatAmount = %q, which does not parse: %v", s, v, out, err)
		}
		if back != v {
			t.Fatalf("ParseAmount(%q) = %d, FormatAmount = %q, which parses to %d", s, v, out, back)
		}
	})
}
