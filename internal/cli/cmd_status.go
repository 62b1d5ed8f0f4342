package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/ops"
)

func newStatusCmd(app *App) *cobra.Command {
	var out outputFlag
	var check bool
	var textfile string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for an operator: triggers, jobs, inboxes, transfers, and what needs attention",
		Long: `Show the state at a glance: triggers ready and in error per type with the age of
the oldest ready one, each job's last run and result and its next expected
run, files waiting in the folders of the jobs' import steps and in their error
folders, the latest transfer of each site, locks held, database size, live
records per kind, and the most recent runs. A job's last run may be a run as
a step of another job (run JOB as a step).

Needs attention (listed first, and in "attention" in JSON):
  - triggers in error, or a ready trigger older than status.max_ready_age;
  - an export file not finished (its records wait for it) started longer
    ago than status.max_ready_age: a run that died before it was finished,
    which the kind's next export finishes or undoes, or a file another host
    wrote that only it can finish (or an export with --lost-host);
  - a job whose last run failed or rejected records, or whose schedule
    expected a run (plus status.grace) that did not start;
  - a file waiting in an inbox longer than status.max_inbox_age, any file
    in an error folder (clear it once handled), or a folder that cannot be
    read;
  - a site whose latest transfer failed.

--check is for a monitoring probe: it prints only what needs attention (one
line each, or "ok") and exits 1 when anything does, 0 when nothing does.

--output openmetrics writes the same numbers as OpenMetrics text for
Prometheus (metric names posbridge_*, see docs/operations.md). --textfile PATH
writes them to PATH atomically, for node_exporter's textfile collector, and
prints nothing unless --output or --check asks for it too.`,
		Example: `  posbridge status
  posbridge status --output json
  posbridge status --check
  posbridge status --output openmetrics
  posbridge status --textfile /var/lib/node_exporter/textfile/posbridge.prom`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, jobs, d, err := app.jobsDB(ctx)
			if err != nil {
				return err
			}
			reapQuietly(ctx, d)
			rep, err := ops.Build(ctx, d, ops.Options{MaxReadyAge: cfg.Status.MaxReadyAge, MaxInboxAge: cfg.Status.MaxInboxAge,
				Grace: cfg.Status.Grace, Folders: imports.Folders{Processed: cfg.Import.ProcessedDir, Error: cfg.Import.ErrorDir},
				Jobs: jobs})
			if err != nil {
				return err
			}
			if textfile != "" {
				if err := ops.WriteTextfile(textfile, rep); err != nil {
					return err
				}
			}
			switch {
			case textfile != "" && !check && !cmd.Flags().Changed("output"):
				// A collector's timer wants the file only: nothing on
				// stdout for cron to mail.
			case out.value == "json":
				if err := writeJSON(app.Out, rep); err != nil {
					return err
				}
			case out.value == "openmetrics":
				if err := ops.WriteOpenMetrics(app.Out, rep); err != nil {
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
	out.add(cmd, "table", "json", "openmetrics")
	cmd.Flags().BoolVar(&check, "check", false, "monitoring probe: print what needs attention and exit 1 when anything does")
	cmd.Flags().StringVar(&textfile, "textfile", "", "write the metrics (OpenMetrics) to this file atomically, for node_exporter's textfile collector")
	return cmd
}

func writeStatus(app *App, rep *ops.Report) {
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
	if len(rep.Unfinished) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "UNFINISHED EXPORT", "KIND", "STATUS", "SINCE", "RUN", "HOST")
		for _, u := range rep.Unfinished {
			run, host := any("-"), "-"
			if u.RunID != 0 {
				run = u.RunID
			}
			if u.Host != "" {
				host = u.Host
			}
			t.row(u.Name, u.Kind, u.Status, u.Since, run, host)
		}
		t.flush()
	}
	if len(rep.Jobs) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "JOB", "LAST RUN", "STARTED", "RESULT", "EXIT", "NEXT", "NOTE")
		for _, j := range rep.Jobs {
			t.row(append([]any{j.Name}, jobRunCells(j.LastRun, "never run", j.Next, j.Missed, j.Running)...)...)
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
	for _, k := range ops.RecordKinds {
		t.row(k, rep.Records[k])
	}
	t.flush()
	fmt.Fprintln(w)
	t = newTable(w, "RUN", "COMMAND", "STATUS", "EXIT", "STARTED", "ERROR")
	for _, r := range rep.LastRuns {
		t.row(r.ID, r.Command, r.Status, exitText(r.ExitCode), r.Started, shorten(r.Error, 80))
	}
	t.flush()
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
