package catalog

import (
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

func checkInventory(l *loader) error {
	// Before the first read of the stock (see mergeInventory).
	if l.dialect == db.Postgres {
		var err error
		if l.stockRead, err = db.PeekSequence(l.ctx, l.conn, ChangeCounter); err != nil {
			return err
		}
	}
	if !l.opts.AllowNegativeOnHand {
		if err := l.rejectWhere(`s.on_hand < 0`, `'field on_hand "' || s.on_hand || '": must not be negative (set load.allow_negative_on_hand to accept)'`); err != nil {
			return err
		}
	}
	return checkAvailable(l)
}

// checkAvailable rejects the rows whose available stock is out of range.
func checkAvailable(l *loader) error {
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
//
// On PostgreSQL imports and orders on other hosts write stock while the
// load runs. Each takes the change number (NextChangeSeq) before it
// writes a stock row, stamps the row with it, and keeps the counter's row
// locked until it commits: once the load has its own number, every writer
// before it has committed and every other waits for the load to commit.
// The load compares the file with the stock before it takes the number,
// so as not to hold the writers off for that too, and compares again
// (readStockAgain) if a row was stamped since its first read: the stock
// it checked, compared with the file, applies the threshold rule to and
// zeroes is then the stock it writes over, as on SQLite. Compared only
// before the number, a row the load had found unchanged kept another
// host's level while the rows it changed or zeroed took the file's, an
// outcome of neither order (TestInventoryLoadAfterStockWriter). Row locks
// add nothing to that: the full load's, on every row it might zero, those
// at zero included, took 0.7-0.9 s and wrote 28 MB of WAL for 500,000
// rows at zero; the look for a stamp takes 0.1 s at 1,000,000 rows.
func mergeInventory(l *loader) error {
	// A file without a reserved column keeps the stored reservations.
	resDiffers, newAvail, setReserved := ` OR v.reserved IS DISTINCT FROM s.reserved`, "(s.on_hand - s.reserved)", "reserved = excluded.reserved,"
	if !l.present["reserved"] {
		resDiffers, newAvail, setReserved = "", "(s.on_hand - coalesce(v.reserved, 0))", ""
	}
	match := `v.item = s.item AND v.sku = s.sku AND v.warehouse = s.warehouse AND v.location = s.location`
	classify := func() error {
		return l.classify(`LEFT JOIN inventory v ON `+match, `v.item IS NULL`,
			`(v.on_hand IS DISTINCT FROM s.on_hand`+resDiffers+` OR (s.threshold IS NOT NULL AND v.threshold IS DISTINCT FROM s.threshold))`)
	}
	if err := classify(); err != nil {
		return err
	}
	// Every stock row written is stamped with the load's change sequence
	// (the partner inventory exports read it).
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	if err := l.readStockAgain(classify); err != nil {
		return err
	}
	deletes := l.deletesAllowed()
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

// readStockAgain checks and classifies the staged rows again when, on
// PostgreSQL, another host wrote a stock row since the load first read the
// stock (checkInventory): the load now holds the change number, and the
// stock stays as it reads it until the load commits.
func (l *loader) readStockAgain(classify func() error) error {
	if l.dialect != db.Postgres {
		return nil
	}
	var changed bool
	if err := l.conn.QueryRowContext(l.ctx, `SELECT EXISTS (SELECT 1 FROM inventory WHERE change_seq >= ?)`, l.stockRead).Scan(&changed); err != nil || !changed {
		return err
	}
	if err := checkAvailable(l); err != nil {
		return err
	}
	for _, q := range []string{`DROP INDEX IF EXISTS pg_temp.stage_action`, `UPDATE stage SET action = ''`} {
		if _, err := l.exec(q); err != nil {
			return err
		}
	}
	l.stagedAs = ""
	return classify()
}
