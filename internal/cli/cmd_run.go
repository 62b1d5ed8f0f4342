package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/job"
)

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
(export:KIND, load:KIND, import:KIND, site:SITE, folder:HOST:PATH, triggers). A
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
