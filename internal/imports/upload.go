package imports

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
)

// Upload is one kind of upload file; Run gives every kind the same file
// handling: the sha256 ledger, one write transaction with the ledger row,
// the reject file and the all-or-nothing rule.
type Upload struct {
	// Kind is the file ledger kind, such as inventory-transactions.
	Kind string
	// What names the records in messages ("transactions").
	What string
	// Partner is the partner the file comes from, for a partner's upload:
	// the same content is applied once per partner.
	Partner string
	// AllOrNothing makes the file apply whole or not at all whatever the
	// options say: for messages that a part applied could not bring again.
	AllOrNothing bool
	// KeysHold says that every foreign key of what the kind writes holds
	// by construction, so that SQLite need not look up the parent of each
	// row (db.WithoutKeyChecks): its history rows name the file just
	// recorded, its stock rows SKUs and warehouses it read in the same
	// write transaction, and the file's run is the command's own, still
	// running and so never purged.
	KeysHold bool
	// Open starts reading the file: it returns the reject file's columns
	// and the function that applies the records inside the transaction.
	Open func(f *os.File, path string, o *Options) (header []string, apply func(s *Session) error, err error)
}

// Session is what Upload.Open's apply works with: the transaction's
// connection, the ledger row of the file and its result.
type Session struct {
	Ctx    context.Context
	Conn   *sql.Conn
	FileID int64
	Result *Result
	Opts   *Options
	rj     *rejects
	// pool is the database of Conn, where a session may take a second
	// connection (the applier, for its reads while the history streams).
	pool *db.DB
	// appliers are the session's appliers, whose refusals Run checks
	// before the file is recorded (checkRefused).
	appliers []*applier
}

// newApplier starts an applier of the session's transaction.
func (s *Session) newApplier() (*applier, error) {
	a, err := newApplier(s.Ctx, s.Conn, s.FileID, s.Opts)
	if err == nil {
		s.appliers = append(s.appliers, a)
	}
	return a, err
}

// Reject records a rejected record: its line, the reason and its fields
// as read.
func (s *Session) Reject(line int, msg string, raw []string) error {
	s.Result.Rejected++
	return s.rj.add(line, msg, raw)
}

