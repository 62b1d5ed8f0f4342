package stores

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
)

// Kind is the file ledger kind of store uploads.
const Kind = "stores"

// Result is what a store upload did: the counts of every import, and what
// became of the stores of the applied records.
type Result struct {
	imports.Result
	Added     int64 `json:"added"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
}

// ImportStores applies a store upload file as imports.ImportTransactions
// applies inventory transactions: the file's sha256 keeps the same content
// from being applied twice (unless o.Force), the valid records create or
// update stores and commit together with the file's ledger row, and the
// others go to the reject file with their line and the OMS messages. A
// store given twice in one file is rejected the second time. Problems with
// the file as a whole wrap imports.ErrFile, and nothing of it is applied.
func ImportStores(ctx context.Context, d *db.DB, path string, o imports.Options) (*Result, error) {
	out := &Result{}
	upload := imports.Upload{Kind: Kind, What: "stores",
		Open: func(f *os.File, path string, o *imports.Options) ([]string, func(*imports.Session) error, error) {
			src, err := newReader(f, path, o.Format)
			if err != nil {
				return nil, nil, err
			}
			return src.header(), func(s *imports.Session) error { return applyStores(s, src, path, out) }, nil
		}}
	res, err := imports.Run(ctx, d, upload, path, o)
	if res == nil {
		return nil, err
	}
	out.Result = *res
	if res.Applied == 0 {
		out.Added, out.Changed, out.Unchanged = 0, 0, 0
	}
	return out, err
}

// applyStores applies the records of src and counts what became of them.
func applyStores(s *imports.Session, src *reader, path string, out *Result) error {
	res := s.Result
	known := Warehouses(s.Ctx, s.Conn)
	firstLine := map[string]int{}
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for _, r := range batch {
			res.Read++
			what, err := apply(s.Ctx, s.Conn, r, known, firstLine)
			var invalid *InvalidError
			switch {
			case errors.As(err, &invalid):
				if err := s.Reject(r.line, invalid.Error(), r.raw); err != nil {
					return err
				}
				continue
			case err != nil:
				return db.Classify(err)
			}
			res.Applied++
			switch what {
			case added:
				out.Added++
			case changed:
				out.Changed++
			default:
				out.Unchanged++
			}
		}
	}
	for _, w := range src.warnings() {
		s.Opts.Warn(fmt.Sprintf("%s: %s", path, w))
	}
	return nil
}

// apply validates one record and saves its store. firstLine remembers the
// line of every store number seen: a later record of the same store is
// rejected, whether or not the first one was applied.
func apply(ctx context.Context, conn *sql.Conn, r row, known WarehouseExists, firstLine map[string]int) (change, error) {
	if r.err != nil {
		return 0, &InvalidError{Problems: []string{r.err.Error()}}
	}
	s, err := Check(r.rec, known)
	var invalid *InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return 0, err
	}
	if key := strings.TrimSpace(r.rec.Store); key != "" {
		if first, ok := firstLine[key]; ok {
			if invalid == nil {
				invalid = &InvalidError{}
			}
			invalid.Problems = append(invalid.Problems, fmt.Sprintf("Store # %s is given more than once in the file, first on line %d.", key, first))
		} else {
			firstLine[key] = r.line
		}
	}
	if invalid != nil {
		return 0, invalid
	}
	return save(ctx, conn, s)
}
