package partner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
)

// CodeError is a partner's SKU code that names no live SKU, or more than
// one. Reason says where the code was looked for, for messages like
// `unknown channelSkuCode "X": not in the cross reference of partner p`.
type CodeError struct {
	Code      string
	Reason    string
	Ambiguous bool
}

func (e *CodeError) Error() string {
	if e.Ambiguous {
		return fmt.Sprintf("%q names more than one SKU", e.Code)
	}
	return fmt.Sprintf("unknown SKU code %q: %s", e.Code, e.Reason)
}

// Resolve finds our live item and SKU that partner p calls code, by its
// sku_code: the cross reference (xref, the default), the UPC (upc),
// or our codes written ITEM/SKU, or ITEM for an item without SKUs (item);
// the way the partner exports name SKUs. A code that names no SKU or
// several is a *CodeError.
func Resolve(ctx context.Context, q db.Querier, p Profile, code string) (item, sku string, err error) {
	var query, reason string
	var args []any
	switch p.SKUCode {
	case SKUCodeUPC:
		query, reason, args = `SELECT item, sku FROM skus WHERE upc = ? AND upc <> '' AND deleted_at IS NULL LIMIT 2`,
			"no SKU has that UPC", []any{code}
	case SKUCodeItem:
		it, sk, _ := strings.Cut(code, "/")
		query, reason, args = `SELECT item, sku FROM skus WHERE item = ? AND sku = ? AND deleted_at IS NULL`,
			fmt.Sprintf("no item/SKU %s/%s", it, sk), []any{it, sk}
	default:
		query = `SELECT x.item, x.sku FROM sku_xref x JOIN skus s ON s.item = x.item AND s.sku = x.sku AND s.deleted_at IS NULL
WHERE x.partner = ? AND x.external_code = ?`
		reason, args = fmt.Sprintf("not in the cross reference of partner %s (xref load)", p.Name), []any{p.Name, code}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return "", "", db.Classify(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(&item, &sku); err != nil {
			return "", "", db.Classify(err)
		}
	}
	if err := rows.Err(); err != nil {
		return "", "", db.Classify(err)
	}
	switch n {
	case 0:
		return "", "", &CodeError{Code: code, Reason: reason}
	case 1:
		return item, sku, nil
	}
	return "", "", &CodeError{Code: code, Ambiguous: true}
}

// WarehouseProblem says what is wrong with the warehouse of partner p:
// not set, or not loaded; "" when it is fine. use says what the
// warehouse is for. The error is the database's.
func WarehouseProblem(ctx context.Context, q db.Querier, p Profile, use string) (string, error) {
	if p.Warehouse == "" {
		return fmt.Sprintf("partners.%s.warehouse is not set: %s", p.Name, use), nil
	}
	var ok bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM warehouses WHERE warehouse = ?)`, p.Warehouse).Scan(&ok); err != nil {
		return "", db.Classify(err)
	}
	if !ok {
		return fmt.Sprintf("warehouse %s of partners.%s is not loaded", p.Warehouse, p.Name), nil
	}
	return "", nil
}

// Upload is the upload of partner p's JSON messages for imports.Run: kind
// is its file ledger kind, what names its records, header the columns of
// its rejects after line and error, and apply applies the records of file
// f (at path) inside the session, EachRecord at its heart.
func Upload(kind, what string, p Profile, header []string, apply func(s *imports.Session, f io.ReadSeeker, path string) error) imports.Upload {
	return imports.Upload{Kind: kind, What: what, Partner: p.Name, Open: func(f *os.File, path string, o *imports.Options) ([]string, func(*imports.Session) error, error) {
		return header, func(s *imports.Session) error { return apply(s, f, path) }, nil
	}}
}

// EachRecord reads a partner's JSON upload inside its import session: the
// partner's warehouse must be set and loaded (use says what for), then fn
// gets each object of the file (imports.EachJSON: an object, an array or
// NDJSON) until it fails or the run is interrupted. A missing or unloaded
// warehouse fails the file (imports.ErrFile).
func EachRecord(s *imports.Session, p Profile, use, what string, f io.Reader,
	fn func(n, line int, raw json.RawMessage) error) error {
	problem, err := WarehouseProblem(s.Ctx, s.Conn, p, use)
	if err != nil {
		return err
	}
	if problem != "" {
		return fmt.Errorf("%w: %s", imports.ErrFile, problem)
	}
	return imports.EachJSON(f, what, func(n, line int, raw json.RawMessage) error {
		if err := fn(n, line, raw); err != nil {
			return err
		}
		return s.Ctx.Err()
	})
}
