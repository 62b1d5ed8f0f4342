package catalog

import "github.com/posbridge/posbridge/internal/trigger"

// itemCols are the item-level columns, repeated on every SKU row.
var itemCols = []string{"description", "item_class", "vendor", "status"}

// skuCols are the SKU-level columns.
var skuCols = []string{"sku_description", "color", "size", "width", "upc", "retail_ref", "price", "cost"}

// mergeItems merges SKU rows into items and skus. A row is changed when
// any item-level or SKU-level field differs; its trigger is an SKU trigger
// keyed by item and SKU. The table firsts holds each item's first row.
func mergeItems(l *loader) error {
	itemCols, skuCols := l.given(itemCols), l.given(skuCols)
	if err := l.classify(`LEFT JOIN skus k ON k.item = s.item AND k.sku = s.sku LEFT JOIN items i ON i.item = s.item`,
		`(k.item IS NULL OR k.deleted_at IS NOT NULL OR i.deleted_at IS NOT NULL)`,
		differs("i", "s", itemCols)+` OR `+differs("k", "s", skuCols)); err != nil {
		return err
	}
	// Every row written is stamped with the change sequence (?2), which
	// the engagement feed reads; an item's own change_seq tells the feed
	// that all its SKUs carry new item-level fields.
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	stampCols, stampVals, stampSet := stampColumns("skus")
	steps := []string{
		`INSERT INTO items(item, ` + list(itemCols, "") + `change_seq, created_at, updated_at)
SELECT s.item, ` + list(itemCols, "s.") + `?2, ?1, ?1 FROM firsts g JOIN stage s ON s.rec = g.first WHERE true
ON CONFLICT(item) DO UPDATE SET ` + setExcluded(itemCols) + `change_seq = excluded.change_seq, deleted_at = NULL, updated_at = excluded.updated_at
WHERE ` + differs("items", "excluded", itemCols) + ` OR items.deleted_at IS NOT NULL`,
		`INSERT INTO skus(item, sku, ` + list(skuCols, "") + stampCols + `created_at, updated_at)
SELECT item, sku, ` + list(skuCols, "") + stampVals + `?1, ?1 FROM stage WHERE action <> ''
ON CONFLICT(item, sku) DO UPDATE SET ` + setExcluded(skuCols) + stampSet + `deleted_at = NULL, updated_at = excluded.updated_at`,
	}
	err = l.bulk(func() error {
		for _, q := range steps {
			if _, err := l.exec(q, l.now, seq); err != nil {
				return err
			}
		}
		return nil
	}, "items", "skus")
	if err != nil {
		return err
	}
	if err := l.countActions("stage"); err != nil {
		return err
	}
	// In the file's order, as itemsReload folds them (on PostgreSQL the
	// classification's UPDATE leaves the staged rows in another).
	if err := l.fold(trigger.CodeItem, `SELECT item AS record_key, sku AS sub_key, action AS capture FROM stage WHERE action <> '' ORDER BY rec`); err != nil {
		return err
	}
	// An item that changed form (SKUs instead of none, or back) loses the
	// rows of its old form, whatever the mode; such a change adds rows.
	if !l.firstLoad && l.res.Added > 0 {
		if _, err := l.exec(`INSERT INTO gone(record_key, sub_key)
SELECT k.item, k.sku FROM firsts g JOIN stage s ON s.rec = g.first JOIN skus k ON k.item = g.key
WHERE k.deleted_at IS NULL AND (k.sku = '') <> (s.sku = '')
ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
	}
	if l.deletesAllowed() {
		if _, err := l.exec(`INSERT INTO gone(record_key, sub_key)
SELECT k.item, k.sku FROM skus k WHERE k.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.item = k.item AND s.sku = k.sku)
ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
	}
	return l.deleteItemsGone(seq)
}

// deleteItemsGone deletes the SKUs in the table gone (deleteGone), then
// the items that leaves without live SKUs.
func (l *loader) deleteItemsGone(seq int64) error {
	if err := l.deleteGone("skus", trigger.CodeItem, "item", "sku"); err != nil {
		return err
	}
	// Items left without live SKUs are tombstoned, or removed when no SKU
	// row is left at all.
	if _, err := l.exec(`UPDATE items SET deleted_at = ?1, updated_at = ?1, change_seq = ?2 WHERE deleted_at IS NULL
  AND item IN (SELECT record_key FROM gone UNION SELECT record_key FROM cancelled)
  AND NOT EXISTS (SELECT 1 FROM skus k WHERE k.item = items.item AND k.deleted_at IS NULL)`, l.now, seq); err != nil {
		return err
	}
	_, err := l.exec(`DELETE FROM items WHERE item IN (SELECT record_key FROM cancelled)
  AND NOT EXISTS (SELECT 1 FROM skus k WHERE k.item = items.item)`)
	return err
}
