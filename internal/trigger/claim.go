package trigger

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
)

// recordUnit says what one record of a file code is: an item (all its SKU
// triggers) for SKU, a trigger's key and sub key for the others.
func recordUnit(code string) string {
	if code == CodeItem {
		return "record_key"
	}
	return "record_key, sub_key"
}

// Claim takes up to limit records' worth of ready triggers of code (all of
// them when limit is 0), in key order, for the export file fileID. It
// returns the number of records and triggers.
//
// The claim is the only write of a trigger's export: it stores the
// trigger processed, with its file and processed_at the claim's time, and
// the trigger is shown and treated as processing while its file is not
// finished (unfinished). Finishing the file then writes no trigger, and
// giving the file up (Unclaim) makes its triggers ready again. A second
// write of every trigger at completion cost 0.5-0.8 s of a 2.75 s
// sqlite3 dump of 1,000,000 triggers, and on PostgreSQL a second full row
// and index write each (status is in triggers_pending's predicate, so
// neither update is HOT).
//
// On PostgreSQL, where exports on several hosts write at once, the claim
// locks the rows it takes with FOR UPDATE SKIP LOCKED: it passes over the
// triggers another transaction holds (another export's claim, a load
// folding into them) instead of waiting for it, and leaves them for the
// next file. With a limit, the records are chosen before the rows are
// locked, so a claim may take fewer records, or none, while another
// holds the first ones.
func Claim(ctx context.Context, conn *sql.Conn, code string, fileID, runID int64, limit int) (records, triggers int64, err error) {
	if triggers, err = ClaimTriggers(ctx, conn, code, fileID, runID, limit); err != nil || triggers == 0 {
		return 0, 0, err
	}
	records, _, err = Claimed(ctx, conn, code, fileID)
	return records, triggers, err
}

// ClaimTriggers is Claim without the count of the records, which reads
// every trigger claimed again (0.2 s of 1,000,000 SKU triggers on
// PostgreSQL): for a caller that counts them as it reads them.
func ClaimTriggers(ctx context.Context, conn *sql.Conn, code string, fileID, runID int64, limit int) (triggers int64, err error) {
	limitExpr := ""
	if limit > 0 {
		limitExpr = "?5"
	}
	which := claimable("triggers", code, "?4", limitExpr)
	if db.DialectOf(conn) == db.Postgres {
		// The rows are updated where the lock found them, by their
		// ctid: a row this transaction locked stays where it is until
		// it commits. Said as "id IN (...)", the update hashed the
		// locked ids and scanned the whole table again to join them
		// (1,000,000 triggers of 2,000,000: 9.8-11.6 s against
		// 6.3-7.6 s). A row whose newest version is not in the
		// statement's snapshot is not updated and stays ready.
		which = `ctid = ANY(ARRAY(SELECT ctid FROM triggers WHERE ` + which + ` FOR UPDATE SKIP LOCKED))`
	}
	res, err := conn.ExecContext(ctx, `UPDATE triggers SET status = 'processed', file_id = ?1, run_id = ?2,
  attempts = attempts + 1, updated_at = ?3, processed_at = ?3
WHERE `+which, fileID, db.NullID(runID), db.Now(), code, limit)
	if err != nil {
		return 0, fmt.Errorf("claim %s triggers: %w", code, db.Classify(err))
	}
	triggers, _ = res.RowsAffected()
	return triggers, nil
}

// claimable is the condition, on the triggers of alias, that says which
// triggers a claim of code takes: the ready ones, or, with a limit, those
// of the first limit records in key order. codeExpr and limitExpr are the
// SQL of the code and the limit; no limitExpr, no limit.
func claimable(alias, code, codeExpr, limitExpr string) string {
	unit := recordUnit(code)
	which := alias + `.file_code = ` + codeExpr + ` AND ` + alias + `.status = 'ready'`
	if limitExpr != "" {
		// The first limit records in key order are those up to the
		// limit-th key, found once. Said as "IN (the first limit keys)",
		// PostgreSQL without statistics of the table (right after a load,
		// before autovacuum analyzes it) plans a nested loop that reads
		// the keys again for every ready trigger: 25 s and more for
		// 50,000 triggers, against 70 ms for this range on the index.
		which += ` AND (` + alias + `.` + strings.ReplaceAll(unit, ", ", ", "+alias+".") + `) <= (SELECT ` + unit + ` FROM (
  SELECT DISTINCT ` + unit + ` FROM triggers WHERE file_code = ` + codeExpr + ` AND status = 'ready' ORDER BY ` + unit + ` LIMIT ` + limitExpr + `) AS first
  ORDER BY ` + strings.ReplaceAll(unit, ",", " DESC,") + ` DESC LIMIT 1)`
	}
	return which
}

