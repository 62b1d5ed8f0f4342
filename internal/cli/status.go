package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// statusReport is what posbridge status shows.
type statusReport struct {
	Database      string              `json:"database"`
	SchemaVersion int                 `json:"schema_version"`
	SizeBytes     int64               `json:"size_bytes"`
	Records       map[string]int64    `json:"records"`
	Triggers      []triggerStatus     `json:"triggers"`
	Jobs          []jobStatus         `json:"jobs"`
	Folders       []folderStatus      `json:"folders"`
	Sites         []ledger.SiteHealth `json:"sites"`
	Locks         []job.Lock          `json:"locks"`
	LastRuns      []ledger.Run        `json:"last_runs"`
	// Attention lists what an operator should look at; empty when all is
	// well. status --check exits 1 when it is not empty.
	Attention []string `json:"attention"`
}

// triggerStatus is one trigger type: how many wait, how many failed, and
// how long the oldest waiting one has waited (in seconds).
type triggerStatus struct {
	trigger.Pending
	OldestReadyAge int64 `json:"oldest_ready_age_s"`
}

type jobStatus struct {
	Name     string      `json:"name"`
	Schedule string      `json:"schedule,omitempty"`
	LastRun  *ledger.Run `json:"last_run"`
	Next     string      `json:"next_expected,omitempty"`
	Missed   string      `json:"missed,omitempty"`
	Running  *job.Lock   `json:"running,omitempty"`
}

// folderStatus is an inbox of a job's import step or its error folder.
type folderStatus struct {
	Job  string `json:"job"`
	Role string `json:"role"` // inbox or error
	Path string `json:"path"`
	// Files are the files in it (an inbox: the ones an import would take).
	Files     int    `json:"files"`
	Oldest    string `json:"oldest,omitempty"`
	OldestAge int64  `json:"oldest_age_s"`
	Error     string `json:"error,omitempty"`
}

func newStatusCmd(app *App) *cobra.Command {
	var out outputFlag
	var check bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for an operator: triggers, jobs, inboxes, transfers, and what needs attention",
		Long: `Show the state at a glance: triggers ready and in error per type with the age of
the oldest ready one, each job's last run and result and its next expected
run, files waiting in the folders of the jobs' import steps and in their error
folders, the latest transfer of each site, locks held, database size, live
records per kind, and the most recent runs.

Needs attention (listed first, and in "attention" in JSON):
  - triggers in error, or a ready trigger older than status.max_ready_age;
  - a job whose last run failed or rejected records, or whose schedule
    expected a run (plus status.grace) that did not start;
  - a file waiting in an inbox longer than status.max_inbox_age, or any file
    in an error folder (clear it once handled);
  - a site whose latest transfer failed.

--check is for a monitoring probe: it prints only what needs attention (one
line each, or "ok") and exits 1 when anything does, 0 when nothing does.`,
		Example: `  posbridge status
  posbridge status --output json
  posbridge status --check`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, jobs, err := app.Jobs()
			if err != nil {
				return err
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			reapQuietly(ctx, d)
			rep, err := buildStatus(ctx, cfg, jobs, d)
			if err != nil {
				return err
			}
			switch {
			case out.value == "json":
				if err := writeJSON(app.Out, rep); err != nil {
					return err
				}
			case check:
				for _, a := range rep.Attention {
					fmt.Fprintln(app.Out, "attention:", a)
				}
				if len(rep.Attention) == 0 {
					fmt.Fprintln(app.Out, "ok: nothing needs attention")
				}
			default:
				writeStatus(app, rep)
			}
			if check && len(rep.Attention) > 0 {
				return fmt.Errorf("%w: %d thing(s)", errAttention, len(rep.Attention))
			}
			return nil
		},
	}
	out.add(cmd, "table", "json")
	cmd.Flags().BoolVar(&check, "check", false, "monitoring probe: print what needs attention and exit 1 when anything does")
	return cmd
}

