package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/ops"
)

// stepCommand is a command a job step may run, with what a step running
// it touches, as it declares it from its parsed options and positional
// arguments: the fields of job.Command after Step.
type stepCommand struct {
	cmd     *cobra.Command
	declare func(args []string) (job.Command, error)
}

// declareStep makes cmd a command a job step may run; declare says what
// the step touches once cmd has parsed its flags.
func (a *App) declareStep(cmd *cobra.Command, declare func(args []string) (job.Command, error)) {
	a.steps = append(a.steps, stepCommand{cmd, declare})
}

// locking declares the locks of a step whatever its options.
func locking(locks ...string) func([]string) (job.Command, error) {
	return func([]string) (job.Command, error) { return job.Command{Locks: locks}, nil }
}

// folderLocks are the locks of the folders given, leaving out the ones
// not given.
func folderLocks(dirs ...string) []string {
	var locks []string
	for _, d := range dirs {
		if d != "" {
			locks = append(locks, job.FolderLock(d))
		}
	}
	return locks
}

// declareExport makes an export command a step: it claims the triggers of
// its kind and fills the folder *out (--out).
func (a *App) declareExport(cmd *cobra.Command, out *string) {
	a.declareStep(cmd, func([]string) (job.Command, error) {
		return job.Command{Locks: append([]string{job.KindLock("export", cmd.Name())}, folderLocks(*out)...)}, nil
	})
}

// declareImport makes an import command a step: it applies files of its
// kind, taking them from the files or folders of its arguments, where
// they wait for the job.
func (a *App) declareImport(cmd *cobra.Command) {
	a.declareStep(cmd, func(args []string) (job.Command, error) {
		locks := []string{job.KindLock("import", cmd.Name())}
		for _, p := range args {
			locks = append(locks, job.PathLock(p))
		}
		return job.Command{Locks: locks, Inputs: args}, nil
	})
}

// stepSite is the site a push or pull step transfers with, whose lock it
// holds: site (--site), else the site of partner (--partner).
func (a *App) stepSite(verb, site, partner string) (string, error) {
	cfg, err := a.Config()
	if err != nil {
		return "", err
	}
	configured := cmp.Or(strings.Join(slices.Sorted(maps.Keys(cfg.Sites)), ", "), "none")
	var errs []error
	unknown := false
	if partner != "" {
		p, err := cfg.Partner(strings.ToLower(partner))
		switch {
		case err != nil:
			errs = append(errs, &job.FlagError{Flag: "partner", Err: err})
			unknown = true
		case site == "":
			site = p.Site
		}
	}
	if site == "" && !unknown {
		errs = append(errs, &job.FlagError{Flag: "site", Err: fmt.Errorf(
			"a %s step needs the site: flags: {site: NAME} or a partner with a site (configured: %s)", verb, configured)})
	}
	if _, ok := cfg.Sites[site]; site != "" && !ok {
		errs = append(errs, &job.FlagError{Flag: "site", Err: fmt.Errorf("site %q is not configured (configured: %s)", site, configured)})
	}
	return site, errors.Join(errs...)
}

// stepTree is the command tree as the job planner asks it (job.Commands):
// a step's command line is parsed by the command it names, on a tree of
// its own, and the command declares what the step touches.
type stepTree struct {
	cfg   *config.Config
	steps []string
	// global are the flags of the whole process.
	global *pflag.FlagSet
}

// newStepTree is the command tree on cfg for the job planner.
func newStepTree(cfg *config.Config) *stepTree {
	app := stepApp(cfg)
	root := newRoot(app)
	return &stepTree{cfg: cfg, steps: stepNames(app.steps), global: root.PersistentFlags()}
}

// stepApp is an App that only parses command lines, on cfg.
func stepApp(cfg *config.Config) *App {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	app.cfg = cfg
	return app
}

