package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Exit codes of docs/operations.md section 13, as the steps report them.
const (
	exitOK        = 0
	exitFailed    = 1
	exitRejected  = 3
	exitTemporary = 75
)

// Exec runs one step's command line; run is the runs row made for the
// step (0 in a dry run) and log the job run's logger. It returns the
// command's exit code and error.
type Exec func(ctx context.Context, s Step, argv []string, run int64, log *slog.Logger) (code int, err error)

// Options tune a run.
type Options struct {
	// DryRun runs every step that takes --dry-run with it, shows the
	// others, takes no locks and records nothing.
	DryRun bool
	// Wait is how long to wait for the locks of a run that holds them.
	Wait time.Duration
	// TTL is how long a lock outlives its holder's last renewal.
	TTL time.Duration
	// Timeout stops the steps of a run that takes longer, counted from
	// when it holds its locks; 0 means no limit.
	Timeout time.Duration
	// RunID, when set, is the run to record the job's steps under: the
	// step of an outer job that runs this one. The outer run holds the
	// locks already.
	RunID int64
	Log   *slog.Logger
}

// StepResult is how one step ended.
type StepResult struct {
	Index    int             `json:"step"`
	Command  string          `json:"command"`
	RunID    int64           `json:"run_id,omitempty"`
	Status   string          `json:"status"`
	ExitCode int             `json:"exit_code"`
	Duration time.Duration   `json:"duration_ns"`
	Activity ledger.Activity `json:"activity"`
	Error    string          `json:"error,omitempty"`
}

// Result is how a job run ended.
type Result struct {
	Job      string          `json:"job"`
	RunID    int64           `json:"run_id,omitempty"`
	DryRun   bool            `json:"dry_run,omitempty"`
	Status   string          `json:"status"`
	ExitCode int             `json:"exit_code"`
	Steps    []StepResult    `json:"steps"`
	Skipped  int             `json:"skipped"`
	Activity ledger.Activity `json:"activity"`
	Duration time.Duration   `json:"duration_ns"`
	// Takeovers are the locks taken from dead or expired runs.
	Takeovers []Takeover `json:"takeovers,omitempty"`
	// Reaped are runs found running whose process was gone.
	Reaped []ledger.Dead `json:"reaped,omitempty"`
}

// counts is what the job run's counts column holds.
type counts struct {
	Steps    int             `json:"steps"`
	Ran      int             `json:"ran"`
	Failed   int             `json:"failed"`
	Skipped  int             `json:"skipped"`
	Activity ledger.Activity `json:"activity"`
}

