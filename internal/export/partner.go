package export

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/partner"
)

// Partner inventory exports (issue 8, docs/partners.md) send a partner
// the stock of its warehouse under its own SKU codes: absolute quantities
// in batches for an external OMS, the stock and price list for a store
// POS. They work like the engagement feed: no triggers; every writer of
// stock rows, SKUs and cross references stamps the change sequence, and a
// per-partner watermark (feed_watermarks, kind partner_inventory_<name>)
// moves up in the transaction that makes the file complete, so every
// change is in exactly one complete file, also across crashes.

// PartnerBatch is the most products one external-OMS inventory update may
// carry: one line of the file.
const PartnerBatch = 300

// unmappedShown is how many unmapped SKUs a result names; the report file
// has them all.
const unmappedShown = 20

// partnerFormats are the file formats of the profiles that have an
// inventory export.
var partnerFormats = map[string]string{partner.ExternalOMS: "ndjson", partner.StorePOS: "json", partner.WMS: "json"}

// PartnerResult says what a partner inventory export did.
type PartnerResult struct {
	Result
	Partner string `json:"partner"`
	Full    bool   `json:"full"`
	// Unmapped counts the SKUs in scope that have no code (or, for a store
	// POS, no price) and were not sent; UnmappedFile lists them all, and
	// UnmappedSample the first few ("item/sku: reason").
	Unmapped       int64    `json:"unmapped"`
	UnmappedFile   string   `json:"unmapped_file,omitempty"`
	UnmappedSample []string `json:"unmapped_sample,omitempty"`
	// Watermark is the change sequence the partner has been sent up to.
	Watermark *int64 `json:"watermark,omitempty"`
}

// Partial says SKUs in scope were not sent for want of a code (or price):
// the run rejected records (exit 3) though it sent all it could.
func (r *PartnerResult) Partial() bool { return r != nil && r.Unmapped > 0 }

// PartnerKind is the file kind (and watermark) of a partner's inventory
// export: partner_inventory_<name>.
func PartnerKind(name string) string { return "partner_inventory_" + name }

// partnerQuery selects the SKUs of one export: code is the partner's code
// of the SKU (NULL when it has none), reason why it cannot be sent (NULL
// when it can); the changed condition picks the SKUs whose stock in the
// warehouse, cross reference, SKU or item record changed after ?3.
func partnerQuery(p partner.Profile, all bool) (from, code, reason, cond string) {
	switch p.SKUCode {
	case partner.SKUCodeItem:
		code = `k.item || CASE WHEN k.sku <> '' THEN '/' || k.sku ELSE '' END`
		reason = `NULL`
	case partner.SKUCodeUPC:
		code = `nullif(k.upc, '')`
		reason = `CASE WHEN k.upc = '' THEN 'no UPC' END`
	default:
		code = `x.external_code`
		reason = `CASE WHEN x.external_code IS NULL THEN 'no external code for this partner (xref load)' END`
	}
	if p.Kind == partner.StorePOS {
		reason = `coalesce(` + reason + `, CASE WHEN k.price IS NULL THEN 'no price' END)`
	}
	from = `skus k JOIN items i ON i.item = k.item LEFT JOIN sku_xref x ON x.partner = ?1 AND x.item = k.item AND x.sku = k.sku`
	cond = `k.deleted_at IS NULL AND i.deleted_at IS NULL`
	if !all {
		cond += ` AND (k.change_seq > ?3 OR i.change_seq > ?3 OR coalesce(x.change_seq, 0) > ?3
  OR EXISTS (SELECT 1 FROM inventory v WHERE v.item = k.item AND v.sku = k.sku AND v.warehouse = ?2 AND v.change_seq > ?3))`
	}
	return from, code, reason, cond
}

