package imports

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
)

// Folders says where directory mode moves files.
type Folders struct {
	// MinAge leaves files modified more recently for the next run: they
	// may still be being written. Whole, when set, says a young file is
	// complete all the same (a pull wrote it: ledger.PulledWhole).
	MinAge time.Duration
	Whole  func(path string, info os.FileInfo) bool
	// Processed and Error are where files go after their transaction; empty
	// means processed/ and error/ inside the input folder.
	Processed, Error string
	// Warn reports a file of the folder that is not imported because it
	// is not a regular file (a named pipe would block its reader), or
	// that another run took away (moved) while this one was at it; nil
	// says nothing.
	Warn func(string)
}

func (f Folders) warn(msg string) {
	if f.Warn != nil {
		f.Warn(msg)
	}
}

// Taken says path, which err says is missing, is gone from its folder:
// another run (on this host or another, importing the same folder) took
// it away between this run's listing of the folder and its opening or
// moving the file. A run that loses such a race has nothing to answer
// for; any other missing file (a rejects folder, say) stays an error.
func Taken(path string, err error) bool {
	if !errors.Is(err, os.ErrNotExist) {
		return false
	}
	_, serr := os.Lstat(path)
	return errors.Is(serr, os.ErrNotExist)
}

// Settling says a file of the folder is left for the next run: modified
// less than MinAge ago, and not known to be whole.
func (f Folders) Settling(path string, info os.FileInfo) bool {
	return time.Since(info.ModTime()) < f.MinAge && (f.Whole == nil || !f.Whole(path, info))
}

// ErrNotMoved is in Outcome.MoveErr: directory mode could not move a file
// once its import had ended. What the import did stands (Outcome.Result,
// or nothing when Outcome.Err says the file failed), and the file stays in
// the folder, where the next run finds applied content applied.
var ErrNotMoved = errors.New("not moved")

// Outcome is what happened to one file of a run.
type Outcome struct {
	Path   string
	Result *Result
	Err    error
	// MovedTo is where directory mode put the file.
	MovedTo string
	// MoveErr is why directory mode could not move the file (it wraps
	// ErrNotMoved), apart from Err: a file that failed and could not be
	// moved to the error folder has both.
	MoveErr error
	// Waiting is set for a file left for the next run (too young).
	Waiting bool
}

// ImportFunc imports one file; rejectsDir is where its reject file goes.
type ImportFunc func(path, rejectsDir string) (*Result, error)

// Paths imports each argument: a file as it is, a folder file by file in
// name order, moving each to the processed or error folder once its
// transaction has committed. A file-level failure does not stop the files
// after it.
func Paths(args []string, f Folders, run ImportFunc, each func(Outcome)) {
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			res, err := run(arg, "")
			each(Outcome{Path: arg, Result: res, Err: err})
			continue
		}
		dir(arg, f, run, each)
	}
}

// ProcessedDir is where directory mode moves a file of folder that was
// applied.
func (f Folders) ProcessedDir(folder string) string {
	if f.Processed != "" {
		return f.Processed
	}
	return filepath.Join(folder, "processed")
}

// ErrorDir is where directory mode moves a file of folder that failed.
func (f Folders) ErrorDir(folder string) string {
	if f.Error != "" {
		return f.Error
	}
	return filepath.Join(folder, "error")
}

// Waiting lists the files of folder that directory mode would import, in
// name order: regular files, not hidden (temporary names of transfers in
// progress), not reject files.
func Waiting(folder string) ([]string, error) {
	names, _, err := scan(folder)
	return names, err
}

// scan lists the files of folder that directory mode imports, and the
// names of the others that are neither hidden nor folders: named pipes,
// sockets, devices and symbolic links, with what each is.
func scan(folder string) (names, others []string, err error) {
	entries, err := os.ReadDir(folder)
	if err != nil {
		return nil, nil, fmt.Errorf("read folder %q: %w", folder, err)
	}
	names = make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "."), strings.HasSuffix(n, ".rejects.csv"), e.IsDir():
		case !e.Type().IsRegular():
			others = append(others, fmt.Sprintf("%s is %s", filepath.Join(folder, n), fsx.Kind(e.Type())))
		default:
			names = append(names, n)
		}
	}
	sort.Strings(names)
	sort.Strings(others)
	return names, others, nil
}

func dir(folder string, f Folders, run ImportFunc, each func(Outcome)) {
	processed, errDir := f.ProcessedDir(folder), f.ErrorDir(folder)
	names, others, err := scan(folder)
	if err != nil {
		each(Outcome{Path: folder, Err: err})
		return
	}
	for _, o := range others {
		f.warn(o + ": not a regular file, skipped")
	}
	for _, n := range names {
		path := filepath.Join(folder, n)
		st, err := os.Stat(path)
		if Taken(path, err) {
			f.warn(path + ": taken by another run, skipped")
			continue
		}
		if err == nil && f.Settling(path, st) {
			each(Outcome{Path: path, Waiting: true})
			continue
		}
		res, err := run(path, errDir)
		if Taken(path, err) {
			f.warn(path + ": taken by another run, skipped")
			continue
		}
		// A busy database or an interrupted run says nothing about the
		// file: it stays where it is for the next run.
		if interrupted := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded); interrupted || errors.Is(err, db.ErrBusy) {
			each(Outcome{Path: path, Result: res, Err: err})
			if interrupted {
				return
			}
			continue
		}
		out := Outcome{Path: path, Result: res, Err: err}
		to := processed
		if err != nil || res == nil || res.RolledBack || (res.Applied == 0 && res.SameAs == "" && !res.DryRun) {
			to = errDir
		}
		if res == nil || !res.DryRun {
			moved, merr := fsx.MoveInto(path, to)
			switch {
			case Taken(path, merr) && err == nil && res != nil && res.SameAs != "":
				// The other run applied the file and moved it while this
				// one found its content applied: the file is the other's.
				f.warn(path + ": taken by another run, skipped")
				continue
			case Taken(path, merr):
				// This run's outcome stands (it applied the file, or the
				// file failed here too); the other run moved the file.
				f.warn(path + ": moved away by another run")
			case merr != nil:
				out.MoveErr = fmt.Errorf("%w to %s: %w", ErrNotMoved, to, merr)
			}
			out.MovedTo = moved
		}
		each(out)
	}
}
