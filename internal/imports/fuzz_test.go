package imports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/format"
)

// Fuzz targets for the two inventory transaction readers: whatever the
// input, openSource and next never panic and always end; every record has
// one field per header column (CSV records that could not be split carry
// an error instead), XML records carry the fields of txnColumns and the
// row they came from, lines never go backwards; and the record checks
// never pass a quantity the code forbids.
//
//	go test ./internal/imports -run '^$' -fuzz '^FuzzTxnCSV$' -fuzztime 10s
//	go test ./internal/imports -run '^$' -fuzz '^FuzzTxnXML$' -fuzztime 10s

// fuzzSeeds adds the bad-input files of testdata/bad whose names end in
// ext, and the given strings.
func fuzzSeeds(f *testing.F, ext string, extra ...string) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "txn-*"+ext))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// checkSource drains a source and checks the invariants.
func checkSource(t *testing.T, src source, inputLen int, isXML bool) {
	t.Helper()
	header := src.header()
	codes := (&Options{Codes: map[string]string{"CNT": "O"}}).codes()
	last, n := 0, 0
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if isXML && !errors.Is(err, ErrFile) {
				t.Fatalf("an XML error that is not a file error: %v", err)
			}
			return
		}
		if len(batch) == 0 {
			t.Fatal("next returned an empty batch without io.EOF")
		}
		for _, r := range batch {
			n++
			// Every record consumes input: more records than bytes means
			// the reader is stuck.
			if n > inputLen+1 {
				t.Fatalf("more records than the %d input bytes", inputLen)
			}
			if r.line < 1 || r.line < last {
				t.Fatalf("record %d on line %d after line %d", n, r.line, last)
			}
			last = r.line
			if r.err != nil {
				if isXML {
					t.Fatalf("XML record with an error: %v", r.err)
				}
				continue
			}
			if len(r.raw) != len(header) {
				t.Fatalf("line %d: %d fields %q, header has %d %q", r.line, len(r.raw), r.raw, len(header), header)
			}
			if isXML && !reflect.DeepEqual(r.raw, r.row.values()) {
				t.Fatalf("line %d: raw %q is not the row %q", r.line, r.raw, r.row.values())
			}
			tx, err := check(r.line, r.raw, r.row, codes, 1000)
			if err != nil {
				continue
			}
			switch tx.effect {
			case EffectAdjust:
				if tx.qty == 0 {
					t.Fatalf("line %d: an adjustment of 0 passed", r.line)
				}
			case EffectOverlay:
				if tx.qty < 0 {
					t.Fatalf("line %d: a negative count passed", r.line)
				}
			case EffectTransfer, EffectItem, EffectReturn, EffectNegative, EffectReceipt, EffectSale:
				if tx.qty <= 0 {
					t.Fatalf("line %d: quantity %d passed for %s", r.line, tx.qty, tx.code)
				}
			default:
				t.Fatalf("line %d: code %q passed with effect %q", r.line, tx.code, tx.effect)
			}
			if tx.row.Warehouse == "" || (tx.row.Item == "" && tx.row.UPC == "" && tx.row.RetailRef == "") {
				t.Fatalf("line %d: a record without warehouse or item passed: %+v", r.line, tx.row)
			}
			if format.CheckQuantity(tx.qty) != nil {
				t.Fatalf("line %d: quantity %d beyond the range passed", r.line, tx.qty)
			}
			for i, v := range tx.row.values() {
				if err := format.CheckText(v, 1000); err != nil {
					t.Fatalf("line %d: field %s %v, yet passed", r.line, txnColumns[i], err)
				}
			}
		}
	}
}