// CheckPartner says why partner p can have no inventory export, as an
// error wrapping partner.ErrInvalid: its profile has none, it lacks its
// location (a WMS: its warehouse_id), or its warehouse is not set or not
// loaded. nil: it can.
func CheckPartner(ctx context.Context, d *db.DB, p partner.Profile) error {
	if _, ok := partnerFormats[p.Kind]; !ok {
		return fmt.Errorf("%w: partner %s: profile %q has no inventory export (want %s, %s or %s)", partner.ErrInvalid, p.Name, p.Kind,
			partner.ExternalOMS, partner.StorePOS, partner.WMS)
	}
	if p.Kind == partner.WMS && p.WarehouseID <= 0 {
		return fmt.Errorf("%w: partners.%s.warehouse_id is not set: the inventory per warehouse names the WMS's number of the warehouse (warehouseId)",
			partner.ErrInvalid, p.Name)
	}
	// A WMS's place is its warehouse_id.
	if p.Kind != partner.WMS && p.Location == "" {
		return fmt.Errorf("%w: partners.%s.location: an inventory export needs it", partner.ErrInvalid, p.Name)
	}
	problem, err := partner.WarehouseProblem(ctx, d, p, "an inventory export needs it")
	if err != nil {
		return err
	}
	if problem != "" {
		return fmt.Errorf("%w: %s", partner.ErrInvalid, problem)
	}
	return nil
}

// PartnerInventory writes one file of the partner's inventory into o.Dir
// (default <outbox>/partners/<name>/): every SKU with a code on the
// partner's first export or with full, otherwise the SKUs changed since
// the last export to it. SKUs without a code are never sent: they are
// counted, and listed in <dir>/unmapped/. With nothing to send no file is
// written.
func PartnerInventory(ctx context.Context, d *db.DB, p partner.Profile, full bool, o Options) (*PartnerResult, error) {
	if err := CheckPartner(ctx, d, p); err != nil {
		return nil, err
	}
	k := &kind{name: PartnerKind(p.Name)}
	o.Format = partnerFormats[p.Kind]
	if o.Dir == "" {
		o.Dir = partnerDir(o.Outbox, p.Name)
	}
	o.defaults(k)
	conn, res0, end, err := begin(ctx, d, k, &o)
	res := &PartnerResult{Partner: p.Name, Full: full}
	if res0 != nil {
		res.Result = *res0
	}
	if err != nil {
		return res, err
	}
	defer end()
	if !o.DryRun {
		if err := openWatermark(ctx, conn, k.name); err != nil {
			return res, err
		}
	}
	err = partnerFile(ctx, d, conn, k, p, full, &o, res)
	if mark, ok := watermark(ctx, conn, k.name); ok {
		res.Watermark = &mark
	}
	return res, err
}

// partnerFile reads the SKUs to send from one snapshot of the database and
// writes and delivers them as one file through conn, as feedFile does.
func partnerFile(ctx context.Context, d *db.DB, conn *sql.Conn, k *kind, p partner.Profile, full bool, o *Options, res *PartnerResult) error {
	s, err := openSnapshot(ctx, d, k.name)
	if err != nil {
		return err
	}
	defer s.close()
	snap, endSnap, mark, high := s.conn, s.end, s.mark, s.high
	from, code, reason, cond := partnerQuery(p, full || !mark.Valid)
	args := []any{p.Name, p.Warehouse, mark.Int64}
	var records, zeros int64
	err = snap.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE `+reason+` IS NULL), count(*) FILTER (WHERE `+reason+` IS NOT NULL)
