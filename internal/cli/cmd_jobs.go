package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/ops"
)

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
			cfg, jobs, d, err := app.jobsDB(ctx)
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
				t.row(append([]any{v.Name, dash(v.Schedule), len(v.Steps)}, jobRunCells(v.LastRun, "-", v.Next, v.Missed, v.Running)...)...)
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

// jobRunCells are the columns of a job's runs in the job tables of jobs
// list and status: its last run (id, start, result, exit code; never is
// the result of a job that never ran), the next run its schedule expects,
// and a note of the run going on now or of the run it missed.
func jobRunCells(last *ledger.Run, never, next, missed string, running *job.Lock) []any {
	cells := []any{"-", "-", never, "-"}
	if last != nil {
		cells = []any{last.ID, last.Started, last.Status, exitText(last.ExitCode)}
	}
	note := ""
	switch {
	case running != nil:
		note = fmt.Sprintf("running: run %d, pid %d on %s", running.RunID, running.PID, running.Host)
	case missed != "":
		note = "MISSED run expected at " + missed
	}
	return append(cells, dash(next), note)
}
