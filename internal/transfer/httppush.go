package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

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
	res, st, release, err := startRun(ctx, d, o.SiteName, o.LockDir, o.DryRun)
	if err != nil {
		return nil, err
	}
	defer release()
	var w *ledgerWriter
	if !o.DryRun {
		if w, err = newLedgerWriter(ctx, d); err != nil {
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
func pushHTTPFile(ctx context.Context, st *stmts, w *ledgerWriter, site *HTTPSite, o HTTPPushOptions, local string) FileResult {
	fr := FileResult{Local: local, Remote: o.Method + " " + o.Endpoint, Status: "failed"}
	info, ok := fr.stat(local)
	if !ok {
		return fr
	}
	// The first pass checks the whole file, takes its sha256 and the
	// records' keys before anything is sent: a file broken in the middle
	// sends nothing.
	sum, recs, held, err := scanFile(local, o.PerFile)
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	fr.SHA256 = sum
	if o.DryRun {
		fr.Status, fr.Reason = "would", fmt.Sprintf("%d records", len(recs))
		return fr
	}
	// What an earlier run had answered, in one query per few hundred
	// keys rather than one per record.
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.key
	}
	answered, err := ledger.AnsweredKeys(ctx, st, o.SiteName, o.Endpoint, keys)
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	p := &filePush{st: st, w: w, site: site, o: o, local: local, size: info.Size(), skipped: len(answered)}
	if p.u, err = site.url(o.Endpoint, nil); err != nil {
		fr.Reason = err.Error()
		return fr
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The second pass gives the records not yet answered to the
	// requests: from memory, or read again by a goroutine of its own.
	var next func() (record, bool)
	var ferr error
	var reader sync.WaitGroup
	if held || o.PerFile {
		var mu sync.Mutex
		i := 0
		next = func() (record, bool) {
			mu.Lock()
			defer mu.Unlock()
			for ; i < len(recs); i++ {
				if !answered[recs[i].key] {
					i++
					return recs[i-1], true
				}
			}
			return record{}, false
		}
	} else {
		work := make(chan record, max(site.cfg.Parallel, 1))
		reader.Add(1)
		go func() {
			defer reader.Done()
			defer close(work)
			ferr = eachRecord(local, recs, func(r record) error {
				if answered[r.key] {
					return nil
				}
				select {
				case work <- r:
					return nil
				case <-fctx.Done():
					return fctx.Err()
				}
			})
		}()
		next = func() (record, bool) {
			r, ok := <-work
			return r, ok
		}
	}
	var wg sync.WaitGroup
	for range min(max(site.cfg.Parallel, 1), max(len(recs)-len(answered), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				r, ok := next()
				if !ok {
					return
				}
				if o.Wrap != "" && !o.PerFile {
					r.body = wrapped(r.body, o.Wrap)
				}
				if err := p.send(fctx, r); err != nil {
					p.fail(err)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	reader.Wait()
	if ferr != nil && fctx.Err() == nil {
		// The file changed between the passes.
		p.fail(ferr)
	}
	if err := p.closeRejects(); err != nil {
		p.fail(err)
	}
	// The answers are in the ledger before the file may leave.
	if err := w.Flush(); err != nil {
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
	// A run killed after writing it, before the move, left it: one row a
	// file.
	done, err := ledger.PushedWhole(ctx, st, o.SiteName, local, sum)
	if err == nil && !done {
		var id int64
		if id, err = ledger.StartTransfer(ctx, st, row); err == nil {
			err = ledger.EndTransfer(ctx, st, id, ledger.TransferDone, fr.Size, sum, nil)
		}
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

// keepBodies caps the bytes of records the first pass of a file keeps
// for the second: a larger file is read again rather than held.
var keepBodies int64 = 64 << 20

// scanFile reads a file through once before anything is sent: its
// sha256 and each record's line and key, and while they fit in
// keepBodies, their bodies (held says so). The file must be valid JSON,
// and a key may not be there twice (the second would be taken for the
// first). Sent as one body, the file is one record keyed by its sha256.
func scanFile(local string, perFile bool) (sum string, recs []record, held bool, err error) {
	f, err := os.Open(local)
	if err != nil {
		return "", nil, false, err
	}
	defer f.Close()
	h := sha256.New()
	r := io.TeeReader(f, h)
	seen := map[string]int{}
	held = true
	var size int64
	if !perFile {
		err = imports.EachJSON(r, "records", func(n, line int, raw json.RawMessage) error {
			key, err := recordKey(raw)
			if err != nil {
				return fmt.Errorf("%s: record %d (line %d): %w", local, n, line, err)
			}
			if key != "" {
				if first, ok := seen[key]; ok {
					return fmt.Errorf("%s: record %d (line %d): key %s again (record %d has it)", local, n, line, key, first)
				}
				seen[key] = n
			}
			rec := record{n: n, line: line, key: key}
			if size += int64(len(raw)); held && size <= keepBodies {
				rec.body = raw
			} else if held {
				held = false
				for i := range recs {
					recs[i].body = nil
				}
			}
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return "", nil, false, err
		}
	}
	// The reader may stop short of trailing space: the sum is the
	// whole file's.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", nil, false, err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if perFile {
		return sum, []record{{n: 1, line: 1, key: "sha256:" + sum}}, false, nil
	}
	for i := range recs {
		if recs[i].key == "" {
			// Without a key of its own, a record is known by the
			// file's sha256 and its number.
			recs[i].key = sum + ":" + strconv.Itoa(i+1)
		}
	}
	return sum, recs, held, nil
}

// eachRecord calls fn with each record of a file read again, its key and
// line from recs (scanFile's).
func eachRecord(local string, recs []record, fn func(record) error) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	return imports.EachJSON(f, "records", func(n, line int, raw json.RawMessage) error {
		if n > len(recs) {
			return fmt.Errorf("%s: record %d (line %d): the file changed while it was sent", local, n, line)
		}
		r := recs[n-1]
		r.body = raw
		return fn(r)
	})
}

// recordKey is a record's own key, "" without: its messageId (order
// events), else its onlineReferenceNo (a sales order, bare or in its
// salesOrder wrapper), a number or a string. Names match in any letter
// case, as GoFrugal's own samples mix them; of a name given twice, the
// last counts, as for encoding/json.
func recordKey(raw json.RawMessage) (string, error) {
	var id, ref, order []byte
	members(raw, func(name string, v []byte) {
		switch {
		case strings.EqualFold(name, "messageId"):
			id = v
		case strings.EqualFold(name, "onlineReferenceNo"):
			ref = v
		case strings.EqualFold(name, "salesOrder"):
			order = v
		}
	})
	switch {
	case id != nil:
		return keyValue("messageId", id)
	case order != nil && string(order) != "null":
		ref = nil
		members(order, func(name string, v []byte) {
			if strings.EqualFold(name, "onlineReferenceNo") {
				ref = v
			}
		})
		return keyValue("salesOrder.onlineReferenceNo", ref)
	}
	return keyValue("onlineReferenceNo", ref)
}

// members calls fn with the name and the value's text of each member of
// raw, a valid JSON value (as the decoder gave it), if it is an object.
// It reads the text once, without decoding the values: the records of a
// push are read for their key only, and a generic decode of each cost
// more than the rest of the first pass.
func members(raw []byte, fn func(name string, value []byte)) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return // '}' or the end
		}
		end := skipValue(raw, i)
		var name string
		if bytes.IndexByte(raw[i:end], '\\') < 0 {
			name = string(raw[i+1 : end-1])
		} else if json.Unmarshal(raw[i:end], &name) != nil {
			return
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return
		}
		i = skipSpace(raw, i+1)
		end = skipValue(raw, i)
		fn(name, raw[i:end])
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipValue is the end of the valid JSON value at b[i:].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		c := b[i]
		if c == '"' {
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			i++
		} else {
			if depth == 0 && (c == ',' || c == ':' || c == '}' || c == ']' || isJSONSpace(c)) {
				return i // after a number, true, false or null
			}
			i++
			switch c {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return i
		}
	}
	return i
}

// keyValue is a key field's value: a number or a non-empty string; null
// is no key.
func keyValue(name string, raw json.RawMessage) (string, error) {
	id := bytes.TrimSpace(raw)
	if len(id) == 0 || string(id) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(id, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("empty %s", name)
		}
		return s, nil
	}
	if _, err := strconv.ParseFloat(string(id), 64); err != nil {
		return "", fmt.Errorf("%s %s: want a number or a string", name, id)
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
	st    *stmts
	w     *ledgerWriter
	site  *HTTPSite
	o     HTTPPushOptions
	local string
	u     string // the endpoint's URL
	size  int64  // of the file, for --per file

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

// send delivers one record not yet answered and records the answer. It
// returns an error that ends the file: the site out of reach, credentials
// refused, or the ledger failing.
func (p *filePush) send(ctx context.Context, r record) error {
	o := p.o
	// The started row goes to the ledger with the next batch: a run
	// killed before the answer is recorded leaves it started (or no row),
	// and the record goes again with the same key, which the partner
	// de-duplicates on.
	row := ledger.Delivery{Site: o.SiteName, Endpoint: o.Endpoint, Key: r.key, LocalPath: p.local, Record: r.n, RunID: o.RunID}
	if err := p.w.Start(row); err != nil {
		return err
	}
	req := request{method: o.Method, endpoint: o.Endpoint, u: p.u, key: r.key}
	if o.PerFile {
		req.body, req.size = func() (io.ReadCloser, error) { return os.Open(p.local) }, p.size
	} else {
		body := r.body
		req.body, req.size = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }, int64(len(body))
	}
	resp, err := p.site.do(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			// Cut short by the end of the run: the answer is unknown and
			// the row stays started.
			return nil
		}
		row.Status, row.Error = ledger.DeliveryFailed, err.Error()
		p.w.End(row)
		return fmt.Errorf("record %d: %w", r.n, err)
	}
	row.HTTPStatus = resp.StatusCode
	ok, msg, unclear := p.site.verdict(resp)
	if unclear {
		row.Status, row.Error = ledger.DeliveryFailed, msg
		p.w.End(row)
		return fmt.Errorf("record %d: %s: %w", r.n, msg, ErrUnreachable)
	}
	if ok {
		row.Status = ledger.DeliveryDone
		if err := p.w.End(row); err != nil {
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
	return p.w.End(row)
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

// ledgerWriter writes the delivery ledger's rows of a push in batches:
// a transaction every batchWait (or as soon as maxBatch rows wait, or a
// Flush asks) takes every row that came in since the last, so neither
// one request nor many in parallel wait for a commit, or wake a writer,
// each. Rows are written in the order they came; Flush returns once all
// rows given so far are committed. A row not yet committed when the run is
// killed is a request whose answer is unknown: it goes again, with its
// key. The first failed write ends the push: every later call returns its
// error.
type ledgerWriter struct {
	// Prepared is the writer's connection; only run uses it, inside its
	// transactions.
	db.Prepared
	kick chan struct{} // wakes run before its tick
	done chan struct{}

	mu      sync.Mutex
	pending []ledgerOp
	waiters []chan error // Flush calls waiting for the next commit
	closed  bool
	err     error
}

// ledgerOp is one row to write: with start, the started row of a
// request; else its answer.
type ledgerOp struct {
	d     ledger.Delivery
	start bool
}

// maxBatch rows make the writer commit before batchWait is over.
const (
	maxBatch  = 1024
	batchWait = 20 * time.Millisecond
)

func newLedgerWriter(ctx context.Context, d *db.DB) (*ledgerWriter, error) {
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	w := &ledgerWriter{Prepared: db.Prepared{Conn: conn}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Start queues the started row of a request about to go.
func (w *ledgerWriter) Start(d ledger.Delivery) error { return w.put(ledgerOp{d: d, start: true}) }

// End queues the answer to a started request.
func (w *ledgerWriter) End(d ledger.Delivery) error { return w.put(ledgerOp{d: d}) }

func (w *ledgerWriter) put(op ledgerOp) error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	w.pending = append(w.pending, op)
	full := len(w.pending) >= maxBatch
	w.mu.Unlock()
	if full {
		w.wake()
	}
	return nil
}

func (w *ledgerWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Flush waits until the rows queued so far are committed.
func (w *ledgerWriter) Flush() error {
	c := make(chan error, 1)
	w.mu.Lock()
	w.waiters = append(w.waiters, c)
	w.mu.Unlock()
	w.wake()
	return <-c
}

// run commits what is pending at each tick or wake, until Close.
func (w *ledgerWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(batchWait)
	defer tick.Stop()
	ctx := context.Background()
	for {
		select {
		case <-w.kick:
		case <-tick.C:
		}
		w.mu.Lock()
		batch, waiters, closed, err := w.pending, w.waiters, w.closed, w.err
		w.pending, w.waiters = nil, nil
		w.mu.Unlock()
		if len(batch) > 0 && err == nil {
			if err = db.WithTx(ctx, w.Conn, true, func() error { return w.write(ctx, batch) }); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		for _, c := range waiters {
			c <- err
		}
		if closed {
			return
		}
	}
}

// write writes a batch's rows in order. A request started and answered
// within the batch is one row, written with its answer.
func (w *ledgerWriter) write(ctx context.Context, batch []ledgerOp) error {
	answer := map[string]int{} // key -> its answer's place in batch
	for i, op := range batch {
		if !op.start {
			answer[op.d.Key] = i
		}
	}
	merged := map[int]bool{}
	for i, op := range batch {
		var err error
		switch {
		case merged[i]:
			continue
		case op.start:
			if j, ok := answer[op.d.Key]; ok && j > i {
				op.d.Status, op.d.HTTPStatus, op.d.Error = batch[j].d.Status, batch[j].d.HTTPStatus, batch[j].d.Error
				merged[j] = true
			}
			err = ledger.StartDelivery(ctx, w, op.d)
		default:
			err = ledger.EndDelivery(ctx, w, op.d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close commits what is queued and releases the connection.
func (w *ledgerWriter) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wake()
	<-w.done
	w.Prepared.Close()
	w.Conn.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
