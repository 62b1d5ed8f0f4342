package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/export"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/transfer"
)

// Exit codes of docs/operations.md section 13.
const (
	ExitOK        = 0
	ExitFailed    = 1
	ExitUsage     = 2
	ExitRejected  = 3
	ExitTemporary = 75
)

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage")

// usageErr wraps err as a usage error (exit 2).
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// errNotFound marks an id or name that names nothing, as every show
// command reports it (exit 1): the command line was right, so it is no
// usage error, and nothing changed.
var errNotFound = errors.New("not found")

// notFound is the one error of a show command whose id names nothing:
// "order SO1 not found (see posbridge orders list)". list is the command
// that lists what there is.
func notFound(kind, id, list string) error {
	return fmt.Errorf("%s %s %w (see posbridge %s)", kind, id, errNotFound, list)
}

// asNotFound is notFound when err is the domain's own not-found error
// (sentinel), else err.
func asNotFound(err, sentinel error, kind, id, list string) error {
	if errors.Is(err, sentinel) {
		return notFound(kind, id, list)
	}
	return err
}

// errRejected is returned by commands that finished but rejected records.
var errRejected = errors.New("some records were rejected")

// errAttention is returned by checks that found something to look at.
var errAttention = errors.New("needs attention")

// Main runs posbridge with args and returns the exit code. A panic is
// reported as an internal error with exit 1, never a crash dump in a cron
// mail; the transaction it interrupted rolls back.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "posbridge: internal error: %v\n%s", r, debug.Stack())
			code = ExitFailed
		}
	}()
	// A soft memory limit makes the collector work harder before the heap
	// grows, which keeps a file with a huge field from costing several
	// times its size; GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
	// The bulk paths allocate a little per row and keep little: at Go's
	// default (GOGC 100) the collector ran several times a second and took
	// 10-15% of a load's, export's or import's CPU. Twice the room trades
	// a few MiB for it (make bench at 1,000,000 rows: first load 4.95x ->
	// 4.37x the sqlite3 shell, mass customer download 1.64x -> 1.23x; peak
	// RSS of an export 40 -> 44 MiB, of an import 65 -> 83 MiB, under the
	// caps of BENCHMARKS.md); the memory limit above still bounds the
	// heap. GOGC overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if len(args) == 1 && args[0] == export.BesideArg {
		// The reading process of an export (export.besideRead): its
		// parent kills it when it is not wanted.
		if err := export.ServeBeside(context.Background(), stdin, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitFailed
		}
		return ExitOK
	}
	if path := os.Getenv("POSBRIDGE_CPUPROFILE"); path != "" {
		// For performance work (BENCHMARKS.md): go tool pprof bin/posbridge FILE.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if path := os.Getenv("POSBRIDGE_TRACE"); path != "" {
		// Which goroutine waits for which: go tool trace FILE.
		if f, err := os.Create(path); err == nil {
			trace.Start(f)
			defer func() { trace.Stop(); f.Close() }()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app := newApp(stdin, stdout, stderr)
	root := newRoot(app)
	root.SetArgs(args)
	err := explained(root.ExecuteContext(ctx))
	code = exitCode(err)
	if err != nil && ctx.Err() != nil {
		// The error of an interrupted read or statement says only
		// "context canceled", or is PostgreSQL's "canceling statement
		// due to user request" (57014, which a lock or statement timeout
		// gives too: busy, exit 75). Stopped, the command failed: exit 1
		// (docs/operations.md, exit codes).
		err = fmt.Errorf("interrupted (%v): %w", context.Cause(ctx), err)
		code = ExitFailed
	}
	if app.db != nil {
		if len(app.runIDs) > 0 {
			if xerr := ledger.SetExitCode(context.WithoutCancel(ctx), app.db, code, app.runIDs...); xerr != nil {
				app.logger().Warn(xerr.Error())
			}
		}
		app.db.Close()
	}
	var xe *exitError
	switch {
	case err == nil:
	case errors.As(err, &xe) && xe.logged:
	case errors.Is(err, errRejected), errors.Is(err, errAttention):
		app.logger().Warn(err.Error())
	default:
		app.logger().Error(err.Error())
	}
	return code
}

// exitError carries the exit code of a job run, which is the code of the
// step that failed.
type exitError struct {
	code int
	err  error
	// logged says the error was logged already (a job's end line).
	logged bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// explained is err, with a busy or lost database that the code meeting it
// did not name (db.Classify) named: "database unavailable: ...".
func explained(err error) error {
	if db.Temporary(err) && !errors.Is(err, db.ErrBusy) && !errors.Is(err, db.ErrUnavailable) {
		return db.Classify(err)
	}
	return err
}

// exitCode is the one place that maps errors to exit codes.
func exitCode(err error) int {
	var xe *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &xe):
		return xe.code
	case errors.Is(err, errRejected):
		return ExitRejected
	case errors.Is(err, errNotFound):
		return ExitFailed
	case errors.Is(err, errUsage), errors.Is(err, config.ErrInvalid), errors.Is(err, partner.ErrInvalid), errors.Is(err, job.ErrInvalid),
		errors.Is(err, transfer.ErrNoFolder), errors.Is(err, transfer.ErrOutsideRoot):
		return ExitUsage
	case db.Temporary(err), errors.Is(err, export.ErrBusy), errors.Is(err, transfer.ErrBusy),
		errors.Is(err, transfer.ErrUnreachable), errors.Is(err, job.ErrBusy):
		return ExitTemporary
	default:
		return ExitFailed
	}
}