func FuzzTxnCSV(f *testing.F) {
	fuzzSeeds(f, ".csv",
		txnHead+"R,IT1,S1,DC1,L1,5\n",
		"transaction_code,item,sku,upc,retail_ref,warehouse,location,quantity,to_item,to_sku,to_warehouse,to_location,reason,reference,transaction_date,user\n"+
			"T,IT1,S1,,,DC1,L1,2,,,DC2,L2,r,ref,2026-01-02,u\nG,IT1,S1,,,DC1,L1,2,IT2,,,,,,,\nCNT,,,123,,DC1,,0,,,,,,,,\n",
		"\xef\xbb\xbfQUANTITY,Warehouse,transaction_code,retail_ref\r\n1,DC1,A,R1\r\n-1,DC1,a,\"R\n2\"\r\n",
		txnHead+"A,IT1,S1,DC1,L1,-0\nO,IT1,S1,DC1,L1,+0\nP,IT1,S1,DC1,L1,9223372036854775807\n",
		txnHead+"A,\"IT1\nx\",S1,DC1\nA,IT1,\"S1,DC1,L1,1\n",
		"transaction_code,warehouse,quantity,upc,upc\n",
		txnHead,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := openSource(bytes.NewReader(data), "fuzz.csv", "auto")
		if err != nil {
			return
		}
		checkSource(t, src, len(data), false)
	})
}

func FuzzTxnXML(f *testing.F) {
	fuzzSeeds(f, ".xml",
		`<Message><InventoryTransaction transaction_code="A" transaction_quantity="1"><Transaction item_number="IT1" warehouse="DC1"/></InventoryTransaction></Message>`,
		`<R><Message><InventoryTransaction identification_nbr="1" transaction_code="T" transaction_quantity="2"><Transaction item_number="IT1" sku_code="S" warehouse="DC1" location="L"/><TransactionTo warehouse="DC2"/></InventoryTransaction><InventoryTransaction transaction_code="G" transaction_quantity="2"><Transaction upc_code="1" warehouse="DC1"/><TransactionTo item_number="IT2"/></InventoryTransaction></Message><Message/></R>`,
		`<InventoryTransaction transaction_code="O" transaction_quantity="-1"><Transaction retail_reference_nbr="9" warehouse="W"/><Transaction warehouse="X"/></InventoryTransaction>`,
		`<M><InventoryTransaction><InventoryTransaction transaction_code="P"/></InventoryTransaction></M>`,
		`<M><InventoryTransaction transaction_code="&amp;&#65;" transaction_quantity="&#x31;"><Transaction item_number="&lt;" warehouse="&gt;"/></InventoryTransaction></M>`,
		"<?xml version=\"1.0\"?>\n<!-- c --><?pi x?><M><![CDATA[x]]><InventoryTransaction/></M>",
		strings.Repeat("<a>", 100),
		`<M><InventoryTransaction transaction_code="A" transaction_code="O" x:batch_number="B"><Transaction item_number="I" warehouse="W"><Transaction sku_code="S"/></Transaction>`+
			`<Transaction location="L"/><TransactionTo location="L1"/><TransactionTo warehouse="W2" upc_code="U"/>text<Other item_number="X"/></InventoryTransaction></M>`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := openSource(bytes.NewReader(data), "fuzz.xml", "auto")
		if err != nil {
			t.Fatalf("openSource of XML failed before reading: %v", err)
		}
		checkSource(t, src, len(data), true)

		sameAsDecodeElement(t, data)
	})
}

// sameAsDecodeElement checks that the XML reader returns the records, the
// lines and the error of decoding each InventoryTransaction element of
// data into tagged structs with encoding/xml alone.
func sameAsDecodeElement(t *testing.T, data []byte) {
	t.Helper()
	src, _ := openSource(bytes.NewReader(data), "fuzz.xml", "auto")
	var got []record
	for {
		batch, err := src.next()
		got = append(got, batch...)
		if err == nil {
			continue
		}
		want, lines, wantErr := decodeElementRows(data)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("error %v, DecodeElement's %v", err, wantErr)
		}
		if len(got) != len(want) && wantErr == nil {
			t.Fatalf("%d records, DecodeElement %d", len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if got[i].row != want[i] || got[i].line != lines[i] {
				t.Fatalf("record %d on line %d: %+v, DecodeElement's on line %d: %+v", i, got[i].line, got[i].row, lines[i], want[i])
			}
		}
		return
	}
}

