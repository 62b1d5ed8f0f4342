package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
)

// Run statuses.
const (
	RunRunning = "running"
	RunOK      = "ok"
	RunRejects = "rejects"
	RunFailed  = "failed"
)

// Run is one row of the runs table: a command that changed state, a job
// run (command "run JOB"), or a step of a job run (Parent set).
type Run struct {
	ID       int64           `json:"id"`
	Command  string          `json:"command"`
	Job      string          `json:"job,omitempty"`
	Parent   int64           `json:"parent_id,omitempty"`
	Step     int             `json:"step,omitempty"`
	Status   string          `json:"status"`
	ExitCode *int            `json:"exit_code"`
	Started  string          `json:"started_at"`
	Ended    string          `json:"ended_at,omitempty"`
	Counts   json.RawMessage `json:"counts"`
	Error    string          `json:"error,omitempty"`
	Host     string          `json:"host"`
	PID      int             `json:"pid"`
	PIDStart string          `json:"-"`
}

// Duration is how long the run took, or has been running.
func (r Run) Duration() time.Duration {
	start, err := time.Parse(db.TimeLayout, r.Started)
	if err != nil {
		return 0
	}
	end := time.Now()
	if r.Ended != "" {
		if e, err := time.Parse(db.TimeLayout, r.Ended); err == nil {
			end = e
		}
	}
	return end.Sub(start).Round(time.Second)
}

// StartRun records the start of a state-changing command and returns its id.
func StartRun(ctx context.Context, d *db.DB, command, job string) (int64, error) {
	return InsertRun(ctx, d, Run{Command: command, Job: job})
}

// InsertRun records the start of r by this process, inside the caller's
// transaction or on the database, and returns its id.
func InsertRun(ctx context.Context, q db.Querier, r Run) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `INSERT INTO runs(command, job, parent_id, step, status, started_at, host, pid, pid_start)
VALUES (?,?,?,?,?,?,?,?,?) RETURNING id`, r.Command, r.Job, db.NullID(r.Parent), r.Step, RunRunning, db.Now(), Hostname(), os.Getpid(), ProcessStart(os.Getpid())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record run: %w", db.Classify(err))
	}
	return id, nil
}

// AdoptRun makes a run row created for a job step the run of the command
// the step executes: the command text becomes the command's own.
func AdoptRun(ctx context.Context, d *db.DB, id int64, command string) error {
	_, err := d.ExecContext(ctx, `UPDATE runs SET command = ? WHERE id = ?`, command, id)
	if err != nil {
		return fmt.Errorf("record run %d: %w", id, db.Classify(err))
	}
	return nil
}

// EndRun records the end of a run with its status, counts and error text.
func EndRun(ctx context.Context, d *db.DB, id int64, status string, counts any, runErr error) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	if string(b) == "null" {
		b = []byte("{}")
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	_, err = d.ExecContext(ctx, `UPDATE runs SET status=?, ended_at=?, counts=?, error=? WHERE id=?`, status, db.Now(), string(b), msg, id)
	if err != nil {
		return fmt.Errorf("record end of run %d: %w", id, db.Classify(err))
	}
	return nil
}

// SetExitCode records the exit code a run ended with; runs that already
// have one keep it.
func SetExitCode(ctx context.Context, d *db.DB, code int, ids ...int64) error {
	for _, id := range ids {
		if _, err := d.ExecContext(ctx, `UPDATE runs SET exit_code = ? WHERE id = ? AND exit_code IS NULL`, code, id); err != nil {
			return fmt.Errorf("record exit code of run %d: %w", id, db.Classify(err))
		}
	}
	return nil
}

// Dead is a run found running whose process is gone.
type Dead struct {
	Run    Run    `json:"run"`
	Reason string `json:"reason"`
}

