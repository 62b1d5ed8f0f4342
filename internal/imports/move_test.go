package imports

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPathsNotMoved: a file that directory mode cannot move, applied or
// failed, says why in Outcome.MoveErr, beside what the import did (Result)
// and why it failed (Err): neither hides the other. The files stay in the
// folder for the next run.
func TestPathsNotMoved(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	in := filepath.Join(f.dir, "in")
	f.write("in/a-good.csv", txnHead+"R,IT0000001,BLK-8,S01,BR01,2\n")
	f.write("in/b-broken.csv", "transaction_code,item\n")
	// A file where the folders would be made: neither can be.
	blocker := f.write("blocker", "not a folder")
	fo := Folders{Processed: filepath.Join(blocker, "done"), Error: filepath.Join(blocker, "error")}
	// The rejects go elsewhere: an import cannot write them into an error
	// folder that cannot be made.
	got := outcomes([]string{in}, fo, func(path, _ string) (*Result, error) {
		return ImportTransactions(ctx, f.d, path, Options{RejectsDir: filepath.Join(f.dir, "rejects")})
	})

	notMoved := func(name string, o Outcome, to string) {
		t.Helper()
		if o.MoveErr == nil || !errors.Is(o.MoveErr, ErrNotMoved) || !strings.Contains(o.MoveErr.Error(), "not moved to "+to+": ") {
			t.Errorf("%s: move error %v, want why it was not moved to %s", name, o.MoveErr, to)
		}
		if o.MovedTo != "" {
			t.Errorf("%s: moved to %q", name, o.MovedTo)
		}
	}
	a := got["a-good.csv"]
	if a.Err != nil || a.Result == nil || a.Result.Applied != 1 {
		t.Errorf("a-good.csv: %+v, want applied without error", a)
	}
	notMoved("a-good.csv", a, fo.Processed)
	b := got["b-broken.csv"]
	if b.Err == nil || !strings.Contains(b.Err.Error(), "missing required column") || errors.Is(b.Err, ErrNotMoved) {
		t.Errorf("b-broken.csv: error %v, want the import's own", b.Err)
	}
	notMoved("b-broken.csv", b, fo.Error)
	if got, want := names(t, in), []string{"a-good.csv", "b-broken.csv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the folder holds %q, want %q", got, want)
	}
	if got := f.onHand("IT0000001", "BLK-8", "S01", "BR01"); got != 3+2 {
		t.Errorf("on hand %d, want 3 + 2 (a applied)", got)
	}
}

// TestRejectsFolderBlocked: a file with no rejects imports whatever stands
// where its rejects folder would be. Clearing an earlier run's rejects
// file there failed with "not a directory" when a file stood in the way,
// failing a clean file for a folder it writes nothing to; such a rejects
// file cannot exist.
func TestRejectsFolderBlocked(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	path := f.write("in/a-good.csv", txnHead+"R,IT0000001,BLK-8,S01,BR01,2\n")
	blocker := f.write("blocker", "not a folder")
	res, err := ImportTransactions(ctx, f.d, path, Options{RejectsDir: filepath.Join(blocker, "error")})
	if err != nil || res.Applied != 1 {
		t.Fatalf("ImportTransactions: %+v, %v; want the record applied", res, err)
	}
	if got := f.onHand("IT0000001", "BLK-8", "S01", "BR01"); got != 3+2 {
		t.Errorf("on hand %d, want 3 + 2", got)
	}
}
