package trigger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
)

// File codes of the OMS outbound trigger convention.
const (
	CodeItem      = "SKU"
	CodeVendor    = "VND"
	CodeInvoice   = "IHD"
	CodeCustomer  = "CST"
	CodeInventory = "ITW"
)

// Capture types.
const (
	Added   = "A"
	Changed = "C"
	Deleted = "D"
)

// Statuses.
const (
	StatusReady      = "ready"
	StatusProcessing = "processing"
	StatusProcessed  = "processed"
	StatusError      = "error"
)

// Codes lists the file codes in display order.
var Codes = []string{CodeItem, CodeVendor, CodeInvoice, CodeCustomer, CodeInventory}

// Statuses lists the statuses in display order.
var Statuses = []string{StatusReady, StatusProcessing, StatusProcessed, StatusError}

// ErrNotFound means no trigger has the given id.
var ErrNotFound = errors.New("trigger not found")

// pending is the predicate of the partial unique index triggers_pending.
const pending = `status IN ('ready','error')`

// FileWriting and FileWritten are the statuses of an export file that is
// not finished (the export package records them): being written, and
// written but not yet complete. They are defined here, once, because what
// a claimed trigger is follows them: a status of an unfinished file
// missing here would count its triggers delivered.
const (
	FileWriting = "writing"
	FileWritten = "written"
)

// unfinished is true of the export file f while it is not finished. A
// claim stores its triggers processed (Claim): they are processing while
// their file is unfinished, and processed once it is complete; a file
// given up gives them back first (Unclaim). It is the predicate of the
// partial index files_unfinished, written alike so that the index serves
// it; ORs, not IN, as SQLite matches a partial index's predicate term by
// term.
const unfinished = `f.direction = 'out' AND (f.status = '` + FileWriting + `' OR f.status = '` + FileWritten + `')`

// legacy is true of a trigger t claimed in the form of the versions
// before migration 0022: stored processing, until its file is complete.
// Their processes may outlive the upgrade, claiming so and giving back or
// counting in flight only that form, so it stays a claim everywhere (and
// 0022 leaves it as it is); finishing its file makes it processed
// (CompleteLegacy). Such triggers are found through triggers_processing.
const legacy = `t.status = 'processing'`

// inFlight selects, as keys, the triggers of code ?1 that are processing:
// claimed by an export file that is not finished.
func inFlight(keys string) string { return inFlightOf(`?1`, keys) }

// inFlightOf is inFlight for the code given by the SQL expression code.
// The files are found through files_unfinished, their triggers through
// triggers_file.
func inFlightOf(code, keys string) string {
	return `SELECT ` + keys + ` FROM triggers t WHERE t.file_code = ` + code + ` AND ` + legacy + `
  UNION ALL SELECT ` + keys + ` FROM triggers t WHERE t.file_code = ` + code + ` AND t.status = 'processed'
  AND t.file_id IN (SELECT f.id FROM files f WHERE ` + unfinished + `)`
}

// InFlight is an SQL condition on a record of file code code whose key is
// in column key, and sub_key in column subKey ("" when the key is one
// column): true while an export file that is not finished holds a trigger
// of the record. The file may yet be given back (Unclaim), and a delete it
// holds sent again, with the whole record: such a record must stay, a
// tombstone, whatever happens to it meanwhile.
func InFlight(code, key, subKey string) string {
	cols, keys := key, `t.record_key`
	if subKey != "" {
		cols, keys = `(`+key+`, `+subKey+`)`, `t.record_key, t.sub_key`
	}
	// File codes are constants: inlined, the condition takes no argument.
	return cols + ` IN (` + inFlightOf(`'`+code+`'`, keys) + `)`
}

