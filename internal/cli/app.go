package cli

import (
	"context"
	"fmt"
	"github.com/posbridge/posbridge/internal/imports"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
)

// App is what the commands of one command line receive: its streams,
// global flags and logger, what it records, and the factory the process
// shares. A job step run in the process gets an App of its own on the same
// factory (execStep), so nothing of one run leaks into another.
type App struct {
	*factory

	In       io.Reader
	Out, Err io.Writer

	// Global flags.
	ConfigFile string
	LogFormat  string
	Quiet      bool
	Verbose    bool
	flags      *pflag.FlagSet

	log *slog.Logger
	// step is set when the App runs a step of a job in the process of
	// the job's run: the run made for the step and the job's logger.
	step *stepContext
	// runIDs are the runs this command recorded; Main stores the exit code.
	runIDs []int64
	// steps are the commands of this App's tree a job step may run, in
	// the order the tree declares them (declareStep).
	steps []stepCommand
}

// factory is what every command line of a process shares, each opened on
// first use (App.Config, App.Jobs, App.DB), by the process's command line:
// the configuration, its jobs and the database.
type factory struct {
	cfg  *config.Config
	jobs *job.Set
	db   *db.DB
}

// newApp is the App of a process's command line, on a new factory.
func newApp(in io.Reader, out, errOut io.Writer) *App {
	return &App{factory: &factory{}, In: in, Out: out, Err: errOut}
}

// stepContext is what a job run hands the command of one of its steps.
type stepContext struct {
	run int64
	log *slog.Logger
	// root is the logger of the outermost run, without the job's
	// attributes: a job that runs another job logs with it, so no key
	// appears twice in a line.
	root *slog.Logger
	// job and index name the step for the logs of a job it runs.
	job   string
	index int
}

// Config loads the configuration once.
func (a *App) Config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	cfg, err := config.Load(config.Options{File: a.ConfigFile, Flags: a.flags})
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	return cfg, nil
}

// Jobs builds and checks the jobs of the configuration once, against the
// command tree, which only this package knows. Only the commands that
// deal with jobs (run, jobs, status, config validate) pay for it.
func (a *App) Jobs() (*config.Config, *job.Set, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, nil, err
	}
	if a.jobs == nil {
		a.jobs = job.NewSet(cfg.JobSpecs(), newStepTree(cfg))
	}
	return cfg, a.jobs, nil
}

// ConfigDB loads the configuration and opens its database.
func (a *App) ConfigDB(ctx context.Context) (*config.Config, *db.DB, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, nil, err
	}
	d, err := a.DB(ctx)
	return cfg, d, err
}

// jobsDB loads the configuration and its jobs and opens the database, for
// the commands that show jobs with their runs.
func (a *App) jobsDB(ctx context.Context) (*config.Config, *job.Set, *db.DB, error) {
	cfg, jobs, err := a.Jobs()
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := a.DB(ctx)
	return cfg, jobs, d, err
}

// recordRun records the run of a state-changing command around do, unless
// dryRun: started before, ended after with do's counts and status (failed
// on an error, rejects when do says records were rejected, else ok). do
// gets the run's id (0 in a dry run).
func (a *App) recordRun(ctx context.Context, d *db.DB, command string, dryRun bool,
	do func(runID int64) (counts any, rejects bool, err error)) error {
	var id int64
	if !dryRun {
		var err error
		if id, err = a.startRun(ctx, d, command); err != nil {
			return err
		}
	}
	counts, rejects, err := do(id)
	if id > 0 {
		status := ledger.RunOK
		switch {
		case err != nil:
			status = ledger.RunFailed
		case rejects:
			status = ledger.RunRejects
		}
		if endErr := ledger.EndRun(context.WithoutCancel(ctx), d, id, status, counts, err); endErr != nil && err == nil {
			err = endErr
		}
	}
	return err
}

// startRun records the start of a state-changing command. In a job step
// the run made for the step becomes the command's run.
func (a *App) startRun(ctx context.Context, d *db.DB, command string) (int64, error) {
	if a.step != nil && a.step.run > 0 {
		id := a.step.run
		a.step.run = 0 // a command records one run
		return id, ledger.AdoptRun(ctx, d, id, command)
	}
	id, err := ledger.InsertRun(ctx, d, ledger.Run{Command: command})
	if err == nil {
		a.runIDs = append(a.runIDs, id)
	}
	return id, err
}

// DB opens the database of the configuration once, applying pending
// migrations. It fails when the database does not exist yet.
func (a *App) DB(ctx context.Context) (*db.DB, error) {
	return a.openDB(ctx, db.Options{})
}

func (a *App) openDB(ctx context.Context, opts db.Options) (*db.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	cfg, err := a.Config()
	if err != nil {
		return nil, err
	}
	opts.BusyTimeout = cfg.DB.BusyTimeout
	opts.CacheMiB = cfg.DB.CacheMiB
	d, err := db.Open(ctx, cfg.DatabasePath(), opts)
	if err != nil {
		return nil, err
	}
	a.db = d
	return d, nil
}

// logger builds the stderr logger from flags and configuration.
func (a *App) logger() *slog.Logger {
	if a.log != nil {
		return a.log
	}
	if a.step != nil {
		a.log = a.step.log
		return a.log
	}
	format, level := a.LogFormat, slog.LevelInfo
	if a.cfg != nil {
		if format == "" {
			format = a.cfg.Log.Format
		}
		level.UnmarshalText([]byte(a.cfg.Log.Level))
	}
	if a.Verbose {
		level = slog.LevelDebug
	}
	if a.Quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(a.Err, &slog.HandlerOptions{Level: level})
	} else {
		h = slog.NewTextHandler(a.Err, opts)
	}
	a.log = slog.New(h)
	return a.log
}

// dropTime keeps text logs short on a terminal; cron adds its own stamps
// and JSON logs keep the time.
func dropTime(groups []string, at slog.Attr) slog.Attr {
	if len(groups) == 0 && at.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return at
}

// stderrIsTerminal says whether progress bars may be drawn.
// settling is when a file of an inbox is left for the next run: younger
// than import.min_age, unless a pull wrote it whole (the transfer ledger
// says so).
func (a *App) settling(ctx context.Context, cfg *config.Config, d *db.DB) imports.Folders {
	log := a.logger()
	return imports.Folders{MinAge: cfg.Import.MinAge, Whole: func(path string, info os.FileInfo) bool {
		whole, err := ledger.PulledWhole(ctx, d, path, info)
		if err != nil {
			log.Warn(fmt.Sprintf("%s: %v; left for the next run", path, err))
		}
		return whole
	}, Warn: func(msg string) { log.Warn(msg) }}
}

func (a *App) stderrIsTerminal() bool {
	f, ok := a.Err.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && !a.Quiet
}

// progress returns a byte progress callback drawing a bar on a terminal,
// or nil when stderr is not one (cron logs stay clean).
func (a *App) progress(total int64, what string) (func(int64), func()) {
	if !a.stderrIsTerminal() || total < 4<<20 {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.Err),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(200_000_000),
		progressbar.OptionClearOnFinish(),
	)
	return func(n int64) { bar.Set64(n) }, func() { bar.Finish() }
}

// reapQuietly marks runs of dead processes failed before they are shown;
// a busy database leaves that to the next run.
func reapQuietly(ctx context.Context, d *db.DB) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ledger.ReapDead(ctx, d, 0)
}