FROM `+from+` WHERE `+cond, args...).Scan(&records, &res.Unmapped)
	if err == nil && droppedCodes(p) {
		err = snap.QueryRowContext(ctx, `SELECT count(*) `+droppedFrom, p.Name, mark.Int64).Scan(&zeros)
		records += zeros
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", k.name, db.Classify(err))
	}
	now := time.Now().UTC()
	name := ""
	if records > 0 {
		next, err := db.PeekSequence(ctx, conn, k.name)
		if err != nil {
			return fmt.Errorf("export %s: %w", k.name, db.Classify(err))
		}
		name = fileName(k.name, now, next, o.Format)
	}
	if res.Unmapped > 0 {
		if err := unmappedReport(ctx, snap, k, o, name, now, from, reason, cond, args, res); err != nil {
			return err
		}
	}
	if o.DryRun {
		if records > 0 {
			path, _ := filepath.Abs(filepath.Join(o.Dir, name))
			res.Files = append(res.Files, File{Kind: k.name, Name: name, Path: path, Records: records})
			res.ReadyRecords = records
		}
		return nil
	}
	if records == 0 {
		endSnap()
		if mark.Valid && mark.Int64 >= high {
			return nil
		}
		// Nothing to send up to high (or only SKUs without a code, which
		// are reported): the watermark moves without a file.
		return raiseWatermark(ctx, conn, k.name, high)
	}
	if err := prepareDir(k, o.Dir); err != nil {
		return err
	}
	f, fileID, err := startFile(ctx, conn, k, o, func(fileID int64, _ string) (int64, int64, error) {
		_, err := conn.ExecContext(ctx, `UPDATE files SET change_to = ? WHERE id = ?`, high, fileID)
		return records, 0, err
	})
	if err != nil {
		return err
	}
	f.Kind = k.name
	// The latest of the times: SQLite's max() of several arguments is
	// PostgreSQL's greatest() (both NOT NULL here, where they differ).
	latest := "max"
	if d.Dialect == db.Postgres {
		latest = "greatest"
	}
	// A sum of integers is numeric on PostgreSQL: the casts keep it an
	// integer.
	q := `SELECT k.item, k.sku, ` + code + `, i.description || CASE WHEN k.sku_description <> '' THEN ' - ' || k.sku_description ELSE '' END,
  k.price, CAST(coalesce((SELECT sum(v.on_hand) FROM inventory v WHERE v.item = k.item AND v.sku = k.sku AND v.warehouse = ?2), 0) AS BIGINT),
  CAST(coalesce((SELECT sum(v.reserved) FROM inventory v WHERE v.item = k.item AND v.sku = k.sku AND v.warehouse = ?2), 0) AS BIGINT),
  ` + latest + `(k.updated_at, i.updated_at, coalesce(x.updated_at, ''),
    coalesce((SELECT max(v.updated_at) FROM inventory v WHERE v.item = k.item AND v.sku = k.sku AND v.warehouse = ?2), ''))
FROM ` + from + ` WHERE ` + cond + ` AND ` + reason + ` IS NULL ORDER BY k.item, k.sku`
	wr, err := writeStream(o, f.Path, 0o640, func(w *bufio.Writer) (int64, error) {
		rows, err := snap.QueryContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		pw := newPartnerWriter(w, p)
		for rows.Next() {
			var r stockRow
			if err := rows.Scan(&r.item, &r.sku, &r.code, &r.name, &r.price, &r.onHand, &r.reserved, &r.changed); err != nil {
				return pw.n, err
			}
			if err := pw.add(r); err != nil {
				return pw.n, err
			}
		}
		if err := rows.Err(); err != nil {
			return pw.n, err
		}
		if zeros > 0 {
			if err := addDropped(ctx, snap, pw, p.Name, mark.Int64); err != nil {
				return pw.n, err
			}
		}
		return pw.n, pw.close()
	})
	endSnap()
	if err == nil && wr.Records != records {
		err = fmt.Errorf("wrote %d products, the count has %d", wr.Records, records)
		os.Remove(tmpPath(f.Path))
	}
	if err := finish(ctx, conn, k.name, fileID, &f, wr, err, "the next run sends its records", o.Marker); err != nil {
		return err
	}
	res.Files = append(res.Files, f)
	return nil
}

// droppedFrom selects the codes the partner's cross reference no longer
// has (xref delete, a full xref load, a new code for a SKU) since the
// watermark ?2: the partner still sells the figure it was last sent
// under each, so each goes out once more, with a stock of 0, in the
// file that moves the watermark past it.
const droppedFrom = `FROM xref_dropped d LEFT JOIN skus k ON k.item = d.item AND k.sku = d.sku LEFT JOIN items i ON i.item = d.item
WHERE d.partner = ?1 AND d.change_seq > ?2`

// droppedCodes says whether the partner's codes are those of the cross
// reference, whose dropped codes are sent a zero (partnerQuery's default).
func droppedCodes(p partner.Profile) bool {
	return p.SKUCode != partner.SKUCodeItem && p.SKUCode != partner.SKUCodeUPC
}

// addDropped writes a zero for each code of droppedFrom, after the SKUs
// the partner has codes for, in code order.
func addDropped(ctx context.Context, snap *sql.Conn, pw *partnerWriter, partner string, mark int64) error {
	rows, err := snap.QueryContext(ctx, `SELECT d.item, d.sku, d.external_code,
  coalesce(i.description || CASE WHEN k.sku_description <> '' THEN ' - ' || k.sku_description ELSE '' END, ''), k.price, d.dropped_at
