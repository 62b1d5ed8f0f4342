package trigger

// The inventory threshold rule decides when a change of available stock
// (on hand minus reserved) must be sent: with a positive threshold, when
// available falls below it, at every further drop while below, and when it
// rises back to it or above; with no threshold (0 or unset), at every
// change. Loads apply it in SQL, imports in Go: both forms live here.

// InventoryRule applies the rule to one change from old to new available.
func InventoryRule(old, new, threshold int64) bool {
	if threshold > 0 {
		return (old >= threshold && new < threshold) ||
			(old < threshold && new < old) ||
			(old < threshold && new >= threshold)
	}
	return new != old
}

// InventoryRuleSQL is InventoryRule as an SQL expression over the given
// expressions for old and new available and the threshold.
func InventoryRuleSQL(old, new, thr string) string {
	return `(CASE WHEN ` + thr + ` > 0 THEN
      (` + old + ` >= ` + thr + ` AND ` + new + ` < ` + thr + `)
   OR (` + old + ` < ` + thr + ` AND ` + new + ` < ` + old + `)
   OR (` + old + ` < ` + thr + ` AND ` + new + ` >= ` + thr + `)
  ELSE ` + new + ` <> ` + old + ` END)`
}