// Fold records changes for file code code. source is a SELECT returning
// (record_key, sub_key, capture) rows with capture A, C or D; each row folds
// into the pending trigger of its record, if there is one:
//
//	A+C=A, C+C=C, C+D=D, D+A=C, D+C=C, D+D=D
//
// A pending A followed by D must cancel both, unless trigger generate made
// the A (resend); callers handle that case first with CancelAdds, because
// the record itself is then removed too (unless InFlight). A resend A
// followed by D becomes D here, and A+C keeps the A's resend.
// A pending trigger in error is made ready again: the new data may fix it.
func Fold(ctx context.Context, q db.Execer, code, source string, args ...any) (int64, error) {
	now := db.Now()
	stmt := `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)
SELECT ?, src.record_key, src.sub_key, src.capture, 'ready', ?, ? FROM (` + source + `) AS src WHERE true
ON CONFLICT(file_code, record_key, sub_key) WHERE ` + pending + ` DO UPDATE SET
  capture = CASE
    WHEN excluded.capture = 'D' THEN 'D'
    WHEN triggers.capture = 'A' THEN 'A'
    ELSE 'C' END,
  status = 'ready', last_error = '', updated_at = excluded.updated_at`
	all := append([]any{code, now, now}, args...)
	res, err := q.ExecContext(ctx, stmt, all...)
	if err != nil {
		return 0, fmt.Errorf("fold %s triggers: %w", code, db.Classify(err))
	}
	return res.RowsAffected()
}

// AddNew records an A trigger of code for each (record_key, sub_key) row
// of source, records that have no pending trigger: the rows of a first
// load. A plain insert, without Fold's conflict handling (on PostgreSQL
// the upsert costs a check of triggers_pending before each row); a
// pending trigger of one of the records fails it with a constraint
// error, and the caller folds instead.
func AddNew(ctx context.Context, q db.Execer, code, source string, args ...any) (int64, error) {
	now := db.Now()
	res, err := q.ExecContext(ctx, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)
SELECT ?, src.record_key, src.sub_key, 'A', 'ready', ?, ? FROM (`+source+`) AS src`, append([]any{code, now, now}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("add %s triggers: %w", code, err)
	}
	return res.RowsAffected()
}

// CancelAdds deletes the pending A triggers of code whose (record_key,
// sub_key) is in keys, a SELECT of two columns: a record added and deleted
// before anything was sent is never sent at all. An add that trigger
// generate made (resend) is left alone: its record existed before and
// may have been sent, so its delete must be sent too (the caller keeps a
// tombstone and folds the D into the add). It first copies the
// cancelled keys into the temporary table into (which must exist with
// columns record_key, sub_key), so the caller can remove those records
// instead of keeping tombstones.
//
// On PostgreSQL the adds are locked as they are read: an export claiming
// one at that moment (Claim) is waited for, and the add it took, on its
// way out, is not cancelled; its record becomes a tombstone with a D
// trigger, as when the claim comes first on SQLite. Read unlocked, the
// add was taken for pending and its record removed outright while the
// export sent it, with no delete to follow.
func CancelAdds(ctx context.Context, q *sql.Conn, code, keys, into string) (int64, error) {
	sel := `SELECT t.record_key, t.sub_key FROM triggers t JOIN (` + keys + `) AS k
  ON t.record_key = k.record_key AND t.sub_key = k.sub_key
  WHERE t.file_code = ? AND t.capture = 'A' AND t.resend = 0 AND t.` + pending
	if db.DialectOf(q) == db.Postgres {
		sel += ` FOR UPDATE OF t`
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO `+into+`(record_key, sub_key) `+sel, code); err != nil {
		return 0, fmt.Errorf("cancel %s adds: %w", code, err)
	}
	res, err := q.ExecContext(ctx, `DELETE FROM triggers WHERE file_code = ? AND capture = 'A' AND resend = 0 AND `+pending+`
  AND (record_key, sub_key) IN (SELECT record_key, sub_key FROM `+into+`)`, code)
	if err != nil {
		return 0, fmt.Errorf("cancel %s adds: %w", code, err)
	}
	return res.RowsAffected()
}