// Run runs plan p: it reaps dead runs, takes the plan's locks (or fails
// with ErrBusy), records the run, runs the steps in order through exec,
// records each step, and releases the locks. The job's exit code is the
// first failing step's, else 3 when a step rejected records, else 0. The
// returned error is the first failing step's (nil for rejects).
func Run(ctx context.Context, d *db.DB, p *Plan, o Options, exec Exec) (*Result, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	res := &Result{Job: p.Name, DryRun: o.DryRun, Steps: []StepResult{}}
	if o.DryRun {
		log = log.With("job", p.Name, "dry_run", true)
		log.Info("job start", "steps", len(p.Steps))
		err := runSteps(ctx, d, p, o, exec, log, res)
		res.Duration = time.Since(start)
		res.Status = statusOf(res.ExitCode)
		log.Info("job end", "status", res.Status, "exit", res.ExitCode, "ran", len(res.Steps))
		return res, err
	}
	nested := o.RunID > 0
	if nested {
		res.RunID = o.RunID
	} else {
		var err error
		if res.Reaped, err = ledger.ReapDead(ctx, d, 0); err != nil {
			return nil, err
		}
		for _, r := range res.Reaped {
			log.Warn("found a dead run: marked failed", "dead_run", r.Run.ID, "command", r.Run.Command, "reason", r.Reason)
		}
		res.RunID, res.Takeovers, err = acquireWait(ctx, d, p.Name, p.Locks, o.TTL, o.Wait)
		if err != nil {
			return nil, err
		}
		for _, t := range res.Takeovers {
			log.Warn("took over a lock of a dead run", "job", p.Name, "run", res.RunID, "lock", t.Lock.Name,
				"from_run", t.Lock.RunID, "from_job", t.Lock.Job, "pid", t.Lock.PID, "host", t.Lock.Host, "reason", t.Reason)
		}
		var lost context.CancelCauseFunc
		ctx, lost = context.WithCancelCause(ctx)
		defer lost(nil)
		renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
		go renew(renewCtx, d, res.RunID, p.Locks, o.TTL, lost)
		defer func() {
			stopRenew()
			if err := release(context.WithoutCancel(ctx), d, res.RunID); err != nil {
				log.Error(err.Error())
			}
		}()
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout,
			fmt.Errorf("job %s ran longer than its timeout (jobs.%s.timeout %s)", p.Name, p.Name, o.Timeout))
		defer cancel()
	}
	log = log.With("job", p.Name, "run", res.RunID)
	log.Info("job start", "steps", len(p.Steps), "locks", describeLocks(p.Locks))
	err := runSteps(ctx, d, p, o, exec, log, res)
	res.Duration = time.Since(start)
	if cause := context.Cause(ctx); errors.Is(cause, ErrLockLost) && err != nil {
		// The run that took the locks over does the work.
		res.ExitCode = exitTemporary
		if !errors.Is(err, ErrLockLost) {
			err = fmt.Errorf("%w; %w", cause, err)
		}
	}
	if err != nil && res.ExitCode == exitOK {
		// The job's own bookkeeping failed after a step that succeeded
		// (recording its exit code, say): not a success.
		res.ExitCode = exitFailed
		if db.Temporary(err) {
			res.ExitCode = exitTemporary
		}
	}

	status := ledger.RunOK
	switch {
	case err != nil:
		status = ledger.RunFailed
	case res.ExitCode == exitRejected:
		status = ledger.RunRejects
	}
	res.Status = status
	c := counts{Steps: len(p.Steps), Ran: len(res.Steps), Skipped: res.Skipped, Activity: res.Activity}
	for _, s := range res.Steps {
		if s.Status == ledger.RunFailed {
			c.Failed++
		}
	}
	if !nested {
		bg := context.WithoutCancel(ctx)
		if endErr := ledger.EndRun(bg, d, res.RunID, status, c, err); endErr != nil {
			log.Error(endErr.Error())
		}
		if endErr := ledger.SetExitCode(bg, d, res.ExitCode, res.RunID); endErr != nil {
			log.Error(endErr.Error())
		}
	}
	attrs := []any{"status", status, "exit", res.ExitCode, "duration", res.Duration.Round(time.Millisecond).String(),
		"ran", c.Ran, "failed", c.Failed, "skipped", c.Skipped}
	attrs = append(attrs, activityAttrs(res.Activity)...)
	if err != nil {
		log.Error("job end", append(attrs, "error", err.Error())...)
	} else {
		log.Info("job end", attrs...)
	}
	return res, err
}

