package format

import (
	"errors"
	"fmt"
	"io"

	"github.com/gocarina/gocsv"
)

// DecodeRows maps a batch of rows, in the order of header, onto out, a
// pointer to a slice of structs whose csv tags name the columns (gocsv).
// Columns without a field are ignored; fields without a column stay empty.
func DecodeRows(header []string, rows []Row, out any) error {
	all := make([][]string, 0, len(rows)+1)
	all = append(all, header)
	for _, r := range rows {
		all = append(all, r.Fields)
	}
	return gocsv.UnmarshalDecoder(batch(all), out)
}

// batch hands gocsv a header and rows already read.
type batch [][]string

func (b batch) GetCSVRows() ([][]string, error) { return b, nil }

// Record is one row of a batch read by NextBatch, mapped onto T.
type Record[T any] struct {
	Line int
	Raw  []string // the fields as read, in the reader's header order
	Rec  T
	Err  error // the row could not be split into fields; Rec is empty
}

// NextBatch reads up to n rows of rr and maps those that split into fields
// onto T with DecodeRows. It returns io.EOF when no row is left.
func NextBatch[T any](rr RowReader, n int) ([]Record[T], error) {
	out := make([]Record[T], 0, n)
	var good []Row
	var at []int
	for len(out) < n {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Record[T]{Line: row.Line, Raw: row.Fields, Err: row.Err})
		if row.Err == nil {
			good = append(good, row)
			at = append(at, len(out)-1)
		}
	}
	if len(out) == 0 {
		return nil, io.EOF
	}
	if len(good) > 0 {
		var recs []T
		if err := DecodeRows(rr.Header(), good, &recs); err != nil {
			return nil, fmt.Errorf("decode rows: %w", err)
		}
		for i, j := range at {
			out[j].Rec = recs[i]
		}
	}
	return out, nil
}