`+droppedFrom+` ORDER BY d.external_code`, partner, mark)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r stockRow
		if err := rows.Scan(&r.item, &r.sku, &r.code, &r.name, &r.price, &r.changed); err != nil {
			return err
		}
		if err := pw.add(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// stockRow is one SKU of a partner inventory file.
type stockRow struct {
	item, sku, code, name, changed string
	price                          sql.NullInt64
	onHand, reserved               int64
}

// partnerWriter writes the records of a partner's profile: NDJSON batches
// of at most PartnerBatch products (external OMS), or a JSON array of
// stock and price records (store POS) or of stock per warehouse (WMS).
type partnerWriter struct {
	w     *bufio.Writer
	p     partner.Profile
	n     int64
	batch []omsProduct
}

type omsProduct struct {
	ChannelSkuCode string `json:"channelSkuCode"`
	Quantity       int64  `json:"quantity"`
}

type omsBatch struct {
	LocationCode string       `json:"locationCode"`
	Products     []omsProduct `json:"products"`
}

type posStock struct {
	ItemID             string      `json:"itemId"`
	ItemName           string      `json:"itemName"`
	LocationID         string      `json:"locationId"`
	Stock              int64       `json:"stock"`
	MRP                json.Number `json:"mrp"`
	SalePrice          json.Number `json:"salePrice"`
	ItemReferenceCode  string      `json:"itemReferenceCode"`
	TaxPercentage      json.Number `json:"taxPercentage"`
	DiscountPercentage json.Number `json:"discountPercentage"`
	ItemTimeStamp      string      `json:"itemTimeStamp"`
}

// wmsArticle is one article of Ongoing's GET
// /api/v1/articles/inventoryPerWarehouse response, with the stock of the
// partner's one warehouse. Ongoing's articleSystemId (its own number of
// the article) and reported (what it has yet to report) are not ours to
// say and are left out.
type wmsArticle struct {
	ArticleNumber         string              `json:"articleNumber"`
	InventoryPerWarehouse []wmsWarehouseStock `json:"inventoryPerWarehouse"`
}

// wmsWarehouseStock is the stock of an article in one warehouse; the
// quantities are decimals in Ongoing's shape (14.0). We hold no locked
// (blocked) stock: numberOfLockedItems is always 0.
type wmsWarehouseStock struct {
	WarehouseID                   int64       `json:"warehouseId"`
	NumberOfItems                 json.Number `json:"numberOfItems"`
	NumberOfLockedItems           json.Number `json:"numberOfLockedItems"`
	SellableNumberOfItems         json.Number `json:"sellableNumberOfItems"`
	AvailableForSaleNumberOfItems json.Number `json:"availableForSaleNumberOfItems"`
}

// decimal writes a whole number of items as Ongoing writes quantities.
func decimal(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10) + ".0") }

func newPartnerWriter(w *bufio.Writer, p partner.Profile) *partnerWriter {
	return &partnerWriter{w: w, p: p}
}

// quantity is what a partner may sell: on hand less reserved over the
// warehouse's locations, never below zero.
func (r stockRow) quantity() int64 { return max(r.onHand-r.reserved, 0) }

func (pw *partnerWriter) add(r stockRow) error {
	pw.n++
	if pw.p.Kind == partner.ExternalOMS {
		pw.batch = append(pw.batch, omsProduct{ChannelSkuCode: r.code, Quantity: r.quantity()})
		if len(pw.batch) == PartnerBatch {
			return pw.flush()
		}
		return nil
	}
	var rec any
	if pw.p.Kind == partner.WMS {
		// Sellable may go negative (oversold), as Ongoing's does; what is
		// available for sale never does.
		rec = wmsArticle{ArticleNumber: r.code, InventoryPerWarehouse: []wmsWarehouseStock{{WarehouseID: pw.p.WarehouseID,
			NumberOfItems: decimal(r.onHand), NumberOfLockedItems: decimal(0), SellableNumberOfItems: decimal(r.onHand - r.reserved),
			AvailableForSaleNumberOfItems: decimal(r.quantity())}}}
	} else {
		price := json.Number(amount(r.price))
		rec = posStock{ItemID: r.item, ItemName: r.name, LocationID: pw.p.Location, Stock: r.quantity(), MRP: price, SalePrice: price,
			ItemReferenceCode: r.code, TaxPercentage: "0", DiscountPercentage: "0", ItemTimeStamp: r.changed}
	}
	sep := ",\n  "
	if pw.n == 1 {
		sep = "[\n  "
	}
	pw.w.WriteString(sep)
	return writeJSONValue(pw.w, rec)
}

func (pw *partnerWriter) flush() error {
	if len(pw.batch) == 0 {
		return nil
	}
	if err := writeJSONValue(pw.w, omsBatch{LocationCode: pw.p.Location, Products: pw.batch}); err != nil {
		return err
	}
	pw.batch = pw.batch[:0]
	_, err := pw.w.WriteString("\n")
	return err
}

func (pw *partnerWriter) close() error {
	if pw.p.Kind == partner.ExternalOMS {
		return pw.flush()
	}
	if pw.n > 0 {
		_, err := pw.w.WriteString("\n]\n")
		return err
	}
	return nil
}

// writeJSONValue writes v as compact JSON without a newline, leaving &, <
// and > as they are.
func writeJSONValue(w *bufio.Writer, v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.WriteString(strings.TrimSuffix(b.String(), "\n"))
	return err
}

// unmappedReport writes every SKU in scope that cannot be sent to
// <dir>/unmapped/<file>.unmapped.csv (<kind>_<time>.unmapped.csv when no
// file is written): a subfolder, so that a push of the partner's folder
// never sends it. A dry run only names the first few.
func unmappedReport(ctx context.Context, snap *sql.Conn, k *kind, o *Options, name string, now time.Time,
	from, reason, cond string, args []any, res *PartnerResult) error {
	each := func(fn func(rec []string) error) error {
		rows, err := snap.QueryContext(ctx, `SELECT k.item, k.sku, i.description || CASE WHEN k.sku_description <> '' THEN ' - ' || k.sku_description ELSE '' END,
  k.upc, `+reason+` FROM `+from+` WHERE `+cond+` AND `+reason+` IS NOT NULL ORDER BY k.item, k.sku`, args...)
		if err != nil {
			return fmt.Errorf("export %s: unmapped SKUs: %w", k.name, db.Classify(err))
		}
		defer rows.Close()
		rec := make([]string, 5)
		for rows.Next() {
			if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4]); err != nil {
				return err
			}
			if len(res.UnmappedSample) < unmappedShown {
				res.UnmappedSample = append(res.UnmappedSample, fmt.Sprintf("%s/%s: %s", rec[0], rec[1], rec[4]))
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if o.DryRun {
		return each(func([]string) error { return nil })
	}
	base := strings.TrimSuffix(name, filepath.Ext(name))
	if base == "" {
		base = k.name + "_" + now.Format("20060102T150405Z")
	}
	dir := filepath.Join(o.Dir, "unmapped")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("export %s: %w", k.name, err)
	}
	path, _ := filepath.Abs(filepath.Join(dir, base+".unmapped.csv"))
	err := fsx.WriteAtomic(path, 0o640, func(w io.Writer) error {
		cw := format.NewCSVWriter(w, o.FormulaGuard)
		cw.Write([]string{"item", "sku", "description", "upc", "reason"})
		if err := each(cw.Write); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("export %s: write unmapped report: %w", k.name, err)
	}
	res.UnmappedFile = path
	return nil
}
