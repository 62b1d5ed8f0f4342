package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
)

// HTTPPullOptions say which list an http pull GETs and where its pages go.
type HTTPPullOptions struct {
	SiteName string
	Endpoint string
	// To is the local folder the pages go to.
	To    string
	Query url.Values
	// PageParam names the page number parameter (pages from 1); empty
	// means the endpoint answers in one page.
	PageParam string
	// SinceParam names the parameter that gets the watermark: the start
	// time of the last pull of the endpoint that finished (RFC 3339,
	// UTC). Not sent on the first pull.
	SinceParam string
	// PageSize, when known, ends the paging at a page with fewer items;
	// SizeParam, when set, sends it.
	PageSize  int
	SizeParam string
	// MaxPages stops a pull of an endpoint that never runs out (0: 1000).
	MaxPages int
	DryRun   bool
	LockDir  string
	RunID    int64
}

// ErrNotJSON means a page of a list was not JSON: the pull fails, the
// page is not kept and the watermark stays.
var ErrNotJSON = errors.New("page is not JSON")

// HTTPPull GETs a list endpoint page by page, until an empty page, a page
// with fewer items than the page size, or a page the same as the one
// before. Each page is written as one file in To (a temporary name,
// synced, renamed) and recorded in the transfer ledger with the endpoint
// as its remote path; a page with the sha256 of one already fetched from
// the endpoint is not written again. When every page is in, the run's
// start time becomes the endpoint's watermark.
func HTTPPull(ctx context.Context, d *db.DB, site *HTTPSite, o HTTPPullOptions) (*Result, error) {
	res := &Result{Site: o.SiteName, DryRun: o.DryRun, Files: []FileResult{}}
	if o.MaxPages <= 0 {
		o.MaxPages = 1000
	}
	if !o.DryRun {
		if err := os.MkdirAll(o.To, 0o750); err != nil {
			return nil, fmt.Errorf("pull to %q: %w", o.To, err)
		}
		lock, err := lockSite(o.LockDir, o.SiteName)
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
		// And across the hosts, as every pull (docs/transfers.md): two
		// hosts' pulls at once each found a page not fetched yet and
		// each kept it. Their ledger rows differ by the time each was
		// fetched, so transfers_pulled_once lets both in.
		unlockHosts, err := lockSiteAcrossHosts(ctx, d, o.SiteName)
		if err != nil {
			return nil, err
		}
		defer unlockHosts()
	}
	start := time.Now().UTC()
	since, err := ledger.Watermark(ctx, d, o.SiteName, o.Endpoint)
	if err != nil {
		return nil, err
	}
	stamp := start.Format("20060102T150405Z")
	prev := ""
	for page := 1; ; page++ {
		if page > o.MaxPages {
			return res, fmt.Errorf("%s %s: still more after %d pages: the watermark stays", o.SiteName, o.Endpoint, o.MaxPages)
		}
		q := url.Values{}
		for k, vs := range o.Query {
			q[k] = append([]string(nil), vs...)
		}
		if o.PageParam != "" {
			q.Set(o.PageParam, strconv.Itoa(page))
		}
		if o.SizeParam != "" && o.PageSize > 0 {
			q.Set(o.SizeParam, strconv.Itoa(o.PageSize))
		}
		if o.SinceParam != "" && since != "" {
			q.Set(o.SinceParam, since)
		}
		name := fmt.Sprintf("%s_%s_%s_p%04d.json", o.SiteName, endpointSlug(o.Endpoint), stamp, page)
		fr := FileResult{Local: filepath.Join(o.To, name), Remote: o.Endpoint, Status: "failed"}
		if t, err := target(o.Endpoint, q); err == nil {
			fr.Remote = t.String()
		}
		if o.DryRun {
			fr.Status = "would"
			res.add(fr)
			break
		}
		items, more, err := pullPage(ctx, d, site, o, q, &fr, prev)
		if err != nil {
			fr.Reason, fr.lost = err.Error(), err
			res.add(fr)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, res.errOn(nil)
		}
		if fr.Status != "" {
			res.add(fr)
		}
		prev = fr.SHA256
		if !more || items == 0 || o.PageParam == "" || (o.PageSize > 0 && items < o.PageSize) {
			break
		}
	}
	if !o.DryRun {
		if err := ledger.SetWatermark(ctx, d, o.SiteName, o.Endpoint, start.Format(time.RFC3339)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// pullPage GETs one page into a temporary file and keeps it unless it is
// empty or was fetched before. It returns the page's items, and more false
// when the page is the one before it again (an endpoint that ignores the
// page parameter).
func pullPage(ctx context.Context, d *db.DB, site *HTTPSite, o HTTPPullOptions, q url.Values, fr *FileResult, prev string) (items int, more bool, err error) {
	resp, err := site.do(ctx, request{method: http.MethodGet, endpoint: o.Endpoint, query: q})
	if err != nil {
		return 0, false, err
	}
	defer drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, false, fmt.Errorf("GET %s: answered %s: %s", o.Endpoint, resp.Status, snippet(body))
	}
	tmp := filepath.Join(o.To, tmpName(filepath.Base(fr.Local)))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, false, err
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp)
		}
	}()
	n, sum, err := copyCounted(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", o.Endpoint, err)
	}
	fr.Size, fr.SHA256 = n, sum
	if items, err = countItems(tmp); err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", fr.Remote, err)
	}
	if sum == prev {
		fr.Status = ""
		return items, false, nil
	}
	if items == 0 {
		fr.Status = ""
		return 0, false, nil
	}
	fetched, err := ledger.PageFetched(ctx, d, o.SiteName, o.Endpoint, sum)
	if err != nil {
		return 0, false, err
	}
	if fetched {
		fr.Status, fr.Reason = "skipped", "the same page was fetched before (same sha256)"
		return items, true, nil
	}
	if err := linkRename(tmp, fr.Local); err != nil {
		return 0, false, err
	}
	keep = true
	if err := fsx.SyncDir(o.To); err != nil {
		return 0, false, err
	}
	row := ledger.Transfer{Site: o.SiteName, Direction: "pull", LocalPath: fr.Local, RemotePath: o.Endpoint, Size: n,
		MTime: mtimeKey(time.Now()), SHA256: sum, RunID: o.RunID}
	id, err := ledger.StartTransfer(ctx, ledger.On(d), row)
	if err == nil {
		err = ledger.EndTransfer(ctx, d, id, ledger.TransferDone, n, sum, nil)
	}
	if err != nil {
		return 0, false, err
	}
	fr.Status = "done"
	return items, true, nil
}