func writeStatus(app *App, rep *statusReport) {
	w := app.Out
	fmt.Fprintf(w, "database %s (schema %d, %s)\n\n", rep.Database, rep.SchemaVersion, humanBytes(rep.SizeBytes))
	if len(rep.Attention) == 0 {
		fmt.Fprintln(w, "nothing needs attention")
	}
	for _, a := range rep.Attention {
		fmt.Fprintln(w, "ATTENTION:", a)
	}
	fmt.Fprintln(w)
	t := newTable(w, "TRIGGERS", "READY", "ERROR", "OLDEST READY")
	if len(rep.Triggers) == 0 {
		t.row("-", 0, 0, "-")
	}
	for _, c := range rep.Triggers {
		oldest := "-"
		if c.OldestReady != "" {
			oldest = age(c.OldestReady)
		}
		t.row(c.FileCode, c.Ready, c.Error, oldest)
	}
	t.flush()
	if len(rep.Jobs) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "JOB", "LAST RUN", "STARTED", "RESULT", "EXIT", "NEXT", "NOTE")
		for _, j := range rep.Jobs {
			run, started, result, exit := "-", "-", "never run", "-"
			if r := j.LastRun; r != nil {
				run, started, result, exit = fmt.Sprint(r.ID), r.Started, r.Status, exitText(r.ExitCode)
			}
			note := ""
			switch {
			case j.Running != nil:
				note = fmt.Sprintf("running: run %d, pid %d on %s", j.Running.RunID, j.Running.PID, j.Running.Host)
			case j.Missed != "":
				note = "MISSED run expected at " + j.Missed
			}
			t.row(j.Name, run, started, result, exit, dash(j.Next), note)
		}
		t.flush()
	}
	if len(rep.Folders) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "FOLDER", "JOB", "ROLE", "FILES", "OLDEST")
		for _, f := range rep.Folders {
			oldest := "-"
			if f.Oldest != "" {
				oldest = age(f.Oldest)
			}
			if f.Error != "" {
				oldest = f.Error
			}
			t.row(f.Path, f.Job, f.Role, f.Files, oldest)
		}
		t.flush()
	}
	if len(rep.Sites) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "SITE", "LAST TRANSFER", "STATUS", "FAILED IN A ROW", "ERROR")
		for _, s := range rep.Sites {
			t.row(s.Site, s.Last, s.LastStatus, s.FailedInRow, shorten(s.LastError, 80))
		}
		t.flush()
	}
	if len(rep.Locks) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "LOCK", "JOB", "RUN", "PID", "HOST", "SINCE", "EXPIRES")
		for _, l := range rep.Locks {
			t.row(l.Name, l.Job, l.RunID, l.PID, l.Host, l.AcquiredAt, l.ExpiresAt)
		}
		t.flush()
	}
	fmt.Fprintln(w)
	t = newTable(w, "RECORDS", "LIVE")
	for _, k := range recordKinds {
		t.row(k.name, rep.Records[k.name])
	}
	t.flush()
	fmt.Fprintln(w)
	t = newTable(w, "RUN", "COMMAND", "STATUS", "EXIT", "STARTED", "ERROR")
	for _, r := range rep.LastRuns {
		t.row(r.ID, r.Command, r.Status, exitText(r.ExitCode), r.Started, shorten(r.Error, 80))
	}
	t.flush()
}

var recordKinds = []struct{ name, query string }{
	{"warehouses", `SELECT count(*) FROM warehouses`},
	{"vendors", `SELECT count(*) FROM vendors WHERE deleted_at IS NULL`},
	{"items", `SELECT count(*) FROM items WHERE deleted_at IS NULL`},
	{"skus", `SELECT count(*) FROM skus WHERE deleted_at IS NULL`},
	{"customers", `SELECT count(*) FROM customers WHERE deleted_at IS NULL`},
	{"invoices", `SELECT count(*) FROM invoices WHERE deleted_at IS NULL`},
	{"inventory", `SELECT count(*) FROM inventory`},
	{"stores", `SELECT count(*) FROM stores`},
}