// ReapDead marks failed every run still "running" whose process is gone
// (same host, pid gone or reused), so a killed run is never "running"
// forever; by is the run that noticed (0: a command that records none).
// Runs of other hosts cannot be checked here: a job lock that expires
// reaps its run (see package job).
func ReapDead(ctx context.Context, d *db.DB, by int64) ([]Dead, error) {
	runs, err := ListRuns(ctx, d, RunFilter{Status: RunRunning, Steps: true})
	if err != nil {
		return nil, err
	}
	var dead []Dead
	for _, r := range runs {
		if alive, known := Alive(r.Host, r.PID, r.PIDStart); alive || !known {
			continue
		}
		reason := fmt.Sprintf("process %d on %s ended without finishing the run (killed or crashed)", r.PID, r.Host)
		if by > 0 {
			reason += fmt.Sprintf("; noticed by run %d", by)
		}
		if err := FailRun(ctx, d, r.ID, reason); err != nil {
			return dead, err
		}
		dead = append(dead, Dead{Run: r, Reason: reason})
	}
	return dead, nil
}

// FailRun marks a run that is still running as failed with reason.
func FailRun(ctx context.Context, q db.Execer, id int64, reason string) error {
	_, err := q.ExecContext(ctx, `UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ? AND status = ?`,
		RunFailed, db.Now(), reason, id, RunRunning)
	if err != nil {
		return fmt.Errorf("mark run %d failed: %w", id, db.Classify(err))
	}
	return nil
}

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	Job    string
	Status string
	// Failed selects failed runs (Status is then ignored).
	Failed bool
	// Since keeps runs started at or after it.
	Since time.Time
	// Steps includes the steps of job runs; by default only top-level
	// runs are listed, and with Job the runs of the job as a step of
	// another.
	Steps bool
	// Parent lists the steps of one run.
	Parent int64
	// Limit keeps the newest Limit runs (with Parent: the first Limit
	// steps); 0 means all.
	Limit int
}

const runColumns = `id, command, job, coalesce(parent_id, 0), step, status, exit_code, started_at, coalesce(ended_at, ''),
counts, error, host, pid, pid_start`

func scanRun(sc db.Scanner) (Run, error) {
	var r Run
	var code sql.NullInt64
	var counts string
	err := sc.Scan(&r.ID, &r.Command, &r.Job, &r.Parent, &r.Step, &r.Status, &code, &r.Started, &r.Ended,
		&counts, &r.Error, &r.Host, &r.PID, &r.PIDStart)
	if code.Valid {
		c := int(code.Int64)
		r.ExitCode = &c
	}
	if counts == "" {
		counts = "{}"
	}
	r.Counts = json.RawMessage(counts)
	return r, err
}

