package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	res := &Result{Result: imports.Result{File: path, DryRun: o.DryRun}}
	sum, size, err := imports.FileSum(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	res.SHA256 = sum
	if !o.Force {
		if res.SameAs, err = imports.AppliedBefore(ctx, d, Kind, sum); err != nil || res.SameAs != "" {
			return res, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	src, err := newReader(f, path, o.Format)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	defer conn.Close()
	rj := imports.NewRejects(path, o.RejectsDir, src.header(), o.DryRun)
	defer rj.Discard()

	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	abs, _ := filepath.Abs(path)
	var runID any
	if o.RunID > 0 {
		runID = o.RunID
	}
	ins, err := conn.ExecContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, status, run_id, created_at)
VALUES ('in', ?, ?, ?, ?, ?, 'importing', ?, ?)`, Kind, filepath.Base(path), abs, sum, size, runID, db.Now())
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	fileID, _ := ins.LastInsertId()
	// The records are applied under a savepoint: a file that applies
	// nothing still leaves its ledger row.
	if _, err := conn.ExecContext(ctx, "SAVEPOINT work"); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	known := Warehouses(ctx, conn)
	firstLine := map[string]int{}
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, r := range batch {
			res.Read++
			what, err := apply(ctx, conn, r, known, firstLine)
			var invalid *InvalidError
			switch {
			case errors.As(err, &invalid):
				res.Rejected++
				if err := rj.Add(r.line, invalid.Error(), r.raw); err != nil {
					return nil, err
				}
				continue
			case err != nil:
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			res.Applied++
			switch what {
			case added:
				res.Added++
			case changed:
				res.Changed++
			default:
				res.Unchanged++
			}
		}
	}
	for _, w := range src.warnings() {
		o.Warn(fmt.Sprintf("%s: %s", path, w))
	}
	if res.Read == 0 {
		return nil, fmt.Errorf("%s: %w: no stores in the file", path, imports.ErrFile)
	}
	status := imports.StatusApplied
	switch {
	case res.Applied == 0 || (o.AllOrNothing && res.Rejected > 0):
		status = imports.StatusRejected
		res.RolledBack = o.AllOrNothing && res.Rejected > 0
		// Nothing of it stays but its ledger row.
		if _, err := conn.ExecContext(ctx, "ROLLBACK TO work"); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
		}
		res.Applied, res.Added, res.Changed, res.Unchanged = 0, 0, 0, 0
	case res.Rejected > 0:
		status = imports.StatusPartial
	}
	if _, err := conn.ExecContext(ctx, `UPDATE files SET status = ?, records = ?, rejected = ? WHERE id = ?`,
		status, res.Read, res.Rejected, fileID); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	end := "COMMIT"
	if o.DryRun {
		end = "ROLLBACK"
	}
	if _, err := conn.ExecContext(ctx, end); err != nil {
		return nil, fmt.Errorf("import %s: %s: %w", path, strings.ToLower(end), db.Classify(err))
	}
	done = true
	if res.RejectsFile, err = rj.Finish(); err != nil {
		return res, err
	}
	return res, nil
}

// apply validates one record and saves its store. firstLine remembers the
// line of every store number seen: a later record of the same store is
// rejected, whether or not the first one was applied.
func apply(ctx context.Context, q Querier, r row, known WarehouseExists, firstLine map[string]int) (change, error) {
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
	return save(ctx, q, s)
}