func buildStatus(ctx context.Context, cfg *config.Config, jobs *job.Set, d *db.DB) (*statusReport, error) {
	rep := &statusReport{Database: d.Path, Records: map[string]int64{}, Triggers: []triggerStatus{}, Jobs: []jobStatus{},
		Folders: []folderStatus{}, Sites: []ledger.SiteHealth{}, Attention: []string{}}
	now := time.Now()
	attention := func(format string, args ...any) { rep.Attention = append(rep.Attention, fmt.Sprintf(format, args...)) }
	var err error
	if rep.SchemaVersion, err = d.Version(ctx); err != nil {
		return nil, err
	}
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(d.Path + suffix); err == nil {
			rep.SizeBytes += st.Size()
		}
	}
	for _, k := range recordKinds {
		var n int64
		if err := d.QueryRowContext(ctx, k.query).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", k.name, db.Classify(err))
		}
		rep.Records[k.name] = n
	}

	pending, err := trigger.PendingSummary(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		t := triggerStatus{Pending: p}
		if ts, err := time.Parse(db.TimeLayout, p.OldestReady); err == nil {
			t.OldestReadyAge = int64(now.Sub(ts).Seconds())
		}
		rep.Triggers = append(rep.Triggers, t)
	}
	for _, t := range rep.Triggers {
		if t.Error > 0 {
			attention("%d %s trigger(s) in error (posbridge trigger list --status error)", t.Error, t.FileCode)
		}
		if time.Duration(t.OldestReadyAge)*time.Second > cfg.Status.MaxReadyAge {
			attention("%s triggers waiting: the oldest ready one is %s old (status.max_ready_age %s); is its export running?",
				t.FileCode, time.Duration(t.OldestReadyAge)*time.Second, cfg.Status.MaxReadyAge)
		}
	}

	// Jobs: last run, schedule, inboxes.
	views, err := buildJobViews(ctx, cfg, jobs, d)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		js := jobStatus{Name: v.Name, Schedule: v.Schedule, LastRun: v.LastRun, Next: v.Next, Missed: v.Missed, Running: v.Running}
		rep.Jobs = append(rep.Jobs, js)
		if r := v.LastRun; r != nil && v.Running == nil {
			switch r.Status {
			case ledger.RunFailed:
				attention("job %s: last run %d failed (exit %s): %s (posbridge runs show %d)", v.Name, r.ID, exitText(r.ExitCode),
					shorten(r.Error, 200), r.ID)
			case ledger.RunRejects:
				attention("job %s: last run %d rejected records (posbridge runs show %d)", v.Name, r.ID, r.ID)
			}
		}
		if v.Missed != "" {
			attention("job %s: a run was expected at %s (schedule %q) and none started; is cron or the timer running?",
				v.Name, v.Missed, v.Schedule)
		}
	}
	folders := imports.Folders{Processed: cfg.Import.ProcessedDir, Error: cfg.Import.ErrorDir}
	seen := map[string]bool{}
	for _, name := range sortedKeys(cfg.Jobs) {
		p, err := jobs.Get(name)
		if err != nil {
			return nil, err
		}
		for _, inbox := range p.Inboxes() {
			for _, f := range []folderStatus{{Job: name, Role: "inbox", Path: inbox}, {Job: name, Role: "error", Path: folders.ErrorDir(inbox)}} {
				key := f.Role + "\x00" + filepath.Clean(f.Path)
				if seen[key] {
					continue
				}
				seen[key] = true
				scanFolder(&f, now)
				rep.Folders = append(rep.Folders, f)
				switch {
				case f.Error != "":
					attention("%s folder %s of job %s: %s", f.Role, f.Path, f.Job, f.Error)
				case f.Role == "error" && f.Files > 0:
					attention("%d file(s) in the error folder %s (job %s): look at them and their .rejects.csv, then move them away",
						f.Files, f.Path, f.Job)
				case f.Role == "inbox" && time.Duration(f.OldestAge)*time.Second > cfg.Status.MaxInboxAge:
					attention("%d file(s) waiting in %s (job %s), the oldest for %s (status.max_inbox_age %s); is the job running?",
						f.Files, f.Path, f.Job, time.Duration(f.OldestAge)*time.Second, cfg.Status.MaxInboxAge)
				}
			}
		}
	}

	if rep.Sites, err = ledger.SitesHealth(ctx, d); err != nil {
		return nil, err
	}
	for _, s := range rep.Sites {
		if s.LastStatus == ledger.TransferFailed {
			attention("site %s: %d transfer(s) failed since the last one that worked: %s (posbridge transfers list --site %s --status failed)",
				s.Site, s.FailedInRow, shorten(s.LastError, 200), s.Site)
		}
	}

	if rep.Locks, err = job.Locks(ctx, d); err != nil {
		return nil, err
	}
	if rep.LastRuns, err = ledger.ListRuns(ctx, d, ledger.RunFilter{Limit: 10}); err != nil {
		return nil, err
	}
	return rep, nil
}

// scanFolder counts the files of f.Path: for an inbox the ones an import
// would take, for an error folder every file but hidden ones.
func scanFolder(f *folderStatus, now time.Time) {
	var names []string
	var err error
	if f.Role == "inbox" {
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

// age shows how long ago a stored timestamp was.
func age(ts string) string {
	t, err := time.Parse(db.TimeLayout, ts)
	if err != nil {
		return ts
	}
	return time.Since(t).Round(time.Second).String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
