package inquiry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// skuCols are the columns of a SKU and its item that an inquiry shows.
const skuCols = `k.item, k.sku, i.description, k.sku_description, i.item_class, i.vendor, i.status, k.color, k.size,
  k.width, k.upc, k.retail_ref, k.price`

// Inventory answers an inventory inquiry: the live SKUs that q selects, in
// item and SKU order, each with its attributes and its stock per warehouse
// (summed over locations, in warehouse order) and the totals over those
// warehouses. Warehouses without a stock row of the SKU are left out,
// except the one warehouse q names, which shows zeros. A SKU or item with
// deleted_at set is not found. Nothing found is an empty result, not an
// error; a query that cannot be asked (Validate, or a warehouse that does
// not exist) is an error wrapping ErrQuery.
func Inventory(ctx context.Context, d *db.DB, q InventoryQuery) (*InventoryResult, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var wh Stock
	if q.Warehouse != "" {
		err := d.QueryRowContext(ctx, `SELECT warehouse, name, allocatable FROM warehouses WHERE warehouse = ?`, q.Warehouse).
			Scan(&wh.Warehouse, &wh.Name, &wh.Allocatable)
		if isNoRows(err) {
			return nil, queryErr(input("warehouse"), fmt.Sprintf(" %q: no such warehouse", q.Warehouse))
		}
		if err != nil {
			return nil, fmt.Errorf("inventory inquiry: %w", db.Classify(err))
		}
	}
	query, args := skuQuery(q)
	skus, err := db.QueryAll(ctx, d, scanSKU, query, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory inquiry: %w", err)
	}
	res := &InventoryResult{Query: q, SKUs: skus}
	if len(skus) == 0 {
		return res, nil
	}
	stmt, err := d.PrepareContext(ctx, stockQuery(q))
	if err != nil {
		return nil, fmt.Errorf("inventory inquiry: %w", db.Classify(err))
	}
	defer stmt.Close()
	for i := range res.SKUs {
		k := &res.SKUs[i]
		args := []any{k.Item, k.SKU}
		if q.Warehouse != "" {
			args = append(args, q.Warehouse)
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("inventory inquiry: %w", db.Classify(err))
		}
		for rows.Next() {
			var s Stock
			if err := rows.Scan(&s.Warehouse, &s.Name, &s.Allocatable, &s.OnHand, &s.Reserved, &s.Backordered); err != nil {
				rows.Close()
				return nil, fmt.Errorf("inventory inquiry: %w", err)
			}
			if n := len(k.Warehouses); n > 0 && k.Warehouses[n-1].Warehouse == s.Warehouse {
				err = k.Warehouses[n-1].add(s)
			} else {
				k.Warehouses = append(k.Warehouses, Stock{Warehouse: s.Warehouse, Name: s.Name, Allocatable: s.Allocatable})
				err = k.Warehouses[n].add(s)
			}
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("inventory inquiry: stock of %s/%s in %s: %w", k.Item, k.SKU, s.Warehouse, err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("inventory inquiry: %w", db.Classify(err))
		}
		// The warehouse asked about shows even without stock, unless
		// it is left out as not allocatable.
		if q.Warehouse != "" && len(k.Warehouses) == 0 && (wh.Allocatable || !q.ExcludeNonAllocatable) {
			k.Warehouses = append(k.Warehouses, wh)
		}
		for _, s := range k.Warehouses {
			if err := k.Total.add(s); err != nil {
				return nil, fmt.Errorf("inventory inquiry: stock of %s/%s: %w", k.Item, k.SKU, err)
			}
		}
	}
	return res, nil
}

// add adds the stock of a location (Available is computed) or of a
// warehouse to s. The sums are quantities like the stock of one location
// (docs/formats.md, "Numbers"): beyond their range they are an error,
// never a wrapped number.
func (s *Stock) add(u Stock) error {
	var err error
	for _, f := range []struct {
		name     string
		sum      *int64
		addition int64
	}{{"on_hand", &s.OnHand, u.OnHand}, {"reserved", &s.Reserved, u.Reserved}, {"backordered", &s.Backordered, u.Backordered}} {
		if *f.sum, err = format.AddQuantity(*f.sum, f.addition); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if s.Available, err = format.AddQuantity(s.OnHand, -s.Reserved); err != nil {
		return fmt.Errorf("available: %w", err)
	}
	return nil
}

// skuQuery selects the live SKUs of q with their items, in item and SKU
// order: by the primary key of skus, or its UPC or retail reference index.
func skuQuery(q InventoryQuery) (string, []any) {
	where, args := `k.item = ?`, []any{q.Item}
	switch {
	case q.Item != "" && q.SKU != "":
		where, args = `k.item = ? AND k.sku = ?`, []any{q.Item, q.SKU}
	case q.UPC != "":
		// upc <> '' is the condition of the partial index skus_upc.
		where, args = `k.upc = ? AND k.upc <> ''`, []any{q.UPC}
	case q.RetailRef != "":
		where, args = `k.retail_ref = ? AND k.retail_ref <> ''`, []any{q.RetailRef}
	}
	return `SELECT ` + skuCols + ` FROM skus k JOIN items i ON i.item = k.item
WHERE ` + where + ` AND k.deleted_at IS NULL AND i.deleted_at IS NULL ORDER BY k.item, k.sku`, args
}

// stockQuery selects the stock rows of one SKU (?1 item, ?2 SKU) in
// warehouse order, for q's warehouses (?3 the one warehouse); Inventory
// sums them per warehouse with checked arithmetic. The primary key of
// inventory (item, sku, warehouse, location) gives the rows in that
// order, so nothing is sorted.
func stockQuery(q InventoryQuery) string {
	filter := ""
	if q.Warehouse != "" {
		filter += ` AND v.warehouse = ?3`
	}
	if q.ExcludeNonAllocatable {
		filter += ` AND w.allocatable = 1`
	}
	return `SELECT v.warehouse, w.name, w.allocatable, v.on_hand, v.reserved, v.backordered
FROM inventory v JOIN warehouses w ON w.warehouse = v.warehouse
WHERE v.item = ?1 AND v.sku = ?2` + filter + ` ORDER BY v.warehouse, v.location`
}

func scanSKU(s db.Scanner) (SKUStock, error) {
	var k SKUStock
	var price sql.NullInt64
	err := s.Scan(&k.Item, &k.SKU, &k.ItemDescription, &k.SKUDescription, &k.ItemClass, &k.Vendor, &k.Status, &k.Color,
		&k.Size, &k.Width, &k.UPC, &k.RetailRef, &price)
	if price.Valid {
		p := format.Amount(price.Int64)
		k.Price = &p
	}
	k.Warehouses = []Stock{}
	return k, err
}
