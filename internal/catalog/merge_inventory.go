package catalog

import (
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

func checkInventory(l *loader) error {
	if !l.opts.AllowNegativeOnHand {
		if err := l.rejectWhere(`s.on_hand < 0`, `'field on_hand "' || s.on_hand || '": must not be negative (set load.allow_negative_on_hand to accept)'`); err != nil {
			return err
		}
	}
	// Available stock (on hand less reserved) is a quantity too: with
	// negative stock allowed it could reach twice the range. A file
	// without a reserved column keeps the stored reservations.
	reserved, from := "s.reserved", "stage s"
	if !l.present["reserved"] {
		reserved = "coalesce(v.reserved, 0)"
		from = `stage s LEFT JOIN inventory v ON v.item = s.item AND v.sku = s.sku AND v.warehouse = s.warehouse AND v.location = s.location`
	}
	return l.rejectFrom(from, fmt.Sprintf(`s.on_hand - %s < -%d`, reserved, format.MaxQuantity),
		fmt.Sprintf(`'available (on_hand ' || s.on_hand || ' less reserved ' || %[1]s || '): %[2]s: ' || (s.on_hand - %[1]s) || ' is beyond ±%[3]d'`,
			reserved, format.ErrRange, format.MaxQuantity))
}

// mergeInventory merges stock rows. ITW triggers are per item/SKU and
// follow the threshold rule; a new stock row always triggers (A when the
// SKU had no stock rows before). A full load sets the stock of rows missing
// from the file to zero; they count as deleted.
func mergeInventory(l *loader) error {
	// A file without a reserved column keeps the stored reservations.
	resDiffers, newAvail, setReserved := ` OR v.reserved IS DISTINCT FROM s.reserved`, "(s.on_hand - s.reserved)", "reserved = excluded.reserved,"
	if !l.present["reserved"] {
		resDiffers, newAvail, setReserved = "", "(s.on_hand - coalesce(v.reserved, 0))", ""
	}
	match := `v.item = s.item AND v.sku = s.sku AND v.warehouse = s.warehouse AND v.location = s.location`
	if err := l.classify(`LEFT JOIN inventory v ON `+match, `v.item IS NULL`,
		`(v.on_hand IS DISTINCT FROM s.on_hand`+resDiffers+` OR (s.threshold IS NOT NULL AND v.threshold IS DISTINCT FROM s.threshold))`); err != nil {
		return err
	}
	// Every stock row written is stamped with the load's change sequence
	// (the partner inventory exports read it).
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	deletes := l.deletesAllowed()
	if err := l.lockStock(match, deletes); err != nil {
		return err
	}
	steps := []stmt{
		{q: `INSERT INTO events(record_key, sub_key, capture)
SELECT s.item, s.sku, CASE WHEN v.item IS NULL AND NOT EXISTS (SELECT 1 FROM inventory w WHERE w.item = s.item AND w.sku = s.sku) THEN 'A' ELSE 'C' END
FROM stage s LEFT JOIN inventory v ON ` + match + `
WHERE s.action <> '' AND (v.item IS NULL OR ` + trigger.InventoryRuleSQL("(v.on_hand - v.reserved)", newAvail, "coalesce(s.threshold, v.threshold, 0)") + `)`},
		{q: `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, threshold, change_seq, updated_at)
SELECT item, sku, warehouse, location, on_hand, reserved, threshold, ?2, ?1 FROM stage WHERE action <> ''
ON CONFLICT(item, sku, warehouse, location) DO UPDATE SET on_hand = excluded.on_hand, ` + setReserved + `
  threshold = coalesce(excluded.threshold, inventory.threshold), change_seq = excluded.change_seq, updated_at = excluded.updated_at`,
			args: []any{l.now, seq}},
	}
	if err := l.execAll(steps); err != nil {
		return err
	}
	if err := l.countActions("stage"); err != nil {
		return err
	}
	if deletes {
		missing := `(v.on_hand <> 0 OR v.reserved <> 0) AND NOT EXISTS (SELECT 1 FROM stage s WHERE ` + match + `)`
		if _, err := l.exec(`INSERT INTO events(record_key, sub_key, capture)
SELECT v.item, v.sku, 'C' FROM inventory v WHERE ` + missing + ` AND ` + trigger.InventoryRuleSQL("(v.on_hand - v.reserved)", "0", "coalesce(v.threshold, 0)")); err != nil {
			return err
		}
		n, err := l.exec(`UPDATE inventory AS v SET on_hand = 0, reserved = 0, updated_at = ?, change_seq = ? WHERE `+missing, l.now, seq)
		if err != nil {
			return err
		}
		l.res.Deleted += n
	}
	return l.fold(trigger.CodeInventory, `SELECT record_key, sub_key, min(capture) AS capture FROM events GROUP BY record_key, sub_key`)
}

// lockStock locks, on PostgreSQL, the stock rows a merge of inventory
// changes, and with deletes those it may set to zero, those at zero
// included: another host may fill one before the write. An import or an
// order there may change a row between the read of the threshold rule
// and the write that overwrites it, and the rule would compare the file
// with stock no longer there (down to 5 under a threshold of 10 and
// sent, the load's 25 compared with the 20 before: nothing sent). Locked
// first, in key order as imports write them, the rows are what the rule
// reads. A row the file leaves unchanged is not written, as if the other
// change came after the load; a new row triggers whatever it meets. The
// locks come after the change number, which imports also take before
// their rows.
func (l *loader) lockStock(match string, deletes bool) error {
	if l.dialect != db.Postgres {
		return nil
	}
	// Each changed row's stock row is looked up by its key: said as a
	// join, the planner, without statistics of the staging table, scanned
	// the whole stock (200,000 rows, 1% changed: 0.64 s against 0.2 s).
	lock := `SELECT 1 FROM (SELECT item, sku, warehouse, location FROM stage WHERE action <> '' ORDER BY item, sku, warehouse, location) AS s
CROSS JOIN LATERAL (SELECT 1 FROM inventory v WHERE ` + match + ` FOR UPDATE) AS x`
	if deletes {
		lock = `SELECT 1 FROM inventory v LEFT JOIN stage s ON ` + match + ` WHERE s.rec IS NULL OR s.action <> ''
ORDER BY v.item, v.sku, v.warehouse, v.location FOR UPDATE OF v`
	}
	_, err := l.exec(lock)
	return err
}