// decodeElementRows reads the OMS XML upload as the reader did before it
// read the attributes from the tokens: each InventoryTransaction element
// decoded into tagged structs, with the line each starts on and the error
// that fails the file.
func decodeElementRows(data []byte) (rows []txnRow, lines []int, err error) {
	type xmlSide struct {
		Item      string `xml:"item_number,attr"`
		SKU       string `xml:"sku_code,attr"`
		RetailRef string `xml:"retail_reference_nbr,attr"`
		UPC       string `xml:"upc_code,attr"`
		Warehouse string `xml:"warehouse,attr"`
		Location  string `xml:"location,attr"`
	}
	type xmlTxn struct {
		Batch    string   `xml:"batch_number,attr"`
		Ident    string   `xml:"identification_nbr,attr"`
		Code     string   `xml:"transaction_code,attr"`
		Reason   string   `xml:"transaction_reason,attr"`
		Quantity string   `xml:"transaction_quantity,attr"`
		User     string   `xml:"entered_by_user,attr"`
		From     xmlSide  `xml:"Transaction"`
		To       *xmlSide `xml:"TransactionTo"`
	}
	d := format.NewXMLDecoder(bytes.NewReader(data))
	seen := false
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) && !seen {
			return rows, lines, fmt.Errorf("%w: no InventoryTransaction element in the file", ErrFile)
		}
		if errors.Is(err, io.EOF) {
			return rows, lines, nil
		}
		if err != nil {
			return rows, lines, fmt.Errorf("%w: %v", ErrFile, format.XMLError(d, err, "root"))
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "InventoryTransaction" {
			continue
		}
		seen = true
		var x xmlTxn
		if err := d.DecodeElement(&x, &se); err != nil {
			return rows, lines, fmt.Errorf("%w: %v", ErrFile, format.XMLError(d, err, "root"))
		}
		r := txnRow{Code: x.Code, Item: x.From.Item, SKU: x.From.SKU, UPC: x.From.UPC, RetailRef: x.From.RetailRef,
			Warehouse: x.From.Warehouse, Location: x.From.Location, Quantity: x.Quantity, Reason: x.Reason,
			Reference: x.Ident, User: x.User}
		if r.Reference == "" {
			r.Reference = x.Batch
		}
		if x.To != nil {
			r.ToItem, r.ToSKU, r.ToWarehouse, r.ToLocation = x.To.Item, x.To.SKU, x.To.Warehouse, x.To.Location
		}
		rows = append(rows, r)
		lines = append(lines, line)
	}
}

// FuzzEachJSON feeds partner JSON uploads (orders, returns, WMS events)
// to the shared reader: it never panics, hands fn only whole JSON values
// (an element of an array that is not an object is the caller's to
// reject, with its line), numbered from 1 with a line within the file,
// and any failure of the file is an ErrFile.
func FuzzEachJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a": 1}`,
		`[{"a": 1}, {"b": "x"}]`,
		"{\"a\": 1}\n{\"a\": 2}\n",
		"\xef\xbb\xbf[]",
		`[{"a": 1},`,
		`{"a": 1, "A": {"b": [{"c": 1, "c": 2}]}}`,
		`"text"`,
		``,
		"[{\"a\":\n1}]\n]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		want := 1
		err := EachJSON(bytes.NewReader(data), "things", func(n, line int, raw json.RawMessage) error {
			if n != want {
				t.Fatalf("object %d handed as number %d", want, n)
			}
			want++
			if line < 1 || line > lines {
				t.Fatalf("object %d on line %d of a %d-line file", n, line, lines)
			}
			if !json.Valid(raw) {
				t.Fatalf("value %d is not whole JSON: %q", n, raw)
			}
			if CheckKeys(raw) == nil && foldedTwice(raw) {
				t.Fatalf("CheckKeys passed %q, which gives a key twice", raw)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrFile) {
			t.Fatalf("%q: error %v is not ErrFile", data, err)
		}
	})
}

