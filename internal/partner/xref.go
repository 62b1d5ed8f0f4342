package partner

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
)

// Load modes.
const (
	ModeDelta = "delta" // add and change the mappings of the file
	ModeFull  = "full"  // the file is the partner's whole listing
)

// xrefColumns are the columns of a cross reference file; the first three
// are required.
var xrefColumns = []string{"item", "sku", "external_code", "serial", "barcode", "tolerance_days"}

// ErrFile means the file as a whole cannot be loaded (unreadable, no
// header, a required column missing); nothing was applied.
var ErrFile = errors.New("file rejected")

// ErrNotFound means xref delete found no such mapping.
var ErrNotFound = errors.New("no such mapping")

// Mapping is one cross reference row.
type Mapping struct {
	Item          string `json:"item"`
	SKU           string `json:"sku"`
	ExternalCode  string `json:"external_code"`
	Serial        string `json:"serial"`
	Barcode       string `json:"barcode"`
	ToleranceDays *int64 `json:"tolerance_days"`
	UpdatedAt     string `json:"updated_at,omitempty"`

	createdAt string
}

// LoadResult says what a load did.
type LoadResult struct {
	Partner     string   `json:"partner"`
	File        string   `json:"file"`
	Mode        string   `json:"mode"`
	Read        int64    `json:"read"`
	Added       int64    `json:"added"`
	Changed     int64    `json:"changed"`
	Deleted     int64    `json:"deleted"`
	Unchanged   int64    `json:"unchanged"`
	Rejected    int64    `json:"rejected"`
	RejectsFile string   `json:"rejects_file,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

type xrefRow struct {
	line   int
	raw    []string // the file's fields, for the rejects file
	m      Mapping
	reason []string
}

func (r *xrefRow) reject(format string, args ...any) {
	r.reason = append(r.reason, fmt.Sprintf(format, args...))
}

type skuKey struct{ item, sku string }

// Load reads a cross reference CSV (columns item, sku, external_code and
// optionally serial, barcode, tolerance_days) and applies its good rows to
// the partner's mappings in one transaction; mode full also removes the
// partner's mappings of SKUs that are not in the file. Rows are rejected,
// with their line and field, for: an unknown or deleted item/SKU, a
// missing external code, a SKU given twice, an external code given twice,
// or a code that another SKU of the partner keeps. Rejected rows go to
// path.rejects.csv. A mapping added or changed is stamped with the change
// sequence, so the SKU goes out in the partner's next inventory delta.
func Load(ctx context.Context, d *db.DB, partner, path, mode string) (*LoadResult, error) {
	if mode == "" {
		mode = ModeDelta
	}
	res := &LoadResult{Partner: partner, File: path, Mode: mode}
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("%s: %w: %v", path, ErrFile, err)
	}
	defer f.Close()
	rr, err := format.NewCSVReader(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w: %v", path, ErrFile, err)
	}
	header := rr.Header()
	pos := map[string]int{}
	for i, h := range header {
		known := false
		for _, c := range xrefColumns {
			known = known || c == h
		}
		if !known {
			res.Warnings = append(res.Warnings, fmt.Sprintf("ignoring unknown column %q", h))
			continue
		}
		pos[h] = i
	}
	var missing []string
	for _, c := range xrefColumns[:3] {
		if _, ok := pos[c]; !ok {
			missing = append(missing, strconv.Quote(c))
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%s: %w: line 1: missing required column %s", path, ErrFile, strings.Join(missing, ", "))
	}
	field := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}

	conn, err := d.Conn(ctx)
	if err != nil {
		return res, db.Classify(err)
	}
	defer conn.Close()
	var rows []*xrefRow
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w: %v", path, ErrFile, err)
		}
		res.Read++
		x := &xrefRow{line: r.Line, raw: r.Fields}
		if r.Err != nil {
			x.reject("%v", r.Err)
			rows = append(rows, x)
			continue
		}
		x.m = Mapping{Item: field(r.Fields, "item"), SKU: field(r.Fields, "sku"), ExternalCode: field(r.Fields, "external_code"),
			Serial: field(r.Fields, "serial"), Barcode: field(r.Fields, "barcode")}
		if x.m.Item == "" {
			x.reject("field item: required")
		}
		if x.m.ExternalCode == "" {
			x.reject("field external_code: required")
		}
		if t := field(r.Fields, "tolerance_days"); t != "" {
			n, err := format.ParseInt(t)
			if err != nil || n < 0 {
				x.reject("field tolerance_days %q: not a whole number of days (0 or more)", t)
			} else {
				x.m.ToleranceDays = &n
			}
		}
		rows = append(rows, x)
	}

	// Live SKUs, and the partner's stored mappings.
	if err := checkSKUs(ctx, conn, rows); err != nil {
		return res, db.Classify(err)
	}
	stored, err := storedMappings(ctx, conn, partner)
	if err != nil {
		return res, db.Classify(err)
	}
	checkDuplicates(rows)
	checkStored(rows, stored, mode)

	var good []*xrefRow
	for _, x := range rows {
		if len(x.reason) == 0 {
			good = append(good, x)
		} else {
			res.Rejected++
		}
	}
	err = db.WithTx(ctx, conn, true, func() error {
		return apply(ctx, conn, partner, mode, good, stored, res)
	})
	if err != nil {
		return res, fmt.Errorf("%s: apply: %w", path, db.Classify(err))
	}
	if err := writeRejects(path, header, rows, res); err != nil {
		return res, fmt.Errorf("%s: write rejects: %w", path, err)
	}
	return res, nil
}

func checkSKUs(ctx context.Context, conn *sql.Conn, rows []*xrefRow) error {
	st, err := conn.PrepareContext(ctx, `SELECT EXISTS (SELECT 1 FROM skus WHERE item = ? AND sku = ? AND deleted_at IS NULL)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, x := range rows {
		if len(x.reason) > 0 || x.m.Item == "" {
			continue
		}
		var ok bool
		if err := st.QueryRowContext(ctx, x.m.Item, x.m.SKU).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			x.reject("item/SKU %q/%q: unknown (not loaded, or deleted)", x.m.Item, x.m.SKU)
		}
	}
	return nil
}

