package trigger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
)

// source is how Generate selects the records of one kind.
type source struct {
	code string
	// sel returns (record_key, sub_key) of every live record.
	sel string
	// class is the column --where-class filters on, "" when the kind has none.
	class string
}

// Kinds maps the generate --type names to their sources.
var kinds = map[string]source{
	"item": {CodeItem, `SELECT s.item AS record_key, s.sku AS sub_key FROM skus s JOIN items i ON i.item = s.item
  WHERE s.deleted_at IS NULL AND i.deleted_at IS NULL`, "i.item_class"},
	"vendor":   {CodeVendor, `SELECT vendor AS record_key, '' AS sub_key FROM vendors WHERE deleted_at IS NULL`, ""},
	"invoice":  {CodeInvoice, `SELECT invoice AS record_key, '' AS sub_key FROM invoices WHERE deleted_at IS NULL`, ""},
	"customer": {CodeCustomer, `SELECT customer AS record_key, '' AS sub_key FROM customers WHERE deleted_at IS NULL`, "customer_class"},
	"inventory": {CodeInventory, `SELECT DISTINCT v.item AS record_key, v.sku AS sub_key FROM inventory v
  JOIN skus k ON k.item = v.item AND k.sku = v.sku JOIN items i ON i.item = v.item
  WHERE k.deleted_at IS NULL AND i.deleted_at IS NULL`, "i.item_class"},
}

// ErrNoClass means a class filter was given for a kind without classes.
var ErrNoClass = errors.New("--where-class does not apply")

// GenerateKinds lists the names Generate accepts.
var GenerateKinds = []string{"item", "vendor", "invoice", "customer", "inventory"}

// GenerateOptions select what Generate creates triggers for.
type GenerateOptions struct {
	Kind   string
	Class  string
	DryRun bool
	// Warn reports what went wrong after the triggers were committed; nil
	// drops it.
	Warn func(string)
}

// GenerateResult says what Generate did.
type GenerateResult struct {
	FileCode string `json:"file_code"`
	Selected int64  `json:"selected"`
	Created  int64  `json:"created"`
	// Skipped records already had a pending trigger.
	Skipped int64 `json:"skipped"`
}

// Generate creates one A trigger per selected live record, in one
// INSERT ... SELECT, skipping records that already have a pending trigger.
// The adds are marked resend: their records existed already and may have
// been sent, so a delete before the add goes out is sent (CancelAdds).
func Generate(ctx context.Context, d *db.DB, opts GenerateOptions) (GenerateResult, error) {
	src, ok := kinds[opts.Kind]
	if !ok {
		return GenerateResult{}, fmt.Errorf("unknown type %q: want one of %v", opts.Kind, GenerateKinds)
	}
	res := GenerateResult{FileCode: src.code}
	sel := src.sel
	var args []any
	if opts.Class != "" {
		if src.class == "" {
			return res, fmt.Errorf("%w: %s records have no class", ErrNoClass, opts.Kind)
		}
		sel += " AND " + src.class + " = ?"
		args = append(args, opts.Class)
	}
	err := d.Tx(ctx, !opts.DryRun, func(conn *sql.Conn) error {
		now := db.Now()
		insert := func(from string) string {
			return `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, resend, created_at, updated_at)
SELECT ?, src.record_key, src.sub_key, 'A', 'ready', 1, ?, ? FROM ` + from + ` WHERE true
ON CONFLICT(file_code, record_key, sub_key) WHERE ` + pending + ` DO NOTHING`
		}
		if db.DialectOf(conn) == db.Postgres {
			// The statement that creates the triggers counts the
			// records it selected: another host may commit records
			// between two statements, and a count of its own counted
			// others than the insert read (skipped, the difference,
			// fell below 0).
			return conn.QueryRowContext(ctx, `WITH src AS (`+sel+`), created AS (`+insert("src")+` RETURNING 1)
SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM created)`, append(args, src.code, now, now)...).Scan(&res.Selected, &res.Created)
		}
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM (`+sel+`) AS src`, args...).Scan(&res.Selected); err != nil {
			return err
		}
		r, err := conn.ExecContext(ctx, insert(`(`+sel+`) AS src`), append([]any{src.code, now, now}, args...)...)
		if err != nil {
			return err
		}
		res.Created, _ = r.RowsAffected()
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("generate %s triggers: %w", opts.Kind, db.Classify(err))
	}
	res.Skipped = res.Selected - res.Created
	if !opts.DryRun {
		// The triggers are committed; what is left is statistics for the
		// exports that send them. Their failure is a warning: an error
		// would have the work, which is done, run again.
		if err := d.AnalyzeWritten(ctx, map[string]int64{"triggers": res.Created}); err != nil && opts.Warn != nil {
			opts.Warn(fmt.Sprintf("generated %d %s triggers (committed), then: %v", res.Created, opts.Kind, err))
		}
	}
	return res, nil
}
