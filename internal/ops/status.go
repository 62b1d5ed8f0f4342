// Package ops is the operator's view of a posbridge installation: the
// numbers posbridge status shows, the rules that say what needs attention
// (status --check), and the same numbers as OpenMetrics for Prometheus.
// The table, the check and the metrics are built from one Report, so they
// cannot disagree.
package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Options are the thresholds of the attention rules and what to look at;
// the CLI fills them from the config's status: and import: settings.
type Options struct {
	// MaxReadyAge: a ready trigger older than this is late.
	MaxReadyAge time.Duration
	// MaxInboxAge: a file waiting in an inbox longer than this is stuck.
	MaxInboxAge time.Duration
	// Grace is how late a scheduled job may start before it is missed.
	Grace time.Duration
	// Folders says where an inbox's error folder is.
	Folders imports.Folders
	// Jobs are the configured jobs.
	Jobs *job.Set
	// Now is the time ages are measured at; zero means time.Now().
	Now time.Time
}

// Report is what posbridge status shows.
type Report struct {
	Database      string              `json:"database"`
	SchemaVersion int                 `json:"schema_version"`
	SizeBytes     int64               `json:"size_bytes"`
	Records       map[string]int64    `json:"records"`
	Triggers      []TriggerStatus     `json:"triggers"`
	Unfinished    []UnfinishedExport  `json:"unfinished_exports"`
	Jobs          []JobStatus         `json:"jobs"`
	Folders       []FolderStatus      `json:"folders"`
	Sites         []ledger.SiteHealth `json:"sites"`
	Locks         []job.Lock          `json:"locks"`
	LastRuns      []ledger.Run        `json:"last_runs"`
	// Attention lists what an operator should look at; empty when all is
	// well. status --check exits 1 when it is not empty.
	Attention []string `json:"attention"`
	// At is when the report was made.
	At time.Time `json:"-"`
}

// TriggerStatus is one trigger type: how many wait, how many failed, and
// how long the oldest waiting one has waited (in seconds).
type TriggerStatus struct {
	trigger.Pending
	OldestReadyAge int64 `json:"oldest_ready_age_s"`
}

// UnfinishedExport is an export file not finished, whose records wait
// for it: how long since it was started, and whether another host wrote
// it (only that host can finish it, or the operator give the host up).
type UnfinishedExport struct {
	trigger.UnfinishedFile
	AgeSeconds int64 `json:"age_s"`
	OtherHost  bool  `json:"other_host"`
}

// JobStatus is a job's line of the status report.
type JobStatus struct {
	Name     string      `json:"name"`
	Schedule string      `json:"schedule,omitempty"`
	LastRun  *ledger.Run `json:"last_run"`
	Next     string      `json:"next_expected,omitempty"`
	Missed   string      `json:"missed,omitempty"`
	Running  *job.Lock   `json:"running,omitempty"`
}

// Folder roles.
const (
	RoleInbox = "inbox"
	RoleError = "error"
)

// FolderStatus is an inbox of a job's import step or its error folder.
type FolderStatus struct {
	Job  string `json:"job"`
	Role string `json:"role"` // RoleInbox or RoleError
	Path string `json:"path"`
	// Files are the files in it (an inbox: the ones an import would take).
	Files     int    `json:"files"`
	Oldest    string `json:"oldest,omitempty"`
	OldestAge int64  `json:"oldest_age_s"`
	Error     string `json:"error,omitempty"`
}

// RecordKinds are the kinds of live records the report counts, in the
// order status shows them.
var RecordKinds = []string{"warehouses", "vendors", "items", "skus", "customers", "invoices", "inventory", "stores"}

// recordQueries count the live records of each of RecordKinds.
var recordQueries = map[string]string{
	"warehouses": `SELECT count(*) FROM warehouses`,
	"vendors":    `SELECT count(*) FROM vendors WHERE deleted_at IS NULL`,
	"items":      `SELECT count(*) FROM items WHERE deleted_at IS NULL`,
	"skus":       `SELECT count(*) FROM skus WHERE deleted_at IS NULL`,
	"customers":  `SELECT count(*) FROM customers WHERE deleted_at IS NULL`,
	"invoices":   `SELECT count(*) FROM invoices WHERE deleted_at IS NULL`,
	"inventory":  `SELECT count(*) FROM inventory`,
	"stores":     `SELECT count(*) FROM stores`,
}