// stepNames names the commands steps may run, in the order the tree
// declares them; a group all of whose commands may be steps is named once
// (export).
func stepNames(steps []stepCommand) []string {
	declared := map[*cobra.Command]bool{}
	for _, s := range steps {
		declared[s.cmd] = true
	}
	var names []string
	for _, s := range steps {
		c := s.cmd
		if p := c.Parent(); p.HasParent() && !slices.ContainsFunc(p.Commands(), func(sub *cobra.Command) bool { return !declared[sub] }) {
			c = p
		}
		if name := strings.TrimPrefix(c.CommandPath(), "posbridge "); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func (t *stepTree) Steps() []string { return slices.Clone(t.steps) }

func (t *stepTree) Global(flag string) bool { return t.global.Lookup(flag) != nil }

// Resolve checks a step's command line against a fresh command tree: the
// command exists, takes the flags with valid values, and accepts the
// positional arguments; a command a step may run declares what it touches.
func (t *stepTree) Resolve(argv []string) (job.Command, error) {
	app := stepApp(t.cfg)
	root := newRoot(app)
	cmd, rest, err := root.Find(argv)
	if err != nil || cmd == root {
		return job.Command{}, fmt.Errorf("unknown command %q", strings.Join(argv[:min(len(argv), 2)], " "))
	}
	// A group command runs on its own only when it has flags of its own
	// (inquire --requests DIR --responses DIR).
	if cmd.HasSubCommands() && (len(rest) == 0 || !cmd.HasAvailableLocalFlags() || !strings.HasPrefix(rest[0], "-")) {
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			return job.Command{}, fmt.Errorf("unknown command %q for %q: one of %s", rest[0],
				strings.TrimPrefix(cmd.CommandPath(), "posbridge "), subNames(cmd))
		}
		return job.Command{}, fmt.Errorf("%q needs a subcommand: %s", strings.TrimPrefix(cmd.CommandPath(), "posbridge "), subNames(cmd))
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return job.Command{}, flagProblem(err)
	}
	pos := cmd.Flags().Args()
	if err := cmd.ValidateArgs(pos); err != nil {
		return job.Command{}, withoutUsage(err)
	}
	var c job.Command
	if i := slices.IndexFunc(app.steps, func(s stepCommand) bool { return s.cmd == cmd }); i >= 0 {
		if c, err = app.steps[i].declare(pos); err != nil {
			return job.Command{}, withoutUsage(err)
		}
		c.Step = true
	}
	c.Path, c.Positional, c.DryRun = strings.TrimPrefix(cmd.CommandPath(), "posbridge "), pos, cmd.Flags().Lookup("dry-run") != nil
	return c, nil
}

// withoutUsage is err without the "usage: " of a usage error: a job step's
// problem is the configuration's.
func withoutUsage(err error) error {
	if !errors.Is(err, errUsage) {
		return err
	}
	return errors.New(strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
}

func subNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}

// execStep runs one step's command line in this process, on the job's
// configuration and database, with the job's logger; the step's output
// goes to out.
func (a *App) execStep(jobName string, out io.Writer) job.Exec {
	root := a.logger()
	if a.step != nil {
		root = a.step.root
	}
	return func(ctx context.Context, s job.Step, argv []string, run int64, log *slog.Logger) (int, error) {
		// A run of its own on the process's factory. Its global flags keep
		// their defaults: a step cannot set them (job.Commands.Global).
		child := &App{factory: a.factory, In: strings.NewReader(""), Out: out, Err: a.Err,
			step: &stepContext{run: run, log: log.With("step", s.Index), root: root, job: jobName, index: s.Index}}
		root := newRoot(child)
		root.SetArgs(argv)
		err := root.ExecuteContext(ctx)
		return exitCode(err), err
	}
}

func newRunCmd(app *App) *cobra.Command {
	var dryRun bool
	var wait time.Duration
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "run JOB",
		Short: "Run a job of the config: its steps in order, under its locks",
		Long: `Run the named job of the config (jobs.JOB): its steps in order, each a posbridge
command with its arguments and flags, under the job's locks.

Locks: a run holds job:JOB and one lock per kind of data its steps touch
(export:KIND, load:KIND, import:KIND, site:SITE, folder:PATH, triggers). A
second run that needs one of them exits 75 at once, or waits up to --wait.
The locks of a run whose process is gone (same host) or whose lock expired
(locks.ttl, another host) are taken over, the takeover logged and the dead
run marked failed.

A step that fails stops the job unless it (or the job) says on_failure:
continue. The exit code is the first failing step's, else 3 when a step
rejected records, else 0. Every run and step is recorded: see runs list and
runs show. --dry-run runs each step that has a --dry-run of its own with it,
shows the others, takes no locks and records nothing.`,
		Example: `  posbridge run item-download
  posbridge run nightly-full --wait 10m
  posbridge run store-pickup --dry-run`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, jobs, err := app.Jobs()
			if err != nil {
				return err
			}
			// A configuration with a bad job runs no job at all.
			if problems := jobs.Problems(); len(problems) > 0 {
				return errors.Join(problems...)
			}
			p, err := jobs.Get(args[0])
			if err != nil {
				return err
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			o := job.Options{DryRun: dryRun, Wait: wait, TTL: cfg.Locks.TTL, Timeout: p.Job.Timeout, Log: app.logger()}
			if st := app.step; st != nil {
				// A step of another job: its run is this job's run and the
				// outer run holds the locks.
				o.RunID, st.run = st.run, 0
				o.Log = st.root.With("parent_job", st.job, "parent_step", st.index)
			}
			// With --output json stdout holds the result only; what the
			// steps did is in it and in runs show.
			stepOut := app.Out
			if out.value == "json" {
				stepOut = io.Discard
			}
			res, err := job.Run(ctx, d, p, o, app.execStep(p.Name, stepOut))
			if res == nil {
				return err
			}
			if out.value == "json" {
				if werr := writeJSON(app.Out, res); werr != nil && err == nil {
					err = werr
				}
			}
			switch {
			case err != nil:
				return &exitError{code: res.ExitCode, err: err, logged: true}
			case res.ExitCode == ExitRejected:
				return fmt.Errorf("job %s: %w", p.Name, errRejected)
			}
			return nil
		},
	}
	// A step may run a job: the planner adds that job's locks.
	app.declareStep(cmd, func(args []string) (job.Command, error) { return job.Command{Job: args[0]}, nil })
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "run the steps that can as dry runs, show the others; no locks, nothing recorded")
	f.DurationVar(&wait, "wait", 0, "wait this long for a run holding the job's locks to finish (default: exit 75 at once)")
	out.add(cmd, "text", "json")
	return cmd
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newJobsCmd(app *App) *cobra.Command {
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the jobs of the config with their last run and next expected run",
		Long: `List the jobs of the config: schedule, number of steps, the last run with its
result and exit code, the next run the schedule expects, and whether a run is
going on now. A job's last run may be a run as a step of another job (its
LAST RUN is that step's run). A job whose schedule expected a run (plus
status.grace) that did not start is marked MISSED.`,
		Example: `  posbridge jobs list
  posbridge jobs list --output json`,
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
			views, err := ops.JobViews(ctx, d, jobs, cfg.Status.Grace, time.Now())
			if err != nil {
				return err
			}
			if out.value == "json" {
				return writeJSON(app.Out, views)
			}
			if len(views) == 0 {
				fmt.Fprintln(app.Out, "no jobs configured (see jobs: in config.example.yaml)")
				return nil
			}
			t := newTable(app.Out, "JOB", "SCHEDULE", "STEPS", "LAST RUN", "STARTED", "RESULT", "EXIT", "NEXT", "NOTE")
			for _, v := range views {
				run, started, result, exit := "-", "-", "-", "-"
				if r := v.LastRun; r != nil {
					run, started, result, exit = strconv.FormatInt(r.ID, 10), r.Started, r.Status, exitText(r.ExitCode)
				}
				note := ""
				switch {
				case v.Running != nil:
					note = fmt.Sprintf("running: run %d, pid %d on %s", v.Running.RunID, v.Running.PID, v.Running.Host)
				case v.Missed != "":
					note = "MISSED run expected at " + v.Missed
				}
				t.row(v.Name, dash(v.Schedule), len(v.Steps), run, started, result, exit, dash(v.Next), note)
			}
			return t.flush()
		},
	}
	out.add(list, "table", "json")

	var showOut outputFlag
	show := &cobra.Command{
		Use:     "show JOB",
		Short:   "Show a job's steps as the command lines they run, and its locks",
		Example: `  posbridge jobs show nightly-full`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, jobs, err := app.Jobs()
			if err != nil {
				return err
			}
			p, err := jobs.Get(args[0])
			if err != nil {
				return asNotFound(err, job.ErrNoJob, "job", args[0], "jobs list")
			}
			if showOut.value == "json" {
				return writeJSON(app.Out, struct {
					*job.Plan
					Description string `json:"description,omitempty"`
					Schedule    string `json:"schedule,omitempty"`
				}{p, p.Job.Description, p.Job.Schedule})
			}
			fmt.Fprintf(app.Out, "job %s\n", p.Name)
			if p.Job.Description != "" {
				fmt.Fprintf(app.Out, "  %s\n", p.Job.Description)
			}
			fmt.Fprintf(app.Out, "schedule: %s\nlocks: %s\n\n", dash(p.Job.Schedule), strings.Join(p.Locks, ", "))
			t := newTable(app.Out, "STEP", "ON FAILURE", "COMMAND")
			for _, s := range p.Steps {
				t.row(s.Index, s.OnFailure, s.String())
			}
			return t.flush()
		},
	}
	showOut.add(show, "text", "json")
	return groupCmd("jobs", "List and show the jobs of the config", list, show)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func exitText(code *int) string {
	if code == nil {
		return "-"
	}
	return strconv.Itoa(*code)
}

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
job runs are left out unless --steps is given (runs show RUN lists them). A
run found "running" whose process is gone is marked failed first.`,
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
	lf.StringVar(&f.Job, "job", "", "only runs of this job")
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
				fmt.Fprintf(app.Out, "dry run, nothing changed: %d runs and steps ended before %s would be deleted\n", n, before.UTC().Format(db.TimeLayout))
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

// reapQuietly marks runs of dead processes failed before they are shown;
// a busy database leaves that to the next run.
func reapQuietly(ctx context.Context, d *db.DB) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ledger.ReapDead(ctx, d, 0)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
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