// foldedTwice says, independently of CheckKeys, whether an object in
// the JSON value raw has two keys equal in any letter case, by decoding
// each object as a list of its keys.
func foldedTwice(raw json.RawMessage) bool {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	var objects func(json.RawMessage) bool
	objects = func(r json.RawMessage) bool {
		var arr []json.RawMessage
		if json.Unmarshal(r, &arr) == nil {
			for _, e := range arr {
				if objects(e) {
					return true
				}
			}
			return false
		}
		dec := json.NewDecoder(bytes.NewReader(r))
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return false
		}
		var seen []string
		for dec.More() {
			t, _ := dec.Token()
			k := t.(string)
			for _, s := range seen {
				if strings.EqualFold(s, k) {
					return true
				}
			}
			seen = append(seen, k)
			var val json.RawMessage
			if dec.Decode(&val) != nil || objects(val) {
				return true
			}
		}
		return false
	}
	return objects(raw)
}

// TestXMLScannerHandsOver: wherever in the file the scanner meets what it
// leaves to encoding/xml (at the start, between records, inside a record,
// at a truncation), the records, their lines and the file's error are
// those of encoding/xml alone.
func TestXMLScannerHandsOver(t *testing.T) {
	rec := func(id string) string {
		return "  <InventoryTransaction identification_nbr=\"" + id + "\" transaction_code=\"A\"\n   transaction_quantity=\"1\">\n" +
			"    <Transaction item_number=\"IT1\" warehouse=\"W\"/>\n  </InventoryTransaction>\n"
	}
	head := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Batch>\n<Message a='1'\n b=\"2\">\n" + rec("1") + rec("2")
	tail := rec("9") + "</Message>\n</Batch>\n"
	for name, in := range map[string]string{
		"plain":            head + tail,
		"doctype":          "<!DOCTYPE Batch>\n" + head + tail,
		"latin-1":          "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Batch/>",
		"cdata between":    head + "<![CDATA[x]]>\n" + tail,
		"text in record":   head + "<InventoryTransaction transaction_code=\"S\">text<Transaction warehouse=\"W\"/></InventoryTransaction>\n" + tail,
		"char reference":   head + "<InventoryTransaction transaction_code=\"&#65;\" transaction_quantity=\"2\"><Transaction item_number=\"I&amp;T\" warehouse=\"W\"/></InventoryTransaction>\n" + tail,
		"in a child":       head + "<InventoryTransaction transaction_code=\"S\">\n<Transaction\nwarehouse=\"W\r\nX\"/></InventoryTransaction>\n" + tail,
		"namespace":        head + "<x:Other xmlns:x=\"u\"><InventoryTransaction transaction_code=\"S\"/></x:Other>\n" + tail,
		"mismatched end":   head + "<InventoryTransaction>\n</Inventory>\n" + tail,
		"truncated":        head + "<InventoryTransaction transaction_code=\"S\">\n<Transaction",
		"truncated at end": head + rec("3"),
		"bad utf-8":        head + "<InventoryTransaction transaction_reason=\"\xe9\"/>\n" + tail,
		"double dash":      head + "<!-- a -- b -->\n" + tail,
		"nested":           head + "<InventoryTransaction transaction_code=\"S\"><InventoryTransaction transaction_code=\"O\"/></InventoryTransaction>\n" + tail,
		"no transaction":   "<Batch>\n<Message/>\n</Batch>\n",
		"not xml":          "transaction_code,warehouse\nA,W\n",
	} {
		t.Run(name, func(t *testing.T) { sameAsDecodeElement(t, []byte(in)) })
		// bufio's smallest buffer: each construct is met across the end
		// of one (the scanner reads runs of bytes a buffer at a time).
		t.Run(name+"/small buffer", func(t *testing.T) {
			defer func(n int) { xmlScanBuffer = n }(xmlScanBuffer)
			xmlScanBuffer = 16
			sameAsDecodeElement(t, []byte(in))
		})
	}
	// The file as senders write it is read by the scanner to its end.
	src := newXMLSource(strings.NewReader(head + tail))
	for n := 0; ; n++ {
		if _, err := src.next(); err != nil {
			if !errors.Is(err, io.EOF) || src.scan == nil || n != 1 {
				t.Fatalf("after %d batches: %v, scanner still reading: %v", n, err, src.scan != nil)
			}
			break
		}
	}
}