func storedMappings(ctx context.Context, conn *sql.Conn, partner string) (map[skuKey]Mapping, error) {
	out := map[skuKey]Mapping{}
	err := list(ctx, conn, partner, func(m Mapping) error {
		out[skuKey{m.Item, m.SKU}] = m
		return nil
	})
	return out, err
}

// checkDuplicates rejects, after the first row of a SKU or of an external
// code, every later row that repeats it, naming the first.
func checkDuplicates(rows []*xrefRow) {
	bySKU, byCode := map[skuKey]int{}, map[string]*xrefRow{}
	for _, x := range rows {
		if len(x.reason) > 0 {
			continue
		}
		k := skuKey{x.m.Item, x.m.SKU}
		if first, ok := bySKU[k]; ok {
			x.reject("item/SKU %q/%q: given a code on line %d already (one code per SKU)", k.item, k.sku, first)
			continue
		}
		if first, ok := byCode[x.m.ExternalCode]; ok {
			x.reject("field external_code %q: used for item/SKU %q/%q on line %d already", x.m.ExternalCode, first.m.Item, first.m.SKU, first.line)
			continue
		}
		bySKU[k] = x.line
		byCode[x.m.ExternalCode] = x
	}
}

// checkStored rejects rows whose code another SKU of the partner keeps
// after the load: a stored mapping of a SKU the load does not remap (its
// row is missing or rejected; a full load drops the SKUs it lacks).
// Rejecting a row can make its SKU keep a code, so this repeats until
// nothing changes.
func checkStored(rows []*xrefRow, stored map[skuKey]Mapping, mode string) {
	for {
		remapped := map[skuKey]bool{}
		for _, x := range rows {
			if len(x.reason) == 0 {
				remapped[skuKey{x.m.Item, x.m.SKU}] = true
			}
		}
		kept := map[string]skuKey{}
		for k, m := range stored {
			if remapped[k] || (mode == ModeFull && !inFile(rows, k)) {
				continue
			}
			kept[m.ExternalCode] = k
		}
		changed := false
		for _, x := range rows {
			if len(x.reason) > 0 {
				continue
			}
			if k, ok := kept[x.m.ExternalCode]; ok && k != (skuKey{x.m.Item, x.m.SKU}) {
				x.reject("field external_code %q: already the code of item/SKU %q/%q for this partner", x.m.ExternalCode, k.item, k.sku)
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// inFile says whether a row of the file (good or rejected) names SKU k: a
// full load keeps the stored mapping of a SKU whose row was rejected.
func inFile(rows []*xrefRow, k skuKey) bool {
	for _, x := range rows {
		if x.m.Item == k.item && x.m.SKU == k.sku {
			return true
		}
	}
	return false
}

func apply(ctx context.Context, conn *sql.Conn, partner, mode string, good []*xrefRow, stored map[skuKey]Mapping, res *LoadResult) error {
	inGood := map[skuKey]bool{}
	for _, x := range good {
		inGood[skuKey{x.m.Item, x.m.SKU}] = true
	}
	del := func(k skuKey) error {
		_, err := conn.ExecContext(ctx, `DELETE FROM sku_xref WHERE partner = ? AND item = ? AND sku = ?`, partner, k.item, k.sku)
		return err
	}
	if mode == ModeFull {
		for k := range stored {
			if !inGood[k] {
				if err := del(k); err != nil {
					return err
				}
				res.Deleted++
			}
		}
	}
	// Changed mappings are removed before any is written, so a code that
	// passes from one SKU to another in the file is free when it is set
	// (UNIQUE (partner, external_code)).
	var writes []Mapping
	for _, x := range good {
		k := skuKey{x.m.Item, x.m.SKU}
		old, ok := stored[k]
		switch {
		case !ok:
			res.Added++
		case old.ExternalCode == x.m.ExternalCode && old.Serial == x.m.Serial && old.Barcode == x.m.Barcode && sameDays(old.ToleranceDays, x.m.ToleranceDays):
			res.Unchanged++
			continue
		default:
			res.Changed++
			if err := del(k); err != nil {
				return err
			}
			x.m.createdAt = old.createdAt
		}
		writes = append(writes, x.m)
	}
	if len(writes) == 0 {
		return nil
	}
	seq, err := catalog.NextChangeSeq(ctx, conn)
	if err != nil {
		return err
	}
	st, err := conn.PrepareContext(ctx, `INSERT INTO sku_xref(partner, item, sku, external_code, serial, barcode, tolerance_days, change_seq, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	now := db.Now()
	for _, m := range writes {
		created := m.createdAt
		if created == "" {
			created = now
		}
		if _, err := st.ExecContext(ctx, partner, m.Item, m.SKU, m.ExternalCode, m.Serial, m.Barcode, nullDays(m.ToleranceDays), seq, created, now); err != nil {
			return err
		}
	}
	return nil
}

func sameDays(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func nullDays(d *int64) any {
	if d == nil {
		return nil
	}
	return *d
}

// writeRejects writes path.rejects.csv (line, error, the row as read), or
// removes a stale one when nothing was rejected.
func writeRejects(path string, header []string, rows []*xrefRow, res *LoadResult) error {
	out := path + ".rejects.csv"
	if res.Rejected == 0 {
		if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	err := fsx.WriteAtomic(out, 0o640, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(append([]string{"line", "error"}, header...))
		for _, x := range rows {
			if len(x.reason) == 0 {
				continue
			}
			cw.Write(append([]string{strconv.Itoa(x.line), strings.Join(x.reason, "; ")}, x.raw...))
		}
		cw.Flush()
		return cw.Error()
	})
	if err == nil {
		res.RejectsFile = out
	}
	return err
}

// List streams the partner's mappings in item/SKU order.
func List(ctx context.Context, d *db.DB, partner string, fn func(Mapping) error) error {
	conn, err := d.Conn(ctx)
	if err != nil {
		return db.Classify(err)
	}
	defer conn.Close()
	return list(ctx, conn, partner, fn)
}

func list(ctx context.Context, conn *sql.Conn, partner string, fn func(Mapping) error) error {
	rows, err := conn.QueryContext(ctx, `SELECT item, sku, external_code, serial, barcode, tolerance_days, created_at, updated_at
FROM sku_xref WHERE partner = ? ORDER BY item, sku`, partner)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m Mapping
		var t sql.NullInt64
		if err := rows.Scan(&m.Item, &m.SKU, &m.ExternalCode, &m.Serial, &m.Barcode, &t, &m.createdAt, &m.UpdatedAt); err != nil {
			return err
		}
		if t.Valid {
			m.ToleranceDays = &t.Int64
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Unmapped is a live SKU without a code for a partner.
type Unmapped struct {
	Item        string `json:"item"`
	SKU         string `json:"sku"`
	Description string `json:"description"`
	UPC         string `json:"upc"`
}

// ListUnmapped streams the live SKUs that have no code for the partner, in
// item/SKU order.
func ListUnmapped(ctx context.Context, d *db.DB, partner string, fn func(Unmapped) error) error {
	rows, err := d.QueryContext(ctx, `SELECT k.item, k.sku, i.description || CASE WHEN k.sku_description <> '' THEN ' - ' || k.sku_description ELSE '' END, k.upc
FROM skus k JOIN items i ON i.item = k.item
WHERE k.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM sku_xref x WHERE x.partner = ? AND x.item = k.item AND x.sku = k.sku)
ORDER BY k.item, k.sku`, partner)
	if err != nil {
		return db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u Unmapped
		if err := rows.Scan(&u.Item, &u.SKU, &u.Description, &u.UPC); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Delete removes one mapping of the partner: by item and SKU, or by the
// external code when code is not empty. It returns the mapping removed,
// or ErrNotFound.
func Delete(ctx context.Context, d *db.DB, partner, item, sku, code string) (Mapping, error) {
	var m Mapping
	conn, err := d.Conn(ctx)
	if err != nil {
		return m, db.Classify(err)
	}
	defer conn.Close()
	err = db.WithTx(ctx, conn, true, func() error {
		q, args := `item = ? AND sku = ?`, []any{partner, item, sku}
		if code != "" {
			q, args = `external_code = ?`, []any{partner, code}
		}
		err := conn.QueryRowContext(ctx, `DELETE FROM sku_xref WHERE partner = ? AND `+q+` RETURNING item, sku, external_code`, args...).
			Scan(&m.Item, &m.SKU, &m.ExternalCode)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return m, err
	}
	return m, db.Classify(err)
}
