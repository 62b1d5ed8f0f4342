package imports

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/posbridge/posbridge/internal/format"
)

// record is one transaction as read, before validation.
type record struct {
	line int
	raw  []string // fields in file order (CSV) or txnColumns order (XML)
	row  txnRow
	err  error // the record could not be read into fields
}

// source yields the records of a file in order; header names the columns
// of record.raw.
type source interface {
	header() []string
	next() ([]record, error) // a batch; io.EOF at the end
	warnings() []string
	// codes is the code table of the file's dialect.
	codes(o *Options) map[string]string
}

// ErrFile wraps problems with a file as a whole: nothing of it is applied.
var ErrFile = errors.New("file rejected")

// openSource picks the reader by --format or the file name.
func openSource(r io.Reader, path, kind string) (source, error) {
	kind, err := format.Detect(path, kind)
	if err != nil {
		return nil, err
	}
	if kind == format.CSV {
		return newCSVSource(r)
	}
	return newXMLSource(r), nil
}

type csvSource struct {
	rr    format.RowReader
	notes []string
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	rr, err := format.NewCSVReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFile, err)
	}
	s := &csvSource{rr: rr}
	known := map[string]bool{}
	for _, c := range txnColumns {
		known[c] = true
	}
	present := map[string]bool{}
	for _, h := range rr.Header() {
		present[h] = true
		if !known[h] {
			s.notes = append(s.notes, fmt.Sprintf("ignoring unknown column %q", h))
		}
	}
	var missing []string
	for _, c := range txnRequired {
		if !present[c] {
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if !present["item"] && !present["upc"] && !present["retail_ref"] {
		missing = append(missing, `"item" (or "upc" or "retail_ref")`)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: line 1: missing required column %s", ErrFile, strings.Join(missing, ", "))
	}
	return s, nil
}

func (s *csvSource) header() []string                   { return s.rr.Header() }
func (s *csvSource) warnings() []string                 { return s.notes }
func (s *csvSource) codes(o *Options) map[string]string { return o.codes() }

const batchSize = 256

func (s *csvSource) next() ([]record, error) {
	batch, err := format.NextBatch[txnRow](s.rr, batchSize)
	if err != nil {
		return nil, err
	}
	out := make([]record, len(batch))
	for i, r := range batch {
		out[i] = record{line: r.Line, raw: r.Raw, row: r.Rec, err: r.Err}
	}
	return out, nil
}

// The OMS inventory transaction upload: any root, one or many Message
// elements, each with one or many InventoryTransaction elements.
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

type xmlSource struct {
	d     *xml.Decoder
	notes []string
	seen  bool
}

func newXMLSource(r io.Reader) *xmlSource {
	return &xmlSource{d: format.NewXMLDecoder(r)}
}

func (s *xmlSource) header() []string                   { return txnColumns }
func (s *xmlSource) warnings() []string                 { return s.notes }
func (s *xmlSource) codes(o *Options) map[string]string { return oracleCodes(o) }

func (s *xmlSource) next() ([]record, error) {
	var out []record
	for len(out) < batchSize {
		line, _ := s.d.InputPos()
		tok, err := s.d.Token()
		if errors.Is(err, io.EOF) {
			if !s.seen {
				return nil, fmt.Errorf("%w: no InventoryTransaction element in the file", ErrFile)
			}
			if len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, format.XMLError(s.d, err, "root"))
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "InventoryTransaction" {
			continue
		}
		s.seen = true
		var x xmlTxn
		if err := s.d.DecodeElement(&x, &se); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, format.XMLError(s.d, err, "root"))
		}
		r := txnRow{Code: x.Code, Item: x.From.Item, SKU: x.From.SKU, UPC: x.From.UPC, RetailRef: x.From.RetailRef,
			Warehouse: x.From.Warehouse, Location: x.From.Location, Quantity: x.Quantity, Reason: x.Reason,
			Reference: or(x.Ident, x.Batch), User: x.User}
		if x.To != nil {
			r.ToItem, r.ToSKU, r.ToWarehouse, r.ToLocation = x.To.Item, x.To.SKU, x.To.Warehouse, x.To.Location
		}
		out = append(out, record{line: line, raw: r.values(), row: r})
	}
	return out, nil
}
