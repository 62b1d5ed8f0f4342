package stores

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
)

// row is one store record as read, before validation.
type row struct {
	line int
	raw  []string // the fields in the order of the reader's header
	rec  Record
	err  error // the record could not be split into fields
}

// reader yields the records of a store upload in batches.
type reader struct {
	rr    format.RowReader
	notes []string
}

// newReader opens a store upload: CSV with a header row, or XML whose
// <Stores> root holds <Store> elements with the CSV column names as
// attributes (or child elements). kind is auto (by the file name), csv or
// xml. Problems with the file as a whole wrap imports.ErrFile.
func newReader(r io.Reader, path, kind string) (*reader, error) {
	kind, err := format.Detect(path, kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case format.CSV:
		rr, err := format.NewCSVReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", imports.ErrFile, err)
		}
		var missing []string
		for _, c := range required {
			if !slices.Contains(rr.Header(), c) {
				missing = append(missing, fmt.Sprintf("%q", c))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: line 1: missing required column %s", imports.ErrFile, strings.Join(missing, ", "))
		}
		s := &reader{rr: rr}
		for _, h := range rr.Header() {
			if !slices.Contains(Columns, h) {
				s.notes = append(s.notes, fmt.Sprintf("ignoring unknown column %q", h))
			}
		}
		return s, nil
	default:
		return &reader{rr: format.NewXMLReader(r, "Stores", "Store", Columns)}, nil
	}
}

// header names the fields of row.raw.
func (s *reader) header() []string { return s.rr.Header() }

// warnings lists unknown columns, fields and elements seen so far.
func (s *reader) warnings() []string { return append(s.notes, s.rr.Warnings()...) }

const batchSize = 256

// next returns the next batch of records, or io.EOF after the last.
func (s *reader) next() ([]row, error) {
	batch, err := format.NextBatch[Record](s.rr, batchSize)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", imports.ErrFile, err)
	}
	out := make([]row, len(batch))
	for i, r := range batch {
		out[i] = row{line: r.Line, raw: r.Raw, rec: r.Rec, err: r.Err}
	}
	return out, nil
}