// Claimable is the condition, on the triggers of alias, that is true of
// the triggers Claim(code, limit) would take now: what a read beside the
// claim, in a snapshot of the state the claim starts from, reads as the
// file's triggers. It also names the condition of triggers_pending, so
// that SQLite reads them through it.
func Claimable(alias, code string, limit int) string {
	limitExpr := ""
	if limit > 0 {
		limitExpr = strconv.Itoa(limit)
	}
	return alias + ".status IN ('ready','error') AND " + claimable(alias, code, "'"+strings.ReplaceAll(code, "'", "''")+"'", limitExpr)
}

// ClaimableCounts counts the records and the triggers Claim(code, limit)
// would take now.
func ClaimableCounts(ctx context.Context, q db.Querier, code string, limit int) (records, triggers int64, err error) {
	return counts(ctx, q, code, Claimable("t", code, limit))
}

// Claimed counts the records and the triggers that export file fileID
// holds.
func Claimed(ctx context.Context, q db.Querier, code string, fileID int64) (records, triggers int64, err error) {
	return counts(ctx, q, code, `t.file_id = ?`, fileID)
}

// counts counts the records of code, and their triggers, among the
// triggers t of which where is true.
func counts(ctx context.Context, q db.Querier, code, where string, args ...any) (records, triggers int64, err error) {
	unit := recordUnit(code)
	err = q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0) FROM (SELECT `+unit+`, count(*) AS n FROM triggers t WHERE `+
		where+` GROUP BY `+unit+`) AS records`, args...).Scan(&records, &triggers)
	return records, triggers, err
}

// CompleteLegacy makes processed the triggers of export file fileID, being
// completed, that a version before migration 0022 claimed (legacy), with
// processed_at the time of their claim, as a claim stores it now: they
// would otherwise stay processing once the file is complete. They are
// found through triggers_processing, which holds no other trigger, so
// that completing a file of this version reads none of its triggers.
func CompleteLegacy(ctx context.Context, q db.Execer, fileID int64) error {
	_, err := q.ExecContext(ctx, `UPDATE triggers AS t SET status = 'processed', processed_at = t.updated_at