// runSteps runs the steps in order, filling res.
func runSteps(ctx context.Context, d *db.DB, p *Plan, o Options, exec Exec, log *slog.Logger, res *Result) error {
	// recErr is a failure to record a step that ran: the job stops there.
	var firstErr, recErr error
steps:
	for i, s := range p.Steps {
		if ctx.Err() != nil {
			res.Skipped = len(p.Steps) - i
			if firstErr == nil {
				firstErr = fmt.Errorf("job %s stopped before step %d: %w", p.Name, s.Index, context.Cause(ctx))
				res.ExitCode = 1
			}
			break
		}
		argv := s.Argv
		if o.DryRun {
			if !s.DryRun {
				log.Info("dry run: would run step", "step", s.Index, "command", s.String())
				continue
			}
			argv = append(append([]string(nil), argv...), "--dry-run")
		}
		sr := StepResult{Index: s.Index, Command: s.String()}
		var err error
		if !o.DryRun {
			command := s.Path
			if s.Job != "" {
				command = "run " + s.Job
			}
			sr.RunID, err = ledger.InsertRun(ctx, d, ledger.Run{Command: command, Job: p.Name, Parent: res.RunID, Step: s.Index})
			if err != nil {
				return err
			}
		}
		t0 := time.Now()
		code, stepErr := exec(ctx, s, argv, sr.RunID, log)
		sr.Duration = time.Since(t0)
		sr.ExitCode = code
		sr.Status = statusOf(code)
		if code == exitRejected {
			stepErr = nil // done; the rejects are in the step's files
		}
		if stepErr != nil {
			sr.Error = stepErr.Error()
		}
		// A step that ran counts as run, also when recording it fails: the
		// database that went away under the step fails both, and the
		// step's error is the one that says what happened.
		if err := recordStep(context.WithoutCancel(ctx), d, &sr, stepErr); err != nil {
			recErr = fmt.Errorf("record step %d (%s): %w", s.Index, s.Path, err)
		}
		res.Activity = res.Activity.Add(sr.Activity)
		res.Steps = append(res.Steps, sr)
		attrs := []any{"step", s.Index, "command", s.String(), "status", sr.Status, "exit", code,
			"duration", sr.Duration.Round(time.Millisecond).String()}
		attrs = append(attrs, activityAttrs(sr.Activity)...)
		if sr.Error != "" {
			log.Error("step end", append(attrs, "error", sr.Error)...)
		} else {
			log.Info("step end", attrs...)
		}
		switch {
		case code == exitOK:
		case code == exitRejected:
			if res.ExitCode == exitOK {
				res.ExitCode = exitRejected
			}
		default:
			if firstErr == nil {
				if cause := context.Cause(ctx); cause != nil && !errors.Is(stepErr, cause) {
					stepErr = fmt.Errorf("%w (%v)", stepErrOr(stepErr, code), cause)
				}
				firstErr = fmt.Errorf("job %s: step %d (%s) failed: %w", p.Name, s.Index, s.Path, stepErrOr(stepErr, code))
				res.ExitCode = code
			}
			if s.OnFailure == Stop {
				res.Skipped = len(p.Steps) - i - 1
				break steps
			}
		}
		if recErr != nil {
			res.Skipped = len(p.Steps) - i - 1
			break
		}
	}
	switch {
	case recErr != nil && firstErr != nil:
		return fmt.Errorf("%w; then %w", firstErr, recErr)
	case recErr != nil:
		return fmt.Errorf("job %s: %w", p.Name, recErr)
	}
	return firstErr
}

// recordStep records how the step of sr ended in its runs row, and reads
// back what it did into sr.Activity. The command ends its own run when it
// records one; a command that records none (trigger generate) or failed
// before it started is ended here.
func recordStep(ctx context.Context, d *db.DB, sr *StepResult, stepErr error) error {
	if sr.RunID <= 0 {
		return nil
	}
	if r, err := ledger.GetRun(ctx, d, sr.RunID); err == nil && r.Status == ledger.RunRunning {
		if err := ledger.EndRun(ctx, d, sr.RunID, sr.Status, nil, stepErr); err != nil {
			return err
		}
	}
	if err := ledger.SetExitCode(ctx, d, sr.ExitCode, sr.RunID); err != nil {
		return err
	}
	// A step that runs a job did its work in that job's steps.
	var err error
	sr.Activity, err = ledger.TreeActivity(ctx, d, sr.RunID)
	return err
}

func stepErrOr(err error, code int) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("exit code %d", code)
}

func statusOf(code int) string {
	switch code {
	case exitOK:
		return ledger.RunOK
	case exitRejected:
		return ledger.RunRejects
	}
	return ledger.RunFailed
}

// activityAttrs are the log attributes of what a step moved, leaving out
// what it did not do.
func activityAttrs(a ledger.Activity) []any {
	var out []any
	for _, kv := range []struct {
		k string
		v int64
	}{{"files_in", a.FilesIn}, {"files_out", a.FilesOut}, {"records", a.Records}, {"rejected", a.Rejected},
		{"transfers", a.Transfers}, {"transfers_failed", a.TransfersFailed}} {
		if kv.v != 0 {
			out = append(out, kv.k, kv.v)
		}
	}
	return out
}

// IsBusy says whether err means the job's locks are held by another run.
func IsBusy(err error) bool { return errors.Is(err, ErrBusy) }