// Build reads the state of the database and of the jobs' folders and
// applies the attention rules.
func Build(ctx context.Context, d *db.DB, o Options) (*Report, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := &Report{Database: d.Path, Records: map[string]int64{}, Triggers: []TriggerStatus{}, Unfinished: []UnfinishedExport{}, Jobs: []JobStatus{},
		Folders: []FolderStatus{}, Sites: []ledger.SiteHealth{}, At: now}
	var err error
	if rep.SchemaVersion, err = d.Version(ctx); err != nil {
		return nil, err
	}
	if rep.SizeBytes, err = databaseSize(ctx, d); err != nil {
		return nil, err
	}
	for _, k := range RecordKinds {
		var n int64
		if err := d.QueryRowContext(ctx, recordQueries[k]).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", k, db.Classify(err))
		}
		rep.Records[k] = n
	}

	pending, err := trigger.PendingSummary(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		t := TriggerStatus{Pending: p}
		if ts, err := time.Parse(db.TimeLayout, p.OldestReady); err == nil {
			t.OldestReadyAge = int64(now.Sub(ts).Seconds())
		}
		rep.Triggers = append(rep.Triggers, t)
	}

	files, err := trigger.UnfinishedFiles(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		u := UnfinishedExport{UnfinishedFile: f}
		if ts, err := time.Parse(db.TimeLayout, f.Since); err == nil {
			u.AgeSeconds = int64(now.Sub(ts).Seconds())
		}
		// A SQLite database is one host's, whatever it was called when
		// it wrote the file (export's recovery decides alike).
		u.OtherHost = d.Dialect == db.Postgres && f.Host != "" && f.Host != ledger.Hostname()
		rep.Unfinished = append(rep.Unfinished, u)
	}

	views, err := JobViews(ctx, d, o.Jobs, o.Grace, now)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		rep.Jobs = append(rep.Jobs, JobStatus{Name: v.Name, Schedule: v.Schedule, LastRun: v.LastRun, Next: v.Next,
			Missed: v.Missed, Running: v.Running})
	}

	seen := map[string]bool{}
	for _, name := range o.Jobs.Names() {
		p, err := o.Jobs.Get(name)
		if err != nil {
			return nil, err
		}
		for _, inbox := range p.Inboxes() {
			for _, f := range []FolderStatus{{Job: name, Role: RoleInbox, Path: inbox}, {Job: name, Role: RoleError, Path: o.Folders.ErrorDir(inbox)}} {
				key := f.Role + "\x00" + filepath.Clean(f.Path)
				if seen[key] {
					continue
				}
				seen[key] = true
				scanFolder(&f, now)
				rep.Folders = append(rep.Folders, f)
			}
		}
	}

	if rep.Sites, err = ledger.SitesHealth(ctx, d); err != nil {
		return nil, err
	}
	if rep.Locks, err = job.Locks(ctx, d); err != nil {
		return nil, err
	}
	if rep.LastRuns, err = ledger.ListRuns(ctx, d, ledger.RunFilter{Limit: 10}); err != nil {
		return nil, err
	}
	rep.Attention = Attention(rep, o)
	return rep, nil
}

// Attention applies the attention rules to the numbers of a report: one
// line per thing an operator should look at, in report order. Each rule
// has its alert rule on the metrics in docs/operations.md.
func Attention(rep *Report, o Options) []string {
	lines := []string{}
	attention := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	for _, t := range rep.Triggers {
		if t.Error > 0 {
			attention("%d %s trigger(s) in error (posbridge trigger list --status error)", t.Error, t.FileCode)
		}
		if age := time.Duration(t.OldestReadyAge) * time.Second; age > o.MaxReadyAge {
			attention("%s triggers waiting: the oldest ready one is %s old (status.max_ready_age %s); is its export running?",
				t.FileCode, age, o.MaxReadyAge)
		}
	}
	for _, u := range rep.Unfinished {
		age := time.Duration(u.AgeSeconds) * time.Second
		if age <= o.MaxReadyAge {
			continue
		}
		if u.OtherHost {
			attention("export file %s (%s) not finished for %s: host %s wrote it (%s since %s); its records wait for %s's next export of %s, or, if %s is gone for good, an export of %s here with --lost-host %s",
				u.Name, u.Kind, age, u.Host, u.Status, u.Since, u.Host, u.Kind, u.Host, u.Kind, u.Host)
			continue
		}
		attention("export file %s (%s) not finished for %s (%s since %s): its records wait for the next export of %s, which finishes or undoes it; is it running?",
			u.Name, u.Kind, age, u.Status, u.Since, u.Kind)
	}
	for _, j := range rep.Jobs {
		if r := j.LastRun; r != nil && j.Running == nil {
			switch r.Status {
			case ledger.RunFailed:
				attention("job %s: last run %d failed (exit %s): %s (posbridge runs show %d)", j.Name, r.ID, exitText(r.ExitCode),
					clip(r.Error, 200), r.ID)
			case ledger.RunRejects:
				attention("job %s: last run %d rejected records (posbridge runs show %d)", j.Name, r.ID, r.ID)
			}
		}
		if j.Missed != "" {
			attention("job %s: a run was expected at %s (schedule %q) and none started; is cron or the timer running?",
				j.Name, j.Missed, j.Schedule)
		}
	}
	for _, f := range rep.Folders {
		switch {
		case f.Error != "":
			attention("%s folder %s of job %s: %s", f.Role, f.Path, f.Job, f.Error)
		case f.Role == RoleError && f.Files > 0:
			attention("%d file(s) in the error folder %s (job %s): look at them and their .rejects.csv, then move them away",
				f.Files, f.Path, f.Job)
		case f.Role == RoleInbox && time.Duration(f.OldestAge)*time.Second > o.MaxInboxAge:
			attention("%d file(s) waiting in %s (job %s), the oldest for %s (status.max_inbox_age %s); is the job running?",
				f.Files, f.Path, f.Job, time.Duration(f.OldestAge)*time.Second, o.MaxInboxAge)
		}
	}
	for _, s := range rep.Sites {
		if s.LastStatus == ledger.TransferFailed {
			attention("site %s: %d transfer(s) failed since the last one that worked: %s (posbridge transfers list --site %s --status failed)",
				s.Site, s.FailedInRow, clip(s.LastError, 200), s.Site)
		}
	}
	return lines
}