// Trigger is one row of the trigger table.
type Trigger struct {
	ID          int64  `json:"id"`
	FileCode    string `json:"file_code"`
	Key         string `json:"key"`
	SubKey      string `json:"sub_key,omitempty"`
	Capture     string `json:"capture"`
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error,omitempty"`
	RunID       int64  `json:"run_id,omitempty"`
	File        string `json:"file,omitempty"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
	ProcessedAt string `json:"processed_at,omitempty"`
}

// DisplayKey joins key and sub key the way operators type them: ITEM/SKU.
func (t Trigger) DisplayKey() string {
	if t.SubKey == "" {
		return t.Key
	}
	return t.Key + "/" + t.SubKey
}

// Filter selects triggers for List.
type Filter struct {
	Code   string
	Status string
	// Key matches record_key, or record_key/sub_key when it holds a slash
	// and no record has that whole string as its key.
	Key   string
	Limit int
}

// shownProcessing is true of the trigger t, joined to its file f, while
// it is processing.
const shownProcessing = `(` + legacy + ` OR t.status = 'processed' AND ` + unfinished + `)`

// StatusColumn is the status of the trigger t joined to its export file f
// (LEFT JOIN files f ON f.id = t.file_id) as users see it: processing
// while the file is not finished.
const StatusColumn = `CASE WHEN ` + shownProcessing + ` THEN 'processing' ELSE t.status END`

// selectCols reads a trigger t joined to its file f (LEFT JOIN) with the
// status it has (StatusColumn) and, while it is processing, no
// processed_at.
const selectCols = `t.id, t.file_code, t.record_key, t.sub_key, t.capture, ` + StatusColumn + `, t.attempts, t.last_error,
  coalesce(t.run_id,0), coalesce(f.name,''), t.created_at, t.updated_at,
  CASE WHEN ` + shownProcessing + ` THEN '' ELSE coalesce(t.processed_at,'') END`

func scan(rows interface{ Scan(...any) error }) (Trigger, error) {
	var t Trigger
	err := rows.Scan(&t.ID, &t.FileCode, &t.Key, &t.SubKey, &t.Capture, &t.Status, &t.Attempts, &t.LastError,
		&t.RunID, &t.File, &t.CreatedAt, &t.UpdatedAt, &t.ProcessedAt)
	return t, err
}

// List streams the triggers matching f in id order to fn.
func List(ctx context.Context, d *db.DB, f Filter, fn func(Trigger) error) error {
	var where []string
	var args []any
	if f.Code != "" {
		where = append(where, "t.file_code = ?")
		args = append(args, f.Code)
	}
	switch f.Status {
	case "":
	case StatusProcessing:
		where = append(where, shownProcessing)
	case StatusProcessed:
		where = append(where, "t.status = 'processed' AND (f.id IS NULL OR NOT ("+unfinished+"))")
	default:
		where = append(where, "t.status = ?")
		args = append(args, f.Status)
	}
	if f.Key != "" {
		if k, s, ok := strings.Cut(f.Key, "/"); ok {
			where = append(where, "(t.record_key = ? OR (t.record_key = ? AND t.sub_key = ?))")
			args = append(args, f.Key, k, s)
		} else {
			where = append(where, "t.record_key = ?")
			args = append(args, f.Key)
		}
	}
	q := `SELECT ` + selectCols + ` FROM triggers t LEFT JOIN files f ON f.id = t.file_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY t.id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list triggers: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scan(rows)
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Get returns one trigger.
func Get(ctx context.Context, d *db.DB, id int64) (Trigger, error) {
	row := d.QueryRowContext(ctx, `SELECT `+selectCols+` FROM triggers t LEFT JOIN files f ON f.id = t.file_id WHERE t.id = ?`, id)
	t, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("trigger %d: %w", id, ErrNotFound)
	}
	return t, err
}

// Pending is how many triggers of one file code wait (ready) and failed
// (error), and when the oldest waiting one was created.
type Pending struct {
	FileCode    string `json:"file_code"`
	Ready       int64  `json:"ready"`
	Error       int64  `json:"error"`
	OldestReady string `json:"oldest_ready,omitempty"`
}

// PendingSummary counts the ready and error triggers per file code,
// through the pending index (processed triggers are not read).
func PendingSummary(ctx context.Context, d *db.DB) ([]Pending, error) {
	pending, err := db.QueryAll(ctx, d, func(sc db.Scanner) (Pending, error) {
		var p Pending
		return p, sc.Scan(&p.FileCode, &p.Ready, &p.Error, &p.OldestReady)
	}, `SELECT file_code, count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'error'),
 coalesce(min(CASE WHEN status = 'ready' THEN created_at END), '')
FROM triggers WHERE status IN ('ready', 'error') GROUP BY file_code ORDER BY file_code`)
	if err != nil {
		return nil, fmt.Errorf("count triggers: %w", err)
	}
	return pending, nil
}