// countItems checks that a page is JSON and counts its items: the
// elements of an array, or of the one array in an object; an object
// without an array is one item, an empty object none.
func countItems(p string) (int, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	notJSON := func(err error) error { return fmt.Errorf("%w: %v", ErrNotJSON, err) }
	tok, err := dec.Token()
	if err != nil {
		return 0, notJSON(err)
	}
	n := 0
	switch tok {
	case json.Delim('['):
		for dec.More() {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return 0, notJSON(err)
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return 0, notJSON(err)
		}
	case json.Delim('{'):
		keys, arrays := 0, []int{}
		for dec.More() {
			if _, err := dec.Token(); err != nil {
				return 0, notJSON(err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return 0, notJSON(err)
			}
			keys++
			if len(v) > 0 && v[0] == '[' {
				var a []json.RawMessage
				json.Unmarshal(v, &a)
				arrays = append(arrays, len(a))
			}
		}
		if _, err := dec.Token(); err != nil {
			return 0, notJSON(err)
		}
		switch {
		case len(arrays) == 1:
			n = arrays[0]
		case keys > 0:
			n = 1
		}
	default:
		return 0, notJSON(fmt.Errorf("want an array or an object, got %v", tok))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, notJSON(errors.New("more after the end of the page"))
	}
	return n, nil
}

// endpointSlug is an endpoint path as a part of a file name.
func endpointSlug(ep string) string {
	if i := strings.IndexAny(ep, "?#"); i >= 0 {
		ep = ep[:i]
	}
	var b strings.Builder
	for _, r := range strings.Trim(ep, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "root"
	}
	return b.String()
}