WHERE t.file_id = ? AND `+legacy, fileID)
	if err != nil {
		return fmt.Errorf("mark triggers of file %d processed: %w", fileID, err)
	}
	return nil
}

// Unclaim gives the triggers of an export file that was not delivered back
// to the queue. A record changed again meanwhile has a new pending
// trigger: the claimed change folds into it as the earlier one (A then C
// stays A, D then A becomes C, A then D cancels both unless trigger
// generate made the A: then the D stays, as C then D), otherwise the
// claimed trigger is ready again. A file that is finished is left alone:
// its triggers were sent. Triggers claimed in the older form (legacy) are
// given back alike.
//
// On PostgreSQL another host may fold a change of one of the file's
// records (Fold) while the triggers are given back: its new pending
// trigger, not seen when the steps looked for one, fails the claimed
// trigger's return to ready on triggers_pending once it commits. The
// steps then run again and see it (rerunOnFold): the claimed change folds
// into it, as on SQLite when the change comes first. So that a fold
// committed between two steps cannot have the second act on what the
// first did not see, a claimed trigger is combined into its pending one
// and deleted in one statement there (unclaim).
func Unclaim(ctx context.Context, q db.Querier, fileID int64) error {
	_, together := postgres(q)
	return rerunOnFold(ctx, q, fmt.Sprintf("give back triggers of file %d", fileID), func() error {
		return unclaim(ctx, q, fileID, together)
	})
}

// postgres returns q as the connection it is when that is a connection
// to PostgreSQL.
func postgres(q any) (*sql.Conn, bool) {
	conn, ok := q.(*sql.Conn)
	return conn, ok && db.DialectOf(conn) == db.Postgres
}

// rerunOnFold runs steps, which make claimed triggers pending, on q. On
// PostgreSQL, where q is the connection of the caller's READ COMMITTED
// transaction, a pending trigger that another host's fold commits after
// a step looked for one fails the trigger the step makes pending of the
// same record, on triggers_pending (a raw unique violation). steps then
// run again from a savepoint, and see it. Each new run follows a change
// that was being written when the run before looked, and is committed
// now, so there are no more runs than the records at stake; a violation
// that stays is not that: after maxFoldRuns it is the error.
func rerunOnFold(ctx context.Context, q db.Execer, what string, steps func() error) error {
	conn, ok := postgres(q)
	if !ok {
		return steps()
	}
	if _, err := conn.ExecContext(ctx, `SAVEPOINT fold_met`); err != nil {
		return fmt.Errorf("%s: %w", what, db.Classify(err))
	}
	for run := 1; ; run++ {
		err := steps()
		if err == nil {
			_, err = conn.ExecContext(ctx, `RELEASE SAVEPOINT fold_met`)
			return db.Classify(err)
		}
		if !db.IsUniqueViolation(err) || run == maxFoldRuns {
			return err
		}
		if _, err := conn.ExecContext(ctx, `ROLLBACK TO SAVEPOINT fold_met`); err != nil {
			return fmt.Errorf("%s: %w", what, db.Classify(err))
		}
	}
}

// maxFoldRuns bounds rerunOnFold's runs again after a fold met.
const maxFoldRuns = 100

// unclaim is Unclaim's steps; together combines the claimed triggers
// into their pending ones and deletes them in one statement, and leaves
// out a claimed add, not a resend, whose pending trigger is a delete that
// came after the first step: the final step then meets it on
// triggers_pending, and the run again cancels both, as the first step
// does. A claimed resend add combines into a delete like a change, the
// delete staying: the run again would not cancel them, and left out, the
// add met the delete on every run (as its record is a tombstone, the
// step before has usually taken the add already).
func unclaim(ctx context.Context, q db.Querier, fileID int64, together bool) error {
	claimed := `t.file_id = ?1 AND (` + legacy + ` OR t.status = 'processed') AND EXISTS (SELECT 1 FROM files f WHERE f.id = ?1 AND ` + unfinished + `)`
	sameKey := `p.file_code = t.file_code AND p.record_key = t.record_key AND p.sub_key = t.sub_key`
	steps := []string{
		// An add captured and never sent, then a delete: the pending
		// delete goes ...
		`DELETE FROM triggers AS p WHERE p.` + pending + ` AND p.capture = 'D' AND EXISTS (
  SELECT 1 FROM triggers t WHERE ` + claimed + ` AND t.capture = 'A' AND t.resend = 0 AND ` + sameKey + `)`,
	}
	// ... and so does the add, whose record is a tombstone now; the add
	// of trigger generate goes too, and its delete stays.
	for _, ts := range tombstones {
		steps = append(steps, `DELETE FROM triggers AS t WHERE `+claimed+` AND t.capture = 'A' AND t.file_code = '`+ts.code+`'
  AND EXISTS (SELECT 1 FROM `+ts.table+` x WHERE `+ts.match+` AND x.deleted_at IS NOT NULL)`)
	}
	combine := `UPDATE triggers AS p SET capture = CASE
    WHEN t.capture = 'A' AND p.capture = 'C' THEN 'A'
    WHEN t.capture = 'D' AND p.capture = 'A' THEN 'C'
    ELSE p.capture END,
  resend = CASE WHEN t.capture = 'A' THEN t.resend ELSE p.resend END
FROM triggers t WHERE ` + claimed + ` AND p.` + pending + ` AND ` + sameKey
	if together {
		steps = append(steps, `WITH combined AS (`+combine+` AND NOT (t.capture = 'A' AND t.resend = 0 AND p.capture = 'D') RETURNING t.id)
