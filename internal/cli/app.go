package cli

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
)

// App is what every command receives: the I/O streams, and the
// configuration and database, opened on first use.
type App struct {
	In       io.Reader
	Out, Err io.Writer

	// Global flags.
	ConfigFile string
	LogFormat  string
	Quiet      bool
	Verbose    bool
	flags      *pflag.FlagSet

	cfg *config.Config
	db  *db.DB
	log *slog.Logger
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
