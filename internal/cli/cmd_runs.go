package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// parseSince reads --since: a duration back from now (24h, 90m, 7d) or a
// date or timestamp (2026-11-23, 2026-11-23T06:00:00Z).
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return time.Now().Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr("--since %q: want a duration back from now (24h, 7d) or a date (2026-11-23) or time (2026-11-23T06:00:00Z)", s)
}

func newRunsCmd(app *App) *cobra.Command {
	var f ledger.RunFilter
	var since string
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List recorded runs, newest first",
		Long: `List the runs of commands that changed state and of jobs, newest first. Steps of
job runs are left out unless --steps is given (runs show RUN lists them).
--job JOB lists JOB's runs, also where another job ran JOB as a step (that
step's row, under the outer job's name). A run found "running" whose process
is gone is marked failed first.`,
		Example: `  posbridge runs list --job item-download --since 24h
  posbridge runs list --failed
  posbridge runs list --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var err error
			if f.Since, err = parseSince(since); err != nil {
				return err
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			reapQuietly(ctx, d)
			runs, err := ledger.ListRuns(ctx, d, f)
			if err != nil {
				return err
			}
			if len(runs) == 0 && out.value == "table" {
				fmt.Fprintln(app.Out, "no runs")
				return nil
			}
			w := app.newRecords(out.value, "run", "job", "command", "status", "exit", "started", "duration", "error")
			for _, r := range runs {
				errText := r.Error
				if out.value == "table" {
					errText = shorten(errText, 80)
				}
				if err := w.add(r, r.ID, dash(r.Job), r.Command, r.Status, exitText(r.ExitCode), r.Started, r.Duration(), errText); err != nil {
					return err
				}
			}
			return w.close()
		},
	}
	lf := list.Flags()
	lf.StringVar(&f.Job, "job", "", "only runs of this job (also as a step of another job)")
	lf.BoolVar(&f.Failed, "failed", false, "only failed runs")
	lf.StringVar(&since, "since", "", "only runs started since: a duration back (24h, 7d) or a date/time")
	lf.BoolVar(&f.Steps, "steps", false, "include the steps of job runs")
	lf.IntVar(&f.Limit, "limit", 50, "at most this many runs, newest first (0: all)")
	out.add(list, "table", "json", "csv")

	var showOut outputFlag
	show := &cobra.Command{
		Use:   "show RUN",
		Short: "Show one run: every step with its counts, files in and out, transfers and errors",
		Example: `  posbridge runs show 42
  posbridge runs show 42 --output json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErr("run id %q: want a positive number (see runs list)", args[0])
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			reapQuietly(ctx, d)
			v, err := buildRunView(ctx, d, id)
			if err != nil {
				return err
			}
			if showOut.value == "json" {
				return writeJSON(app.Out, v)
			}
			writeRunView(app.Out, v, "")
			return nil
		},
	}
	showOut.add(show, "text", "json")

	var olderThan string
	var dryRun bool
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Delete the runs that ended long ago, with their steps",
		Long: `Delete the runs (and the steps of job runs) that ended more than --older-than
ago. A run still going on, or holding locks, stays. The files and transfers
they recorded stay in their ledgers, without the run. A job every few
minutes writes a few rows a run: purge from a nightly job (a step may run
runs purge).`,
		Example: `  posbridge runs purge --older-than 90d
  posbridge runs purge --older-than 30d --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			before, err := parseSince(olderThan)
			if err != nil {
				return usageErr("--older-than %q: want a duration back from now (90d, 720h) or a date", olderThan)
			}
			if before.IsZero() {
				return usageErr("--older-than must not be empty")
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			reapQuietly(ctx, d)
			n, err := ledger.PurgeRuns(ctx, d, before, dryRun)
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintf(app.Out, "%s%d runs and steps ended before %s would be deleted\n", dryRunPrefix(true), n, before.UTC().Format(db.TimeLayout))
				return nil
			}
			fmt.Fprintf(app.Out, "%d runs and steps ended before %s deleted\n", n, before.UTC().Format(db.TimeLayout))
			return nil
		},
	}
	purge.Flags().StringVar(&olderThan, "older-than", "90d", "delete runs that ended before this long ago (90d, 720h) or this date")
	purge.Flags().BoolVar(&dryRun, "dry-run", false, "count and change nothing")
	app.declareStep(purge, locking())
	return groupCmd("runs", "List, show and purge recorded runs of commands and jobs", list, show, purge)
}

// runView is a run with everything runs show prints.
type runView struct {
	ledger.Run
	Duration  string            `json:"duration"`
	Activity  ledger.Activity   `json:"activity"`
	Files     []ledger.File     `json:"files"`
	Transfers []ledger.Transfer `json:"transfers"`
	Steps     []runView         `json:"steps,omitempty"`
}

func buildRunView(ctx context.Context, d *db.DB, id int64) (runView, error) {
	r, err := ledger.GetRun(ctx, d, id)
	if err != nil {
		return runView{}, asNotFound(err, ledger.ErrNoRun, "run", strconv.FormatInt(id, 10), "runs list")
	}
	v := runView{Run: r, Duration: r.Duration().String(), Files: []ledger.File{}, Transfers: []ledger.Transfer{}}
	if v.Activity, err = ledger.RunActivity(ctx, d, id); err != nil {
		return v, err
	}
	if v.Files, err = ledger.RunFiles(ctx, d, id); err != nil {
		return v, err
	}
	if v.Transfers, err = ledger.RunTransfers(ctx, d, id); err != nil {
		return v, err
	}
	steps, err := ledger.ListRuns(ctx, d, ledger.RunFilter{Parent: id})
	if err != nil {
		return v, err
	}
	for _, s := range steps {
		sv, err := buildRunView(ctx, d, s.ID)
		if err != nil {
			return v, err
		}
		v.Activity = v.Activity.Add(sv.Activity)
		v.Steps = append(v.Steps, sv)
	}
	return v, nil
}

func writeRunView(w io.Writer, v runView, indent string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, indent+format+"\n", args...) }
	title := fmt.Sprintf("run %d: %s", v.ID, v.Command)
	if v.Step > 0 {
		title = fmt.Sprintf("step %d (run %d): %s", v.Step, v.ID, v.Command)
	}
	p("%s", title)
	if v.Job != "" && v.Step == 0 {
		p("  job:       %s", v.Job)
	}
	p("  status:    %s (exit %s)", v.Status, exitText(v.ExitCode))
	end := v.Ended
	if end == "" {
		end = "-"
	}
	p("  started:   %s  ended: %s  duration: %s", v.Started, end, v.Duration)
	p("  process:   pid %d on %s", v.PID, v.Host)
	if v.Error != "" {
		p("  error:     %s", v.Error)
	}
	a := v.Activity
	p("  files:     %d in, %d out, %d records, %d rejected; transfers: %d done, %d failed",
		a.FilesIn, a.FilesOut, a.Records, a.Rejected, a.Transfers, a.TransfersFailed)
	if c := compactJSON(v.Counts); c != "{}" && c != "" {
		p("  counts:    %s", c)
	}
	for _, f := range v.Files {
		p("  file %-3s  %s %s (%d records, %d rejected, %s)", f.Direction, f.Kind, f.Path, f.Records, f.Rejected, f.Status)
	}
	for _, t := range v.Transfers {
		line := fmt.Sprintf("  %-8s  %s %s <-> %s (%d bytes, %s)", t.Direction, t.Site, t.LocalPath, t.RemotePath, t.Size, t.Status)
		if t.Error != "" {
			line += ": " + t.Error
		}
		p("%s", line)
	}
	for _, s := range v.Steps {
		fmt.Fprintln(w)
		writeRunView(w, s, indent+"  ")
	}
}

// compactJSON shortens stored counts for one line; long lists are left
// for --output json.
func compactJSON(raw json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	for k, v := range m {
		switch x := v.(type) {
		case []any:
			m[k] = len(x)
		case map[string]any:
			if len(x) > 8 {
				m[k] = len(x)
			}
		case nil:
			delete(m, k)
		}
	}
	b, _ := json.Marshal(m)
	return shorten(string(b), 300)
}