// databaseSize is DatabaseSize of a SQLite database, or the size
// PostgreSQL gives its database (which has no file here).
func databaseSize(ctx context.Context, d *db.DB) (int64, error) {
	if d.Dialect != db.Postgres {
		return DatabaseSize(d.Path), nil
	}
	in, err := d.Info(ctx)
	return in.SizeBytes, err
}

// DatabaseSize is the size of the database file and its write-ahead log:
// what the database takes on disk between checkpoints.
func DatabaseSize(path string) int64 {
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(path + suffix); err == nil {
			n += st.Size()
		}
	}
	return n
}

// JobView is a job as jobs list shows it.
type JobView struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Schedule    string      `json:"schedule,omitempty"`
	Steps       []string    `json:"steps"`
	Locks       []string    `json:"locks"`
	LastRun     *ledger.Run `json:"last_run"`
	Next        string      `json:"next_expected,omitempty"`
	// Missed is when a run was expected but none started.
	Missed string `json:"missed,omitempty"`
	// Running is the run holding the job's lock now.
	Running *job.Lock `json:"running,omitempty"`
}

// JobViews returns every job with its last run (a run as a step of
// another job counts), the next run its schedule expects, whether a run
// it expected did not start (allowing grace), and the run going on now.
// now is the time the schedules are read at (this host's clock, as
// cron's); the leases of the locks are judged by job.LeaseNow.
func JobViews(ctx context.Context, d *db.DB, jobs *job.Set, grace time.Duration, now time.Time) ([]JobView, error) {
	last, err := ledger.LastJobRuns(ctx, d)
	if err != nil {
		return nil, err
	}
	locks, err := job.Locks(ctx, d)
	if err != nil {
		return nil, err
	}
	// A lease is judged by the clock the locks are taken by (the
	// database's on PostgreSQL), so that a host whose clock is off shows
	// the runs the locks say are going on.
	leaseNow, err := job.LeaseNow(ctx, d)
	if err != nil {
		return nil, err
	}
	views := []JobView{}
	for _, name := range jobs.Names() {
		p, err := jobs.Get(name)
		if err != nil {
			return nil, err
		}
		v := JobView{Name: name, Description: p.Job.Description, Schedule: p.Job.Schedule, Locks: p.Locks, Steps: []string{}}
		for _, s := range p.Steps {
			v.Steps = append(v.Steps, s.String())
		}
		if r, ok := last[name]; ok {
			v.LastRun = &r
		}
		for _, l := range locks {
			// The lock of a dead run is not a run going on; the next run
			// takes it over.
			if l.Name == "job:"+name && l.Stale(leaseNow) == "" {
				v.Running = &l
			}
		}
		if p.Job.Schedule != "" {
			sched, err := job.ParseSchedule(p.Job.Schedule)
			if err != nil {
				return nil, fmt.Errorf("job %s: %w", name, err)
			}
			v.Next = sched.Next(now).UTC().Format(db.TimeLayout)
			if v.LastRun != nil && v.Running == nil {
				start, err := time.Parse(db.TimeLayout, v.LastRun.Started)
				if err != nil {
					return nil, fmt.Errorf("job %s: run %d: start time %q: %w", name, v.LastRun.ID, v.LastRun.Started, err)
				}
				if at, missed := sched.Missed(start, now, grace); missed {
					v.Missed = at.UTC().Format(db.TimeLayout)
				}
			}
		}
		views = append(views, v)
	}
	return views, nil
}

// scanFolder counts the files of f.Path: for an inbox the ones an import
// would take, for an error folder every file but hidden ones.
func scanFolder(f *FolderStatus, now time.Time) {
	var names []string
	var err error
	if f.Role == RoleInbox {
		names, err = imports.Waiting(f.Path)
	} else {
		var entries []os.DirEntry
		entries, err = os.ReadDir(f.Path)
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return // an error folder that was never needed
		}
		f.Error = err.Error()
		return
	}
	var oldest time.Time
	for _, n := range names {
		st, err := os.Stat(filepath.Join(f.Path, n))
		if err != nil {
			continue
		}
		f.Files++
		if oldest.IsZero() || st.ModTime().Before(oldest) {
			oldest = st.ModTime()
		}
	}
	if !oldest.IsZero() {
		f.Oldest = oldest.UTC().Format(db.TimeLayout)
		f.OldestAge = int64(now.Sub(oldest).Seconds())
	}
}

// exitText is a run's exit code, or "-" while it has none.
func exitText(code *int) string {
	if code == nil {
		return "-"
	}
	return strconv.Itoa(*code)
}

// clip keeps an error quoted in an attention line to n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
