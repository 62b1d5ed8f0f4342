package export

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
)

// MassCustomers writes the mass customer download: every live sold-to
// customer whose class is in o.Classes, action A, in one file of kind
// mass_customers. It touches no trigger.
func MassCustomers(ctx context.Context, d *db.DB, o Options) (*Result, error) {
	k := massCustomers
	if len(o.Classes) == 0 {
		return nil, errors.New("export mass-customers: no customer classes given")
	}
	o.defaults(k)
	conn, res, end, err := begin(ctx, d, k, &o)
	if err != nil {
		return res, err
	}
	defer end()
	in := "?" + strings.Repeat(", ?", len(o.Classes)-1)
	args := make([]any, len(o.Classes))
	for i, c := range o.Classes {
		args[i] = c
	}
	where := `FROM customers c WHERE c.deleted_at IS NULL AND c.customer_class IN (` + in + `)`
	var records int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) `+where, args...).Scan(&records); err != nil {
		return res, db.Classify(err)
	}
	if records == 0 {
		return res, nil
	}
	if o.DryRun {
		var next int64
		conn.QueryRowContext(ctx, `SELECT coalesce((SELECT last FROM sequences WHERE kind = ?), 0) + 1`, k.name).Scan(&next)
		name := fileName(k.name, time.Now().UTC(), next, o.Format)
		path, _ := filepath.Abs(filepath.Join(o.Dir, name))
		res.Files = append(res.Files, File{Name: name, Path: path, Records: records})
		res.ReadyRecords = records
		return res, nil
	}
	if err := prepareDir(k, o.Dir); err != nil {
		return res, err
	}
	f, fileID, err := startFile(ctx, conn, k, &o, nil)
	if err != nil {
		return res, err
	}
	f.Records = records
	w, err := writeFile(k, &o, f.Path, records, func(emit func(node) error) error {
		return flatRecords(ctx, conn, "Customer", `SELECT 'A', `+customerCols+` `+where+` ORDER BY c.customer`, customerAttrs, emit, args...)
	})
	if err != nil {
		abandon(conn, fileID, f.Path, err)
		return res, fmt.Errorf("export %s: write %s: %w", k.name, f.Name, err)
	}
	f.SHA256, f.Size, f.Records = w.SHA256, w.Size, w.Records
	if err := deliver(ctx, conn, fileID, f.Path, w, o.Marker); err != nil {
		return res, fmt.Errorf("export %s: %s: %w", k.name, f.Name, err)
	}
	res.Files = append(res.Files, f)
	return res, nil
}
