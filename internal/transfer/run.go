package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/posbridge/posbridge/internal/fsx"
)

// Result says what a push or pull did with each file.
type Result struct {
	Site   string       `json:"site"`
	DryRun bool         `json:"dry_run,omitempty"`
	Files  []FileResult `json:"files"`
	Done   int          `json:"done"`
	Would  int          `json:"would,omitempty"`
	Skip   int          `json:"skipped"`
	Failed int          `json:"failed"`
}

// FileResult is one file of a run. Status is done, skipped or failed, or
// would for a dry run; Reason says why a file was skipped or failed.
type FileResult struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (r *Result) add(f FileResult) {
	switch f.Status {
	case "done":
		r.Done++
	case "skipped":
		r.Skip++
	case "failed":
		r.Failed++
	case "would":
		r.Would++
	}
	r.Files = append(r.Files, f)
}

// err is the error of a run in which some files failed.
func (r *Result) err() error {
	if r.Failed == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d of %d files failed", r.Site, r.Failed, len(r.Files))
}

// errOn is err, but when the site's connection was lost during the run
// the error says so and wraps ErrUnreachable: the run may be retried.
func (r *Result) errOn(site Site) error {
	err := r.err()
	if err == nil {
		return nil
	}
	if b, ok := site.(interface{ Broken() error }); ok {
		if berr := b.Broken(); berr != nil {
			return fmt.Errorf("%v: %w", err, berr)
		}
	}
	return err
}

// lockSite takes the site's lock: two runs of one site never overlap, so a
// file is never fetched twice.
func lockSite(lockDir, site string) (*fsx.Lock, error) {
	l, err := fsx.TryLock(filepath.Join(lockDir, "site-"+site+".lock"), 0)
	if errors.Is(err, fsx.ErrLocked) {
		return nil, fmt.Errorf("site %s: %w (%v)", site, ErrBusy, err)
	}
	return l, err
}

// copyCounted copies src to dst and returns the byte count and sha256.
func copyCounted(dst io.Writer, src io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), src)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// mtimeKey is how a modification time is stored in the ledger.
func mtimeKey(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
