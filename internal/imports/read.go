package imports

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
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
	// next returns a batch, or io.EOF at the end. The batch may be the
	// slice of the one before, refilled: it is the caller's until the next
	// call.
	next() ([]record, error)
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
	// at is the position in the file's records of each of txnColumns, or
	// -1 for a column the file lacks (that field stays empty).
	at [len(txnColumns)]int
	// batch is the slice next fills again each time: a new one per batch
	// was a sixth of what an import allocated.
	batch []record
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	rr, err := format.NewCSVReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFile, err)
	}
	s := &csvSource{rr: rr}
	present := map[string]bool{}
	for _, h := range rr.Header() {
		present[h] = true
		if !slices.Contains(txnColumns[:], h) {
			s.notes = append(s.notes, fmt.Sprintf("ignoring unknown column %q", h))
		}
	}
	for i, c := range txnColumns {
		s.at[i] = slices.Index(rr.Header(), c)
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

// next maps the fields of each record onto a txnRow by the columns of the
// header, found once (gocsv's reflection per record was a tenth of an
// import's CPU).
func (s *csvSource) next() ([]record, error) {
	if s.batch == nil {
		s.batch = make([]record, 0, batchSize)
	}
	out := s.batch[:0]
	for len(out) < batchSize {
		row, err := s.rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		r := record{line: row.Line, raw: row.Fields, err: row.Err}
		if row.Err == nil {
			fields := r.row.fields()
			for i, at := range s.at {
				if at >= 0 {
					*fields[i] = row.Fields[at]
				}
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

// The OMS inventory transaction upload: any root, one or many Message
// elements, each with one or many InventoryTransaction elements, whose
// attributes are the transaction's and whose Transaction and TransactionTo
// children are its two sides. Attributes and elements are matched by local
// name; of an attribute given twice the last counts, and a side given
// twice is the attributes of both, the later ones counting (as
// xml.Decoder.DecodeElement into tagged structs read it). An xmlScanner
// reads the file until it meets what it leaves to encoding/xml.

// transaction reads the rest of the InventoryTransaction element that se
// starts.
func (s *xmlSource) transaction(se xml.StartElement) (txnRow, error) {
	var b xmlTxnBuilder
	for _, a := range se.Attr {
		if p := b.txnField(a.Name.Local); p != nil {
			*p = a.Value
		}
	}
	for {
		tok, err := s.d.Token()
		if err != nil {
			return txnRow{}, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return b.done(), nil
		case xml.StartElement:
			for _, a := range t.Attr {
				if p := b.sideField(t.Name.Local, a.Name.Local); p != nil {
					*p = a.Value
				}
			}
			if err := s.d.Skip(); err != nil {
				return txnRow{}, err
			}
		}
	}
}

type xmlSource struct {
	// scan reads the file until it stops at a construct it leaves to
	// encoding/xml; then d reads the rest.
	scan  *xmlScanner
	d     *xml.Decoder
	notes []string
	seen  bool
}

func newXMLSource(r io.Reader) *xmlSource {
	return &xmlSource{scan: newXMLScanner(r)}
}

func (s *xmlSource) header() []string                   { return txnColumns[:] }
func (s *xmlSource) warnings() []string                 { return s.notes }
func (s *xmlSource) codes(o *Options) map[string]string { return oracleCodes(o) }

func (s *xmlSource) next() ([]record, error) {
	var out []record
	for s.scan != nil && len(out) < batchSize {
		r, err := s.scan.next()
		switch {
		case errors.Is(err, errUnusual):
			s.d = format.NewXMLDecoder(s.scan.rest())
			s.scan = nil
		case errors.Is(err, io.EOF):
			return s.end(out)
		case err != nil:
			return nil, fmt.Errorf("%w: %v", ErrFile, err)
		default:
			s.seen = true
			out = append(out, r)
		}
	}
	for len(out) < batchSize {
		line, _ := s.d.InputPos()
		tok, err := s.d.Token()
		if errors.Is(err, io.EOF) {
			return s.end(out)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, format.XMLError(s.d, err, "root"))
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "InventoryTransaction" {
			continue
		}
		s.seen = true
		r, err := s.transaction(se)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, format.XMLError(s.d, err, "root"))
		}
		out = append(out, record{line: line, raw: r.values(), row: r})
	}
	return out, nil
}

// end returns the last records at the end of the file.
func (s *xmlSource) end(out []record) ([]record, error) {
	if !s.seen {
		return nil, fmt.Errorf("%w: no InventoryTransaction element in the file", ErrFile)
	}
	if len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}