// ListRuns returns the runs f selects, newest first (steps of one run in
// step order).
func ListRuns(ctx context.Context, d *db.DB, f RunFilter) ([]Run, error) {
	var where []string
	var args []any
	switch {
	case f.Parent > 0:
		where = append(where, "parent_id = ?")
		args = append(args, f.Parent)
	case f.Job != "":
		// A job run as a step of another job ran too, as LastJobRuns
		// counts it: its run is that step's row, "run JOB". (job <> ''
		// lets the first branch use the partial index runs_job; the OR
		// scans the table, some 10 ms for 120,000 runs on SQLite.)
		own := "job = ? AND job <> ''"
		if !f.Steps {
			own += " AND parent_id IS NULL"
		}
		where = append(where, "(("+own+") OR (parent_id IS NOT NULL AND command = ?))")
		args = append(args, f.Job, "run "+f.Job)
	case !f.Steps:
		where = append(where, "parent_id IS NULL")
	}
	if f.Job != "" && f.Parent > 0 {
		where = append(where, "job = ?")
		args = append(args, f.Job)
	}
	status := f.Status
	if f.Failed {
		status = RunFailed
	}
	switch status {
	case "":
	case RunRunning, RunOK, RunRejects, RunFailed:
		// A literal lets SQLite use the partial index runs_running.
		where = append(where, "status = '"+status+"'")
	default:
		return nil, fmt.Errorf("list runs: unknown status %q", status)
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, f.Since.UTC().Format(db.TimeLayout))
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Parent > 0 {
		q += ` ORDER BY step, id`
	} else {
		q += ` ORDER BY id DESC`
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	runs, err := db.QueryAll(ctx, d, scanRun, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// ErrNoRun means a run id that is not in the runs table.
var ErrNoRun = errors.New("no such run")

// GetRun returns one run.
func GetRun(ctx context.Context, d *db.DB, id int64) (Run, error) {
	r, err := scanRun(d.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %d: %w", id, ErrNoRun)
	}
	if err != nil {
		return r, fmt.Errorf("read run %d: %w", id, db.Classify(err))
	}
	return r, nil
}

// LastJobRuns returns the newest run of every job that has one, by name.
// A job run as a step of another job ran too: its run is that step's row
// (command "run JOB", job and parent those of the outer run).
func LastJobRuns(ctx context.Context, d *db.DB) (map[string]Run, error) {
	type named struct {
		Run
		name string
	}
	runs, err := db.QueryAll(ctx, d, func(sc db.Scanner) (named, error) {
		var n named
		var err error
		n.Run, err = scanRun(rowWithName{sc, &n.name})
		return n, err
	}, `WITH job_runs(name, id) AS (
  SELECT job, id FROM runs WHERE job <> '' AND parent_id IS NULL
  UNION ALL SELECT substr(command, 5), id FROM runs WHERE parent_id IS NOT NULL AND substr(command, 1, 4) = 'run ')
SELECT `+runColumns+`, last.name FROM runs JOIN (SELECT name, max(id) AS id FROM job_runs GROUP BY name) last USING (id)`)
	if err != nil {
		return nil, fmt.Errorf("last job runs: %w", err)
	}
	out := map[string]Run{}
	for _, r := range runs {
		out[r.name] = r.Run
	}
	return out, nil
}

// rowWithName scans the columns of scanRun and then one more, the name.
type rowWithName struct {
	sc   db.Scanner
	name *string
}

func (r rowWithName) Scan(dest ...any) error { return r.sc.Scan(append(dest, r.name)...) }

// Activity is what a run moved: files in and out of the file ledger and
// transfers, with their records and rejects.
type Activity struct {
	FilesIn   int64 `json:"files_in"`
	FilesOut  int64 `json:"files_out"`
	Records   int64 `json:"records"`
	Rejected  int64 `json:"rejected"`
	Transfers int64 `json:"transfers"`
	// TransfersFailed counts transfers that failed for good.
	TransfersFailed int64 `json:"transfers_failed"`
}

// RunActivity sums the files and transfers recorded by run id.
func RunActivity(ctx context.Context, d *db.DB, id int64) (Activity, error) {
	var a Activity
	err := d.QueryRowContext(ctx, `SELECT
 count(*) FILTER (WHERE direction = 'in'), count(*) FILTER (WHERE direction = 'out'), CAST(coalesce(sum(records), 0) AS BIGINT), CAST(coalesce(sum(rejected), 0) AS BIGINT)
FROM files WHERE run_id = ?`, id).Scan(&a.FilesIn, &a.FilesOut, &a.Records, &a.Rejected)
	if err != nil {
		return a, fmt.Errorf("files of run %d: %w", id, db.Classify(err))
	}
	err = d.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
FROM transfers WHERE run_id = ?`, id).Scan(&a.Transfers, &a.TransfersFailed)
	if err != nil {
		return a, fmt.Errorf("transfers of run %d: %w", id, db.Classify(err))
	}
	return a, nil
}

// TreeActivity sums the files and transfers of run id and of every run
// below it (the steps of a job, and theirs).
func TreeActivity(ctx context.Context, d *db.DB, id int64) (Activity, error) {
	// The cast gives the parameter the type of the ids, which PostgreSQL
	// does not infer from a UNION.
	const tree = `WITH RECURSIVE tree(id) AS (SELECT CAST(? AS BIGINT) UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id)`
	var a Activity
	err := d.QueryRowContext(ctx, tree+` SELECT
 count(*) FILTER (WHERE direction = 'in'), count(*) FILTER (WHERE direction = 'out'), CAST(coalesce(sum(records), 0) AS BIGINT), CAST(coalesce(sum(rejected), 0) AS BIGINT)
FROM files WHERE run_id IN (SELECT id FROM tree)`, id).Scan(&a.FilesIn, &a.FilesOut, &a.Records, &a.Rejected)
	if err != nil {
		return a, fmt.Errorf("files of run %d: %w", id, db.Classify(err))
	}
	err = d.QueryRowContext(ctx, tree+` SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
FROM transfers WHERE run_id IN (SELECT id FROM tree)`, id).Scan(&a.Transfers, &a.TransfersFailed)
	if err != nil {
		return a, fmt.Errorf("transfers of run %d: %w", id, db.Classify(err))
	}
	return a, nil
}

// Add sums two activities.
func (a Activity) Add(b Activity) Activity {
	return Activity{a.FilesIn + b.FilesIn, a.FilesOut + b.FilesOut, a.Records + b.Records, a.Rejected + b.Rejected,
		a.Transfers + b.Transfers, a.TransfersFailed + b.TransfersFailed}
}

// RunFiles returns the files run id recorded.
func RunFiles(ctx context.Context, d *db.DB, id int64) ([]File, error) {
	out := []File{}
	err := ListFiles(ctx, d, FileFilter{RunID: id}, func(f File, msg string) error {
		f.Error = msg
		out = append(out, f)
		return nil
	})
	return out, err
}

// RunTransfers returns the transfers run id recorded.
func RunTransfers(ctx context.Context, d *db.DB, id int64) ([]Transfer, error) {
	out := []Transfer{}
	err := ListTransfers(ctx, d, TransferFilter{RunID: id}, func(t Transfer) error {
		out = append(out, t)
		return nil
	})
	return out, err
}

// PurgeRuns deletes the runs that ended before before, with their steps
// (a run whose steps did not all end stays), and returns how many rows
// went. Files and transfers they recorded stay in their ledgers, without
// the run. A dry run only counts.
func PurgeRuns(ctx context.Context, d *db.DB, before time.Time, dryRun bool) (int64, error) {
	cutoff := before.UTC().Format(db.TimeLayout)
	var n int64
	err := d.Tx(ctx, !dryRun, func(conn *sql.Conn) error {
		// The top-level runs that ended before the cutoff, and everything
		// below them; none of it may still be running. A run that left an
		// export file written but not finished stays, with the runs above
		// it: the run's host is the host that can finish the file
		// (export's recovery); without its run, any host took the file
		// for its own and marked its records sent.
		const tree = `WITH RECURSIVE left_file(id) AS (
  SELECT run_id FROM files WHERE direction = 'out' AND status IN ('writing', 'written') AND run_id IS NOT NULL
  UNION SELECT r.parent_id FROM runs r JOIN left_file u ON r.id = u.id WHERE r.parent_id IS NOT NULL),
old(id) AS (
  SELECT id FROM runs r WHERE parent_id IS NULL AND status <> 'running' AND ended_at < ?1
    AND NOT EXISTS (SELECT 1 FROM locks l WHERE l.run_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM left_file u WHERE u.id = r.id)
  UNION SELECT r.id FROM runs r JOIN old o ON r.parent_id = o.id)`
		if err := conn.QueryRowContext(ctx, tree+` SELECT count(*) FROM old`, cutoff).Scan(&n); err != nil {
			return db.Classify(err)
		}
		if dryRun || n == 0 {
			return nil
		}
		if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE purge_runs(id INTEGER PRIMARY KEY)`); err != nil {
			return db.Classify(err)
		}
		// Unqualified, the name finds the temporary table first on both
		// engines (SQLite's temp, PostgreSQL's pg_temp).
		defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS purge_runs`)
		if _, err := conn.ExecContext(ctx, tree+` INSERT INTO purge_runs SELECT id FROM old`, cutoff); err != nil {
			return db.Classify(err)
		}
		for _, q := range []string{
			`UPDATE files SET run_id = NULL WHERE run_id IN (SELECT id FROM purge_runs)`,
			`UPDATE transfers SET run_id = NULL WHERE run_id IN (SELECT id FROM purge_runs)`,
			`UPDATE http_deliveries SET run_id = NULL WHERE run_id IN (SELECT id FROM purge_runs)`,
			// One statement: a step points at its parent, and the foreign
			// key is checked at the end of the statement.
			`DELETE FROM runs WHERE id IN (SELECT id FROM purge_runs)`,
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("purge runs: %w", db.Classify(err))
			}
		}
		return nil
	})
	return n, err
}
