package inquiry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/imports"
)

// A request another run took away (hosts answering one shared folder) is
// that run's: gone before this run read it, it is not a failure of this
// run; a request whose move fails while it is still there is. (The move
// after the answer treats a request gone meanwhile the same way, with
// imports.Taken; that race has no hook to be forced here.)
func TestRequestTakenByAnotherRun(t *testing.T) {
	ctx := context.Background()
	d := demoDB(t)
	dir := t.TempDir()
	o := RequestOptions{Responses: filepath.Join(dir, "responses"), Folders: imports.Folders{}}
	if err := os.MkdirAll(o.Responses, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := answerFile(ctx, d, filepath.Join(dir, "gone.json"), o); !errors.Is(err, errTaken) {
		t.Errorf("a request gone before it was read: %v, want errTaken", err)
	}

	// The processed folder is a file, so the move fails with the request
	// still in place: a failure. Then the request goes, as another run's
	// move would take it.
	req := filepath.Join(dir, "moved.json")
	if err := os.WriteFile(req, []byte(`{"type":"inventory","item":"X"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Folders.Processed = filepath.Join(dir, "processed")
	o.Folders.Error = o.Folders.Processed
	if err := os.WriteFile(o.Folders.Processed, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := answerFile(ctx, d, req, o); err == nil || errors.Is(err, errTaken) {
		t.Errorf("a request still there whose move failed: %v, want a failure", err)
	}
	os.Remove(req)
	if _, err := answerFile(ctx, d, req, o); !errors.Is(err, errTaken) {
		t.Errorf("a request gone after it was listed: %v, want errTaken", err)
	}
}