// ErrNotInError means a trigger given to Retry is not in error status.
var ErrNotInError = errors.New("trigger is not in error status")

// forIDs hands fn the status of each trigger in ids, processing while its
// export file is not finished, inside the caller's transaction; ids that
// do not exist fail the call with ErrNotFound after the others were seen.
// On PostgreSQL it locks each trigger as it reads it, so that no export
// claims it before the transaction ends (on SQLite the write transaction
// already holds every other writer off).
func forIDs(ctx context.Context, conn *sql.Conn, ids []int64, fn func(id int64, status string) error) error {
	read := `SELECT status, coalesce(file_id, 0) FROM triggers WHERE id = ?` + db.ForUpdate(conn)
	var missing []int64
	for _, id := range ids {
		var status string
		var fileID int64
		err := conn.QueryRowContext(ctx, read, id).Scan(&status, &fileID)
		if errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return err
		}
		// Asked once the trigger is locked, in a statement of its own: on
		// PostgreSQL a read that waited for a claim to commit sees the
		// claimed row but, within its own snapshot, not the claim's file.
		if status == StatusProcessed && fileID > 0 {
			var busy bool
			err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM files f WHERE f.id = ? AND `+unfinished+`)`, fileID).Scan(&busy)
			if err != nil {
				return err
			}
			if busy {
				status = StatusProcessing
			}
		}
		if err := fn(id, status); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v", ErrNotFound, missing)
	}
	return nil
}

// Retry makes the given triggers in error ready again, all or none: when
// an id does not exist or is not in error, nothing changes and the error
// names it. With allErrors it retries every trigger in error.
func Retry(ctx context.Context, d *db.DB, ids []int64, allErrors bool) (changed int64, err error) {
	const ready = `UPDATE triggers SET status = 'ready', last_error = '', updated_at = ? WHERE `
	err = d.Tx(ctx, true, func(conn *sql.Conn) error {
		now := db.Now()
		if allErrors {
			res, err := conn.ExecContext(ctx, ready+`status = 'error'`, now)
			if err != nil {
				return err
			}
			changed, err = res.RowsAffected()
			return err
		}
		var notError []int64
		err := forIDs(ctx, conn, ids, func(id int64, status string) error {
			if status != StatusError {
				notError = append(notError, id)
				return nil
			}
			changed++
			_, err := conn.ExecContext(ctx, ready+`id = ?`, now, id)
			return err
		})
		if err == nil && len(notError) > 0 {
			err = fmt.Errorf("%w: %v", ErrNotInError, notError)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%w (nothing changed)", err)
	}
	return changed, nil
}

// Delete removes the given triggers, whatever their status, all or none:
// an id that does not exist or a trigger being processed changes nothing.
func Delete(ctx context.Context, d *db.DB, ids []int64) (deleted int64, err error) {
	err = d.Tx(ctx, true, func(conn *sql.Conn) error {
		return forIDs(ctx, conn, ids, func(id int64, status string) error {
			if status == StatusProcessing {
				return fmt.Errorf("trigger %d is being processed by an export; wait for it to finish", id)
			}
			deleted++
			_, err := conn.ExecContext(ctx, `DELETE FROM triggers WHERE id = ?`, id)
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("%w (nothing deleted)", err)
	}
	return deleted, nil
}

// Purge deletes the processed triggers claimed before now-olderThan
// whose file is finished, and removes the tombstones whose delete has been
// sent, by the trigger exports and by the engagement feed when it is in
// use, and that have no pending trigger left.
func Purge(ctx context.Context, d *db.DB, olderThan time.Duration, dryRun bool) (int64, error) {
	cutoff := time.Now().UTC().Add(-olderThan).Format(db.TimeLayout)
	var n int64
	err := d.Tx(ctx, !dryRun, func(conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, `DELETE FROM triggers AS t WHERE t.status = 'processed' AND coalesce(t.processed_at, t.updated_at) < ?
  AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = t.file_id AND `+unfinished+`)`, cutoff)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return PurgeTombstones(ctx, conn, 0)
	})
	return n, err
}

// tombstones names, per file code, the table of its records, its key
// columns, and how a trigger's keys match a row.
var tombstones = []struct{ code, table, keys, triggerKeys, match string }{
	{CodeVendor, "vendors", "x.vendor", "record_key", "t.record_key = x.vendor"},
	{CodeCustomer, "customers", "x.customer", "record_key", "t.record_key = x.customer"},
	{CodeInvoice, "invoices", "x.invoice", "record_key", "t.record_key = x.invoice"},
	{CodeItem, "skus", "(x.item, x.sku)", "record_key, sub_key", "t.record_key = x.item AND t.sub_key = x.sku"},
}

// feeds names, per table, the Customer Engagement feed file kind that
// sends the table's records, their deletes included (migration 0007).
var feeds = map[string]string{"customers": "engagement_customers", "skus": "engagement_items"}

// FeedKind returns the engagement feed file kind that sends the deletes of
// table, or "" when no feed does.
func FeedKind(table string) string { return feeds[table] }

// FeedInUse is an SQL condition, true once the engagement feed that sends
// the records of table has started (it has a watermark row): from then on
// a deleted record must become a tombstone, so the feed can send its
// delete, even when no trigger needs it.
func FeedInUse(table string) string {
	return `EXISTS (SELECT 1 FROM feed_watermarks WHERE kind = '` + feeds[table] + `')`
}

// FeedUnsent is an SQL condition on the row x of table: true while the
// engagement feed of table is in use and has not yet sent the row's last
// change (its change_seq is above the feed's watermark). Such a tombstone
// stays until the feed has sent its delete. Before the first feed is
// complete the watermark is NULL and every stamped change counts as unsent.
func FeedUnsent(table, x string) string {
	return `EXISTS (SELECT 1 FROM feed_watermarks w WHERE w.kind = '` + feeds[table] + `' AND ` + x + `.change_seq > coalesce(w.change_seq, 0))`
}

// PurgeTombstones removes deleted records that no ready, error or
// processing trigger still needs and that the engagement feed has sent
// (FeedUnsent), and items left without SKUs. With a fileID above 0 it
// looks only at the records whose delete went out in that export file,
// which keeps finishing a file cheap however big the tables; a file that
// carried no delete has nothing to release, and is not looked at further
// (the scoped DELETEs each gather the file's triggers: a fifth of the CPU
// of finishing a million-record export that deleted nothing).
func PurgeTombstones(ctx context.Context, q db.Querier, fileID int64) error {
	if fileID > 0 {
		var deletes bool
		err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM triggers WHERE file_id = ? AND capture = 'D')`, fileID).Scan(&deletes)
		if err != nil {
			return fmt.Errorf("purge tombstones: %w", err)
		}
		if !deletes {
			return nil
		}
	}
	for _, ts := range tombstones {
		keys := `(SELECT ` + ts.triggerKeys + ` FROM triggers`
		scope := ``
		if fileID > 0 {
			scope = ` AND ` + ts.keys + ` IN ` + keys + ` WHERE file_id = ?2 AND capture = 'D')`
		}
		if FeedKind(ts.table) != "" {
			scope += ` AND NOT ` + FeedUnsent(ts.table, "x")
		}
		// Pending triggers are found through triggers_pending; processing
		// ones are few, so they are gathered once (inFlight).
		_, err := q.ExecContext(ctx, `DELETE FROM `+ts.table+` AS x WHERE x.deleted_at IS NOT NULL`+scope+`
  AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.file_code = ?1 AND t.`+pending+` AND `+ts.match+`)
  AND `+ts.keys+` NOT IN (`+inFlight(ts.triggerKeys)+`)`, ts.code, fileID)
		if err != nil {
			return fmt.Errorf("purge %s tombstones: %w", ts.table, err)
		}
	}
	scope := ``
	// PostgreSQL refuses an argument the statement has no parameter for.
	var args []any
	if fileID > 0 {
		scope = ` AND item IN (SELECT record_key FROM triggers WHERE file_id = ?1 AND capture = 'D')`
		args = append(args, fileID)
	}
	_, err := q.ExecContext(ctx, `DELETE FROM items WHERE deleted_at IS NOT NULL`+scope+`
  AND NOT EXISTS (SELECT 1 FROM skus s WHERE s.item = items.item)`, args...)
	return err
}
