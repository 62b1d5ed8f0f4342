package transfer

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/ledger"
)

// HTTPPushOptions say what an http push sends where.
type HTTPPushOptions struct {
	SiteName string
	// Files are explicit local files; FromDir with Pattern is the
	// alternative.
	Files   []string
	FromDir string
	Pattern string
	// Endpoint is the path under the site's base URL; Method POST or PUT.
	Endpoint string
	Method   string
	// PerFile sends each file as one body instead of one request per
	// record.
	PerFile bool
	// Wrap, when set, puts each record that is not already so wrapped in
	// an object with this one key ({"salesOrder": {...}}).
	Wrap    string
	DryRun  bool
	LockDir string
	RunID   int64
}

// rejectsSuffix names the rejects file of a pushed file, in sent/ beside
// the file.
const rejectsSuffix = ".rejects.csv"

// HTTPPush sends each record of each file (NDJSON, a JSON array or one
// object) as one request to the endpoint, or each file as one body, and
// records every answer in the delivery ledger by the record's key. A file
// moves to sent/ once each of its records was delivered or refused; a
// refused record goes to sent/FILE.rejects.csv with the partner's message.
// A run that ends early (killed, the site unreachable) leaves the file for
// the next run, which sends only the records not yet delivered.
func HTTPPush(ctx context.Context, d *db.DB, site *HTTPSite, o HTTPPushOptions) (*Result, error) {
	if o.Method == "" {
		o.Method = http.MethodPost
	}
	files, err := pushList(PushOptions{Files: o.Files, FromDir: o.FromDir, Pattern: o.Pattern, DryRun: o.DryRun})
	if err != nil {
		return nil, err
	}
	res, st, release, err := startRun(d, o.SiteName, o.LockDir, o.DryRun)
	if err != nil {
		return nil, err
	}
	defer release()
	var w *groupWriter
	if !o.DryRun {
		if w, err = newGroupWriter(ctx, d); err != nil {
			return nil, err
		}
		defer w.Close()
	}
	for _, local := range files {
		if strings.HasSuffix(local, markerSuffix) {
			// A marker means nothing to an API: it goes to sent/ with its
			// file.
			continue
		}
		fr := pushHTTPFile(ctx, st, w, site, o, local)
		res.add(fr)
		if fr.lost != nil || ctx.Err() != nil {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, res.errOn(nil)
}

// record is one request of a file.
type record struct {
	n, line int
	key     string
	body    []byte
}

// pushHTTPFile sends the records of one file.
func pushHTTPFile(ctx context.Context, st *stmts, w *groupWriter, site *HTTPSite, o HTTPPushOptions, local string) FileResult {
	fr := FileResult{Local: local, Remote: o.Method + " " + o.Endpoint, Status: "failed"}
	info, err := os.Stat(local)
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	if !info.Mode().IsRegular() {
		fr.Reason = "not a regular file"
		return fr
	}
	fr.Size = info.Size()
	// The first pass checks the whole file and takes its sha256 before
	// anything is sent: a file broken in the middle sends nothing.
	sum, err := fileSum(local)
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	fr.SHA256 = sum
	n := 1
	if !o.PerFile {
		if n, err = checkRecords(local, sum); err != nil {
			fr.Reason = err.Error()
			return fr
		}
	}
	if o.DryRun {
		fr.Status, fr.Reason = "would", fmt.Sprintf("%d records", n)
		return fr
	}
	p := &filePush{ctx: ctx, st: st, w: w, site: site, o: o, local: local, size: info.Size()}
	work := make(chan record)
	var wg sync.WaitGroup
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(max(site.cfg.Parallel, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if err := p.send(fctx, r); err != nil {
					p.fail(err)
					cancel()
				}
			}
		}()
	}
	// The second pass streams the records to the requests.
	feed := func(r record) error {
		select {
		case work <- r:
			return nil
		case <-fctx.Done():
			return fctx.Err()
		}
	}
	var ferr error
	if o.PerFile {
		ferr = feed(record{n: 1, line: 1, key: "sha256:" + sum})
	} else {
		ferr = eachRecord(local, sum, o.Wrap, feed)
	}
	close(work)
	wg.Wait()
	if ferr != nil && fctx.Err() == nil {
		// The file changed between the passes.
		p.fail(ferr)
	}
	if err := p.closeRejects(); err != nil {
		p.fail(err)
	}
	counts := fmt.Sprintf("%d delivered, %d already delivered, %d rejected", p.delivered, p.skipped, p.rejected)
	if p.err != nil {
		// What ended the file (the site out of reach, credentials or a
		// certificate refused, a redirect) ends the run too.
		fr.Reason, fr.lost = counts+"; "+p.err.Error(), p.err
		return fr
	}
	if err := ctx.Err(); err != nil {
		fr.Reason = counts + "; " + err.Error()
		return fr
	}
	row := ledger.Transfer{Site: o.SiteName, Direction: "push", LocalPath: local, RemotePath: o.Endpoint, Size: fr.Size,
		MTime: mtimeKey(info.ModTime()), SHA256: sum, RunID: o.RunID}
	// Every record is answered in the delivery ledger: the file row is a
	// summary, and the file goes to sent/ even when it cannot be written.
	id, err := ledger.StartTransfer(ctx, st, row)
	if err == nil {
		err = ledger.EndTransfer(ctx, st, id, ledger.TransferDone, fr.Size, sum, nil)
	}
	fr.Status, fr.Reason = "done", counts
	if err != nil {
		fr.Reason = join2(fr.Reason, err.Error())
	}
	if p.rejected > 0 {
		fr.Rejected = p.rejected
		fr.Reason += " (sent/" + filepath.Base(local) + rejectsSuffix + ")"
	}
	if err := moveToSent(local); err != nil {
		fr.Reason = join2(fr.Reason, "sent, but "+err.Error())
	} else if _, err := os.Stat(local + markerSuffix); err == nil {
		moveToSent(local + markerSuffix)
	}
	return fr
}

// checkRecords reads a file through before anything is sent: it must be
// valid JSON, and a key may not be there twice (the second would be taken
// for the first). It returns the number of records.
func checkRecords(local, sum string) (int, error) {
	seen := map[string]int{}
	err := eachRecord(local, sum, "", func(r record) error {
		if first, ok := seen[r.key]; ok {
			return fmt.Errorf("%s: record %d (line %d): messageId %s again (record %d has it)", local, r.n, r.line, r.key, first)
		}
		seen[r.key] = r.n
		return nil
	})
	return len(seen), err
}

// eachRecord calls fn with each record of a file and its key: the
// record's messageId, else the file's sha256 and the record's number.
// With wrap, the body is wrapped (wrapped).
func eachRecord(local, sum, wrap string, fn func(record) error) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	return imports.EachJSON(f, "records", func(n, line int, raw json.RawMessage) error {
		key, err := recordKey(raw)
		if err != nil {
			return fmt.Errorf("%s: record %d (line %d): %w", local, n, line, err)
		}
		if key == "" {
			key = sum + ":" + strconv.Itoa(n)
		}
		body := []byte(raw)
		if wrap != "" {
			body = wrapped(raw, wrap)
		}
		return fn(record{n: n, line: line, key: key, body: body})
	})
}