DELETE FROM triggers WHERE id IN (SELECT id FROM combined)`)
	} else {
		steps = append(steps, combine,
			`DELETE FROM triggers AS t WHERE `+claimed+` AND EXISTS (SELECT 1 FROM triggers p WHERE p.`+pending+` AND `+sameKey+`)`)
	}
	steps = append(steps,
		`UPDATE triggers AS t SET status = 'ready', file_id = NULL, run_id = NULL, processed_at = NULL, updated_at = ?2 WHERE `+claimed)
	for _, s := range steps {
		if _, err := q.ExecContext(ctx, s, fileID, db.Now()); err != nil {
			return fmt.Errorf("give back triggers of file %d: %w", fileID, err)
		}
	}
	return PurgeTombstones(ctx, q, 0)
}

// MarkMissing puts the ready triggers of code whose record is gone without
// a tombstone into error, with the reason, so the rest can be exported.
func MarkMissing(ctx context.Context, q db.Execer, code string) (int64, error) {
	return markMissing(ctx, q, code, `t.status = 'ready'`, "")
}

// MarkMissingClaimed is MarkMissing for the triggers that export file
// fileID claimed: those whose record is gone are put in error and leave the
// file as if never claimed (their attempt taken back), as MarkMissing
// before the claim would have left them.
//
// On PostgreSQL a load on another host may add such a record again, with
// a new pending trigger, while they are checked: the check, which did not
// see the record, then meets the new trigger on triggers_pending, and
// runs again (rerunOnFold), seeing the record back: its claimed trigger
// stays in the file, as on SQLite when the load comes first.
func MarkMissingClaimed(ctx context.Context, q db.Execer, code string, fileID int64) (n int64, err error) {
	err = rerunOnFold(ctx, q, fmt.Sprintf("check %s triggers of file %d", code, fileID), func() error {
		n, err = markMissing(ctx, q, code, `t.file_id = ?2 AND (`+legacy+` OR t.status = 'processed')`,
			`, file_id = NULL, run_id = NULL, processed_at = NULL, attempts = attempts - 1`, fileID)
		return err
	})
	return n, err
}

// markMissing puts the triggers of code that which selects and whose
// record is gone into error; set is added to the UPDATE, and args to its
// arguments from ?2 on.
//
// On PostgreSQL the triggers are first locked, and then checked in a
// statement of its own: a load on another host that adds a record again
// and folds into its trigger meanwhile is waited for, and its record
// seen. Checked in the statement that waited, the record was looked for
// in the state before the load, and the trigger the load had just made
// ready was put in error, "record not found", for a record that is there.
func markMissing(ctx context.Context, q db.Execer, code, which, set string, args ...any) (int64, error) {
	var exists, what string
	switch code {
	case CodeItem, CodeInventory:
		exists, what = `SELECT 1 FROM skus x WHERE x.item = t.record_key AND x.sku = t.sub_key`, "item/SKU"
	case CodeVendor:
		exists, what = `SELECT 1 FROM vendors x WHERE x.vendor = t.record_key`, "vendor"
	case CodeCustomer:
		exists, what = `SELECT 1 FROM customers x WHERE x.customer = t.record_key`, "customer"
	case CodeInvoice:
		exists, what = `SELECT 1 FROM invoices x WHERE x.invoice = t.record_key`, "invoice"
	default:
		return 0, fmt.Errorf("unknown file code %q", code)
	}
	where := `t.file_code = ?1 AND ` + which + ` AND NOT EXISTS (` + exists + `)`
	args = append([]any{code}, args...)
	if conn, ok := postgres(q); ok {
		if _, err := conn.ExecContext(ctx, `SELECT 1 FROM triggers t WHERE `+where+` FOR UPDATE`, args...); err != nil {
			return 0, fmt.Errorf("check %s triggers: %w", code, err)
		}
	}
	res, err := q.ExecContext(ctx, `UPDATE triggers AS t SET status = 'error', updated_at = ?`+strconv.Itoa(len(args)+1)+set+`,
  last_error = 'record not found: the `+what+` was removed without a tombstone, so there is nothing to send'
WHERE `+where, append(args, db.Now())...)
	if err != nil {
		return 0, fmt.Errorf("check %s triggers: %w", code, err)
	}
	return res.RowsAffected()
}
