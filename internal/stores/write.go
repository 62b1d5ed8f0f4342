package stores

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
)

// Export writes every store in the form of the upload, csv or xml, so an
// exported file can be imported again unchanged. A CSV file is meant for
// spreadsheets: guard (csv.formula_guard) quotes the cells a spreadsheet
// would run as formulas, which the upload reads back as they were. It
// returns the number of stores written.
func Export(ctx context.Context, q db.Querier, w io.Writer, kind string, guard bool) (int, error) {
	var put func(Record) error
	var end func() error
	switch kind {
	case "csv":
		cw := format.NewCSVWriter(w, guard)
		if err := cw.Write(Columns); err != nil {
			return 0, err
		}
		put = func(r Record) error { return cw.Write(r.Values()) }
		end = func() error { cw.Flush(); return cw.Error() }
	case "xml":
		if _, err := io.WriteString(w, xml.Header+"<Stores>\n"); err != nil {
			return 0, err
		}
		put = func(r Record) error { return writeXML(w, r) }
		end = func() error { _, err := io.WriteString(w, "</Stores>\n"); return err }
	default:
		return 0, fmt.Errorf("unknown format %q: want csv or xml", kind)
	}
	n := 0
	err := List(ctx, q, false, func(s Store) error {
		n++
		return put(s.Record())
	})
	if err != nil {
		return n, err
	}
	return n, end()
}

// writeXML writes one <Store> element with an attribute per field that is
// not empty (the flags are never empty).
func writeXML(w io.Writer, r Record) error {
	var b strings.Builder
	b.WriteString("  <Store")
	for i, v := range r.Values() {
		if v == "" {
			continue
		}
		fmt.Fprintf(&b, " %s=\"", Columns[i])
		// EscapeText also escapes tabs and line ends, so attribute values
		// keep them.
		xml.EscapeText(&b, []byte(v))
		b.WriteByte('"')
	}
	b.WriteString("/>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
