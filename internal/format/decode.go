package format

import "github.com/gocarina/gocsv"

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