// recordKey is a record's messageId (a number or a string), "" without.
func recordKey(raw json.RawMessage) (string, error) {
	var m struct {
		MessageID json.RawMessage `json:"messageId"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		// An array or a value, not an object: no messageId.
		return "", nil
	}
	id := bytes.TrimSpace(m.MessageID)
	if len(id) == 0 || string(id) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(id, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return "", errors.New("empty messageId")
		}
		return s, nil
	}
	if _, err := strconv.ParseFloat(string(id), 64); err != nil {
		return "", fmt.Errorf("messageId %s: want a number or a string", id)
	}
	return string(id), nil
}

// wrapped puts raw in {"KEY": raw} unless it is an object whose only key
// is already KEY (in any letter case).
func wrapped(raw json.RawMessage, key string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil && len(m) == 1 {
		for k := range m {
			if strings.EqualFold(k, key) {
				return raw
			}
		}
	}
	k, _ := json.Marshal(key)
	out := make([]byte, 0, len(raw)+len(k)+3)
	out = append(append(append(append(out, '{'), k...), ':'), raw...)
	return append(out, '}')
}

// filePush is the state of one file's records in flight.
type filePush struct {
	ctx   context.Context
	st    *stmts
	w     *groupWriter
	site  *HTTPSite
	o     HTTPPushOptions
	local string
	size  int64 // of the file, for --per file

	mu                           sync.Mutex
	err                          error
	delivered, skipped, rejected int
	rejects                      *os.File
	rw                           *csv.Writer
}

func (p *filePush) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// send delivers one record unless the ledger has its answer, and records
// the answer. It returns an error that ends the file: the site out of
// reach, credentials refused, or the ledger failing.
func (p *filePush) send(ctx context.Context, r record) error {
	o := p.o
	status, err := ledger.DeliveryStatus(ctx, p.st, o.SiteName, o.Endpoint, r.key)
	if err != nil {
		return err
	}
	if status == ledger.DeliveryDone || status == ledger.DeliveryRejected {
		p.mu.Lock()
		p.skipped++
		p.mu.Unlock()
		return nil
	}
	// Started before the request goes: killed before the answer is
	// recorded, the record goes again with the same key, which the
	// partner de-duplicates on.
	row := ledger.Delivery{Site: o.SiteName, Endpoint: o.Endpoint, Key: r.key, LocalPath: p.local, Record: r.n, RunID: o.RunID}
	if err := ledger.StartDelivery(ctx, p.w, row); err != nil {
		return err
	}
	req := request{method: o.Method, endpoint: o.Endpoint, key: r.key}
	if o.PerFile {
		req.body, req.size = func() (io.ReadCloser, error) { return os.Open(p.local) }, p.size
	} else {
		body := r.body
		req.body, req.size = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }, int64(len(body))
	}
	resp, err := p.site.do(ctx, req)
	nctx := context.WithoutCancel(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Cut short by the end of the run: the answer is unknown and
			// the row stays started.
			return nil
		}
		row.Status, row.Error = ledger.DeliveryFailed, err.Error()
		ledger.EndDelivery(nctx, p.w, row)
		return fmt.Errorf("record %d: %w", r.n, err)
	}
	row.HTTPStatus = resp.StatusCode
	ok, msg, unclear := p.site.verdict(resp)
	if unclear {
		row.Status, row.Error = ledger.DeliveryFailed, msg
		ledger.EndDelivery(nctx, p.w, row)
		return fmt.Errorf("record %d: %s: %w", r.n, msg, ErrUnreachable)
	}
	if ok {
		row.Status = ledger.DeliveryDone
		if err := ledger.EndDelivery(nctx, p.w, row); err != nil {
			return err
		}
		p.mu.Lock()
		p.delivered++
		p.mu.Unlock()
		return nil
	}
	// A refusal: the rejects file first, then the ledger, so a kill
	// between them can repeat a rejects line but never lose one.
	if err := p.reject(r, row.HTTPStatus, msg); err != nil {
		return err
	}
	row.Status, row.Error = ledger.DeliveryRejected, msg
	return ledger.EndDelivery(nctx, p.w, row)
}

// reject appends a refused record to sent/FILE.rejects.csv: its number,
// line, key, the status code, the partner's message and the record.
func (p *filePush) reject(r record, code int, msg string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected++
	if p.rejects == nil {
		sent := filepath.Join(filepath.Dir(p.local), "sent")
		if err := os.MkdirAll(sent, 0o750); err != nil {
			return fmt.Errorf("rejects: %w", err)
		}
		name := filepath.Join(sent, filepath.Base(p.local)+rejectsSuffix)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("rejects: %w", err)
		}
		p.rejects, p.rw = f, csv.NewWriter(f)
		if st, err := f.Stat(); err == nil && st.Size() == 0 {
			p.rw.Write([]string{"record", "line", "key", "status", "error", "data"})
		}
	}
	body := string(r.body)
	if p.o.PerFile {
		body = ""
	}
	p.rw.Write([]string{strconv.Itoa(r.n), strconv.Itoa(r.line), r.key, strconv.Itoa(code), msg, body})
	p.rw.Flush()
	if err := p.rw.Error(); err != nil {
		return fmt.Errorf("rejects: %w", err)
	}
	return p.rejects.Sync()
}

func (p *filePush) closeRejects() error {
	if p.rejects == nil {
		return nil
	}
	return p.rejects.Close()
}

// groupWriter runs the delivery ledger's writes of parallel requests: the
// writes that come in while a transaction commits go together in the
// next one, so parallel requests do not wait for one commit each. Each
// write has returned only once its transaction committed: a record is
// recorded as started before its request goes.
type groupWriter struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	mu      sync.Mutex
	pending []*groupOp
	running bool
}

type groupOp struct {
	query string
	args  []any
	done  chan error
}

func newGroupWriter(ctx context.Context, d *db.DB) (*groupWriter, error) {
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	return &groupWriter{conn: conn, stmts: map[string]*sql.Stmt{}}, nil
}

// ExecContext runs query in the next group's transaction and returns when
// it committed; the result is nil (ledger.Execer).
func (g *groupWriter) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	op := &groupOp{query: query, args: args, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, op)
	if g.running {
		g.mu.Unlock()
		return nil, <-op.done
	}
	// This caller commits groups until none is waiting.
	g.running = true
	for len(g.pending) > 0 {
		batch := g.pending
		g.pending = nil
		g.mu.Unlock()
		wctx := context.WithoutCancel(ctx)
		err := db.WithTx(wctx, g.conn, true, func() error {
			for _, o := range batch {
				st, ok := g.stmts[o.query]
				if !ok {
					var err error
					if st, err = g.conn.PrepareContext(wctx, o.query); err != nil {
						return err
					}
					g.stmts[o.query] = st
				}
				if _, err := st.ExecContext(wctx, o.args...); err != nil {
					return err
				}
			}
			return nil
		})
		for _, o := range batch {
			o.done <- err
		}
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	return nil, <-op.done
}

// Close releases the connection.
func (g *groupWriter) Close() {
	for _, st := range g.stmts {
		st.Close()
	}
	g.conn.Close()
}