// Run applies one upload file of kind u.
func Run(ctx context.Context, d *db.DB, u Upload, path string, o Options) (*Result, error) {
	o.AllOrNothing = o.AllOrNothing || u.AllOrNothing
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	warn, warned := capWarnings(o.Warn, maxWarnings)
	o.Warn = warn
	defer warned(path)
	res := &Result{File: path, DryRun: o.DryRun}
	sum, size, err := fileSum(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	res.SHA256 = sum
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	defer conn.Close()
	if !u.KeysHold {
		return runTx(ctx, d, conn, u, path, o, res, size)
	}
	var out *Result
	err = db.WithoutKeyChecks(ctx, conn, func() error {
		var err error
		out, err = runTx(ctx, d, conn, u, path, o, res, size)
		return err
	})
	return out, err
}

// runTx is Run's write transaction on conn: it ends, committed or rolled
// back, before runTx returns.
func runTx(ctx context.Context, d *db.DB, conn *sql.Conn, u Upload, path string, o Options, res *Result, size int64) (*Result, error) {
	sum := res.SHA256
	var err error
	if _, err := conn.ExecContext(ctx, db.BeginStatement(conn)); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if !o.Force {
		// Inside the write transaction, so that two hosts (or processes)
		// importing the same content at once apply it once: the second
		// waits for the first and then finds its ledger row.
		if res.SameAs, err = appliedBefore(ctx, conn, u.Kind, u.Partner, sum); err != nil || res.SameAs != "" {
			return res, err
		}
	}
	f, err := fsx.OpenText(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	header, apply, err := u.Open(f, path, &o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rj, err := newRejects(path, header, &o)
	if err != nil {
		return nil, err
	}
	defer rj.discard()

	abs, _ := filepath.Abs(path)
	var fileID int64
	// A forced import of content applied before is recorded as such: the
	// ledger's unique index (migration 0020) holds one applied row per
	// content for the others.
	mode := ""
	if o.Force {
		mode = modeForce
	}
	err = conn.QueryRowContext(ctx, `INSERT INTO files(direction, kind, partner, name, path, sha256, size, status, mode, run_id, created_at)
VALUES ('in', ?, ?, ?, ?, ?, ?, 'importing', ?, ?, ?) RETURNING id`, u.Kind, u.Partner, filepath.Base(path), abs, sum, size, mode, db.NullID(o.RunID), db.Now()).Scan(&fileID)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	// Everything after the ledger row can be undone on its own, so a file
	// that applies nothing is still recorded.
	if _, err := conn.ExecContext(ctx, "SAVEPOINT work"); err != nil {
		return nil, db.Classify(err)
	}
	s := &Session{Ctx: ctx, Conn: conn, FileID: fileID, Result: res, Opts: &o, rj: rj, pool: d}
	if err := apply(s); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// Stopped: whatever the stop broke (on PostgreSQL the
			// connection, which pgx closes) is not why.
			return nil, fmt.Errorf("import %s: %w", path, ctxErr)
		}
		if db.IsUniqueViolation(err) && db.DialectOf(conn) == db.Postgres {
			// Writers run at once on PostgreSQL: a key this import found
			// free (a webhook's event id, say) was taken by another
			// import that committed first. This transaction is void; the
			// next run reads what the other wrote.
			err = fmt.Errorf("%w: another import wrote the same records at the same time (%v)", db.ErrBusy, err)
		}
		if db.IsForeignKeyViolation(err) && db.DialectOf(conn) == db.Postgres {
			// A warehouse or SKU this import found there was deleted by
			// a load that committed first: void too, and the next run
			// rejects the records that name it.
			err = fmt.Errorf("%w: a warehouse or SKU this file names was deleted by a load at the same time (%v)", db.ErrBusy, err)
		}
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	for _, a := range s.appliers {
		if err := a.checkRefused(); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
	}
	if res.Read == 0 {
		return nil, fmt.Errorf("%s: %w: no %s in the file", path, ErrFile, u.What)
	}
	status := statusApplied
	switch {
	case res.Applied == 0 || (o.AllOrNothing && res.Rejected > 0):
		status = statusRejected
		res.RolledBack = o.AllOrNothing && res.Rejected > 0
		// Nothing of it stays but its ledger row.
		if _, err := conn.ExecContext(ctx, "ROLLBACK TO work"); err != nil {
			return nil, db.Classify(err)
		}
		res.Applied, res.Triggers = 0, 0
	case res.Rejected > 0:
		status = statusPartial
	}
	if _, err := conn.ExecContext(ctx, `UPDATE files SET status = ?, records = ?, rejected = ? WHERE id = ?`,
		status, res.Read, res.Rejected, fileID); err != nil {
		if db.IsUniqueViolation(err) {
			// The ledger's index: another import recorded the same content
			// as applied first (appliedBefore's lock makes this a last
			// line of defence). This one is void; the next run finds the
			// other's row and says so.
			err = fmt.Errorf("%w: the same content was applied by another import at the same time (%v)", db.ErrBusy, err)
		}
		return nil, fmt.Errorf("import %s: %w", path, db.Classify(err))
	}
	// The reject file is in place before the commit: once the ledger says
	// the file was imported, a later run skips it and would not write it.
	if res.RejectsFile, err = rj.finish(); err != nil {
		return nil, err
	}
	end := "COMMIT"
	if o.DryRun {
		end = "ROLLBACK"
	}
	if _, err := conn.ExecContext(ctx, end); err != nil {
		return nil, fmt.Errorf("import %s: %s: %w", path, strings.ToLower(end), db.Classify(err))
	}
	done = true
	return res, nil
}

// RunWithStats is Run for an upload that keeps statistics of its own
// beside the Result: upload makes it for p with the statistics to fill.
func RunWithStats[P, S any](ctx context.Context, d *db.DB, upload func(P, *S) Upload, p P, path string, o Options) (*Result, S, error) {
	var st S
	res, err := Run(ctx, d, upload(p, &st), path, o)
	return res, st, err
}

// maxWarnings is how many warnings one file's import reports: a header
// of a million unknown columns, or a million rejected records, would
// otherwise print a million lines.
const maxWarnings = 50

// capWarnings passes the first limit messages on to warn and counts the
// rest; done(file) reports how many of file's were not shown.
func capWarnings(warn func(string), limit int) (add func(string), done func(file string)) {
	n := 0
	add = func(msg string) {
		n++
		if n <= limit {
			warn(msg)
		}
	}
	done = func(file string) {
		if n > limit {
			warn(fmt.Sprintf("%s: %d more warnings not shown", file, n-limit))
		}
	}
	return add, done
}
