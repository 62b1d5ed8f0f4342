package transfer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/transfer"
)

// partner is a test partner API: it records each request and answers as
// its answer function says.
type partner struct {
	mu     sync.Mutex
	got    []got
	answer func(w http.ResponseWriter, r *http.Request, key string, n int) bool
}

// got is one request a partner read.
type got struct {
	method, path, key, auth, query string
	body                           string
	// length is the Content-Length: bodies are not sent chunked.
	length int64
}

// ServeHTTP records the request (n counts the requests with its key so
// far) and answers it; without an answer function, or when it returns
// false, the answer is 200 {"hasError": false, "errorMessage": ""}.
func (p *partner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	p.mu.Lock()
	n := 0
	for _, g := range p.got {
		if g.key == key {
			n++
		}
	}
	p.got = append(p.got, got{r.Method, r.URL.Path, key, r.Header.Get("Authorization") + r.Header.Get("X-Auth-Token"), r.URL.RawQuery, string(body), r.ContentLength})
	answer := p.answer
	p.mu.Unlock()
	if answer != nil && answer(w, r, key, n) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"hasError": false, "errorMessage": ""}`)
}

func (p *partner) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, g := range p.got {
		if key == "" || g.key == key {
			n++
		}
	}
	return n
}

// caFile writes the test server's certificate where a site can trust it.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpSite is a site for srv, trusting its certificate, with a bearer
// token "good" unless cfg says otherwise.
func httpSite(t *testing.T, srv *httptest.Server, edit func(*transfer.HTTPConfig)) *transfer.HTTPSite {
	t.Helper()
	cfg := transfer.HTTPConfig{Name: "pos", BaseURL: srv.URL, CAFile: caFile(t, srv), BearerEnv: "POS_TOKEN",
		Timeout: 5 * time.Second, Retries: 3, Backoff: 10 * time.Millisecond, BackoffMax: 2 * time.Second, Parallel: 4,
		HasErrorRule: true, LookupEnv: func(k string) (string, bool) {
			if k == "POS_TOKEN" {
				return "good", true
			}
			return "", false
		}}
	if edit != nil {
		edit(&cfg)
	}
	s, err := transfer.NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openTestDB(t *testing.T) *db.DB {
	t.Helper()
	d := dbtest.Open(t)
	return d
}

// events writes an NDJSON file of n order events, messageId 1001.. .
func events(t *testing.T, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "{\"messageId\": %d, \"eventType\": \"SUBORDER_CREATE\", \"omsSubOrderId\": %d}\n", 1000+i, 500+i)
	}
	p := filepath.Join(dir, "events.ndjson")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func push(t *testing.T, d *db.DB, s *transfer.HTTPSite, file string) (*transfer.Result, error) {
	t.Helper()
	return transfer.HTTPPush(context.Background(), d, s, transfer.HTTPPushOptions{SiteName: "pos", Files: []string{file},
		Endpoint: "/pos/sales", Method: http.MethodPost, LockDir: t.TempDir()})
}

// deliveries maps each key of the ledger to its status.
func deliveries(t *testing.T, d *db.DB) map[string]ledger.Delivery {
	t.Helper()
	m := map[string]ledger.Delivery{}
	err := ledger.ListDeliveries(context.Background(), d, ledger.TransferFilter{}, func(x ledger.Delivery) error {
		if _, dup := m[x.Key]; dup {
			t.Errorf("key %s twice in the ledger", x.Key)
		}
		m[x.Key] = x
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sentAway(t *testing.T, file string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(filepath.Dir(file), "sent", filepath.Base(file)))
	_, left := os.Stat(file)
	return err == nil && left != nil
}

func TestHTTPPushRetries5xxOnce(t *testing.T) {
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "1002" && n == 0 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return true
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d, dir := openTestDB(t), t.TempDir()
	file := events(t, dir, 3)
	res, err := push(t, d, httpSite(t, srv, nil), file)
	if err != nil {
		t.Fatalf("push: %v (%+v)", err, res)
	}
	if p.count("1002") != 2 || p.count("1001") != 1 || p.count("1003") != 1 {
		t.Errorf("requests by key: %+v", p.got)
	}
	for _, g := range p.got {
		if g.auth != "Bearer good" || g.path != "/pos/sales" || g.method != "POST" || !strings.Contains(g.body, `"messageId": `+g.key) ||
			g.length != int64(len(g.body)) {
			t.Errorf("request %+v", g)
		}
	}
	ds := deliveries(t, d)
	for _, k := range []string{"1001", "1002", "1003"} {
		if ds[k].Status != ledger.DeliveryDone || ds[k].HTTPStatus != 200 {
			t.Errorf("key %s: %+v", k, ds[k])
		}
	}
	if !sentAway(t, file) {
		t.Error("file not moved to sent/")
	}
	// Pushed again (a copy of the file): nothing goes twice.
	file = events(t, dir, 3)
	if _, err := push(t, d, httpSite(t, srv, nil), file); err != nil {
		t.Fatal(err)
	}
	if n := p.count(""); n != 4 {
		t.Errorf("%d requests after the second push, want 4", n)
	}
}

func TestHTTPPush429RetryAfter(t *testing.T) {
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d := openTestDB(t)
	file := events(t, t.TempDir(), 1)
	start := time.Now()
	if _, err := push(t, d, httpSite(t, srv, nil), file); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %s, Retry-After said 1s", el)
	}
	if p.count("1001") != 2 || deliveries(t, d)["1001"].Status != ledger.DeliveryDone {
		t.Errorf("requests %+v", p.got)
	}
	// A Retry-After beyond backoff_max ends the retries: exit 75.
	p2 := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}}
	srv2 := httptest.NewTLSServer(p2)
	defer srv2.Close()
	file = events(t, t.TempDir(), 1)
	_, err := transfer.HTTPPush(context.Background(), d, httpSite(t, srv2, nil), transfer.HTTPPushOptions{SiteName: "other",
		Files: []string{file}, Endpoint: "/pos/sales", LockDir: t.TempDir()})
	if !errors.Is(err, transfer.ErrUnreachable) || p2.count("") != 1 {
		t.Errorf("err %v after %d requests, want ErrUnreachable after 1", err, p2.count(""))
	}
	if _, serr := os.Stat(file); serr != nil {
		t.Error("file not left for the next run")
	}
}

func TestHTTPPushHasErrorRejected(t *testing.T) {
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "1002" {
			io.WriteString(w, `{"hasError": true, "errorMessage": "unknown location L9"}`)
			return true
		}
		if key == "1003" {
			http.Error(w, `{"error":"bad field"}`, http.StatusUnprocessableEntity)
			return true
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d, dir := openTestDB(t), t.TempDir()
	file := events(t, dir, 4)
	res, err := push(t, d, httpSite(t, srv, nil), file)
	if err != nil || res.Rejected != 2 {
		t.Fatalf("push: %v, %d rejected", err, res.Rejected)
	}
	ds := deliveries(t, d)
	if ds["1001"].Status != ledger.DeliveryDone || ds["1004"].Status != ledger.DeliveryDone {
		t.Errorf("delivered: %+v", ds)
	}
	if ds["1002"].Status != ledger.DeliveryRejected || ds["1002"].Error != "unknown location L9" || ds["1003"].HTTPStatus != 422 {
		t.Errorf("rejected: %+v %+v", ds["1002"], ds["1003"])
	}
	rej, err := os.ReadFile(filepath.Join(dir, "sent", "events.ndjson.rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rej), "unknown location L9") || !strings.Contains(string(rej), "2,2,1002,200,") ||
		!strings.Contains(string(rej), "3,3,1003,422,") || strings.Count(string(rej), "\n") != 3 {
		t.Errorf("rejects:\n%s", rej)
	}
	if !sentAway(t, file) {
		t.Error("a file whose records were all answered stays")
	}
}

func TestHTTPPushConnectionCut(t *testing.T) {
	p := &partner{}
	p.answer = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "1001" && n == 0 {
			// The request was read; the answer is lost.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		}
		return false
	}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	srv.EnableHTTP2 = false
	d := openTestDB(t)
	file := events(t, t.TempDir(), 2)
	if _, err := push(t, d, httpSite(t, srv, nil), file); err != nil {
		t.Fatal(err)
	}
	if p.count("1001") != 2 {
		t.Errorf("key 1001 sent %d times, want 2 (the same key again)", p.count("1001"))
	}
	if ds := deliveries(t, d); ds["1001"].Status != ledger.DeliveryDone || ds["1002"].Status != ledger.DeliveryDone {
		t.Errorf("ledger %+v", ds)
	}
}

func TestHTTPPushStalledServer(t *testing.T) {
	release := make(chan struct{})
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	defer close(release)
	d := openTestDB(t)
	file := events(t, t.TempDir(), 1)
	s := httpSite(t, srv, func(c *transfer.HTTPConfig) { c.Timeout, c.Retries = 200*time.Millisecond, 1 })
	start := time.Now()
	_, err := push(t, d, s, file)
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %s", el)
	}
	if st := deliveries(t, d)["1001"].Status; st == ledger.DeliveryDone {
		t.Errorf("status %s", st)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("file moved")
	}
}

func TestHTTPPushWrongToken(t *testing.T) {
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if r.Header.Get("X-Auth-Token") != "right" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return true
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d := openTestDB(t)
	file := events(t, t.TempDir(), 5)
	s := httpSite(t, srv, func(c *transfer.HTTPConfig) {
		c.BearerEnv, c.Header, c.HeaderEnv = "", "X-Auth-Token", "POS_TOKEN"
	})
	_, err := push(t, d, s, file)
	if !errors.Is(err, transfer.ErrAuth) || errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "good") {
		t.Errorf("the token is in the error: %v", err)
	}
	for k, x := range deliveries(t, d) {
		if x.Status == ledger.DeliveryDone {
			t.Errorf("key %s marked delivered", k)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("file moved")
	}
	if p.count("") > 4 {
		t.Errorf("%d requests after a 401: the run goes on", p.count(""))
	}
}

func TestHTTPUntrustedCertificate(t *testing.T) {
	p := &partner{}
	// httptest's servers share one certificate: srv gets one of its own.
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	srv.StartTLS()
	defer srv.Close()
	other := httptest.NewTLSServer(p)
	defer other.Close()
	d := openTestDB(t)
	file := events(t, t.TempDir(), 1)
	// Trusting another server's certificate only: srv's is refused.
	s := httpSite(t, srv, func(c *transfer.HTTPConfig) { c.CAFile = caFile(t, other) })
	_, err := push(t, d, s, file)
	if err == nil || errors.Is(err, transfer.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v, want a refused certificate (not retried)", err)
	}
	if p.count("") != 0 {
		t.Errorf("%d requests reached the server", p.count(""))
	}
	if _, err := httpSite(t, srv, func(c *transfer.HTTPConfig) { c.CAFile = "" }).Test(context.Background()); err == nil {
		t.Error("a certificate not in the system's CAs nor the CA file was accepted")
	}
}

// selfSigned is a certificate for 127.0.0.1 that no CA signed.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestHTTPRedirectToAnotherHost(t *testing.T) {
	elsewhere := &partner{}
	b := httptest.NewTLSServer(elsewhere)
	defer b.Close()
	a := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, b.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer a.Close()
	d := openTestDB(t)
	file := events(t, t.TempDir(), 1)
	_, err := push(t, d, httpSite(t, a, nil), file)
	if !errors.Is(err, transfer.ErrRedirect) {
		t.Fatalf("err %v, want ErrRedirect", err)
	}
	if elsewhere.count("") != 0 {
		t.Errorf("the redirect was followed: %+v", elsewhere.got)
	}
}

func TestHTTPPushResume(t *testing.T) {
	down := true
	var mu sync.Mutex
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		if down && key >= "1004" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d := openTestDB(t)
	file := events(t, t.TempDir(), 6)
	s := httpSite(t, srv, func(c *transfer.HTTPConfig) { c.Retries, c.Parallel = 0, 1 })
	if _, err := push(t, d, s, file); !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("first run: %v, want ErrUnreachable", err)
	}
	// A run killed after sending 1005, before its answer was recorded.
	if err := ledger.StartDelivery(context.Background(), d, ledger.Delivery{Site: "pos", Endpoint: "/pos/sales", Key: "1005", LocalPath: file, Record: 5}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	before := map[string]int{}
	for _, k := range []string{"1001", "1002", "1003", "1004", "1005", "1006"} {
		before[k] = p.count(k)
	}
	if _, err := push(t, d, s, file); err != nil {
		t.Fatal(err)
	}
	for k, n := range before {
		again := p.count(k) - n
		want := 1
		if k < "1004" {
			want = 0
		}
		if again != want {
			t.Errorf("key %s sent %d times by the second run, want %d", k, again, want)
		}
	}
	for k, x := range deliveries(t, d) {
		if x.Status != ledger.DeliveryDone {
			t.Errorf("key %s: %s", k, x.Status)
		}
	}
	if !sentAway(t, file) {
		t.Error("file not moved")
	}
}

func TestHTTPPushKeysAndWrap(t *testing.T) {
	p := &partner{}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d, dir := openTestDB(t), t.TempDir()
	file := filepath.Join(dir, "orders.json")
	os.WriteFile(file, []byte(`[{"onlineReferenceNo": "A1"}, {"salesOrder": {"OnlineReferenceNo": 2}}, {"salesOrder": {"status": "pending"}}]`), 0o600)
	_, err := transfer.HTTPPush(context.Background(), d, httpSite(t, srv, func(c *transfer.HTTPConfig) { c.HasErrorRule, c.Parallel = false, 1 }),
		transfer.HTTPPushOptions{SiteName: "estore", Files: []string{file}, Endpoint: "/api/v1/salesOrders", Wrap: "salesOrder", LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 3 || p.got[0].body != `{"salesOrder":{"onlineReferenceNo": "A1"}}` || p.got[1].body != `{"salesOrder": {"OnlineReferenceNo": 2}}` {
		t.Errorf("bodies: %+v", p.got)
	}
	// A sales order's key is its onlineReferenceNo (any letter case);
	// without one, the file's sha256 and the record's number.
	keys := map[string]bool{}
	for _, g := range p.got {
		keys[g.key] = true
	}
	if !keys["A1"] || !keys["2"] || len(keys) != 3 {
		t.Errorf("keys %v", keys)
	}
	for k := range keys {
		if len(k) > 2 && (len(k) != 64+2 || !strings.HasSuffix(k, ":3")) {
			t.Errorf("key %q, want the sha256 and :3", k)
		}
	}
}

func TestHTTPPull(t *testing.T) {
	var mu sync.Mutex
	notJSON := false
	p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		if notJSON {
			io.WriteString(w, "<html>maintenance</html>")
			return true
		}
		switch r.URL.Query().Get("page") {
		case "1":
			io.WriteString(w, `[{"purchaseOrderId": 1}, {"purchaseOrderId": 2}]`)
		case "2":
			io.WriteString(w, `[{"purchaseOrderId": 3}]`)
		default:
			io.WriteString(w, `[]`)
		}
		return true
	}}
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	d, to := openTestDB(t), t.TempDir()
	s := httpSite(t, srv, nil)
	o := transfer.HTTPPullOptions{SiteName: "wms", Endpoint: "/api/v1/purchaseOrders", To: to, PageParam: "page",
		SinceParam: "from", Query: map[string][]string{"goodsOwnerId": {"7"}}, LockDir: t.TempDir()}
	res, err := transfer.HTTPPull(context.Background(), d, s, o)
	if err != nil || res.Done != 2 {
		t.Fatalf("pull: %v %+v", err, res)
	}
	if len(p.got) != 3 || strings.Contains(p.got[0].query, "from=") || !strings.Contains(p.got[0].query, "goodsOwnerId=7") {
		t.Errorf("requests %+v", p.got)
	}
	files, _ := filepath.Glob(filepath.Join(to, "*.json"))
	if len(files) != 2 {
		t.Errorf("files %v", files)
	}
	var page []map[string]int
	if b, _ := os.ReadFile(files[0]); json.Unmarshal(b, &page) != nil || len(page) != 2 {
		t.Errorf("page 1: %v", page)
	}
	mark, _ := ledger.Watermark(context.Background(), d, "wms", o.Endpoint)
	if mark == "" {
		t.Fatal("no watermark")
	}
	// The next pull asks from the watermark; the same pages are not
	// written again.
	time.Sleep(1100 * time.Millisecond)
	res, err = transfer.HTTPPull(context.Background(), d, s, o)
	if err != nil || res.Done != 0 || res.Skip != 2 {
		t.Fatalf("second pull: %v %+v", err, res)
	}
	if q := p.got[3].query; !strings.Contains(q, "from="+strings.ReplaceAll(mark, ":", "%3A")) {
		t.Errorf("second pull asked %q, want from=%s", q, mark)
	}
	if files, _ := filepath.Glob(filepath.Join(to, "*")); len(files) != 2 {
		t.Errorf("files after the second pull: %v", files)
	}
	// A page that is not JSON fails the pull, keeps no file and leaves
	// the watermark.
	mu.Lock()
	notJSON = true
	mu.Unlock()
	mark2, _ := ledger.Watermark(context.Background(), d, "wms", o.Endpoint)
	_, err = transfer.HTTPPull(context.Background(), d, s, o)
	if !errors.Is(err, transfer.ErrNotJSON) && !strings.Contains(fmt.Sprint(err), "not JSON") {
		t.Fatalf("err %v, want not JSON", err)
	}
	if files, _ := filepath.Glob(filepath.Join(to, "*")); len(files) != 2 {
		t.Errorf("files after a page that is not JSON: %v", files)
	}
	if hidden, _ := filepath.Glob(filepath.Join(to, ".*")); len(hidden) != 0 {
		t.Errorf("temporary files left: %v", hidden)
	}
	if m, _ := ledger.Watermark(context.Background(), d, "wms", o.Endpoint); m != mark2 {
		t.Errorf("watermark moved to %s", m)
	}
}

// A file larger than what a push holds between its passes is read again
// for its records: the same bodies, keys and lines as from memory,
// rejects included.
func TestHTTPPushFileReadAgain(t *testing.T) {
	run := func(keep int64) ([]got, string) {
		defer transfer.SetKeepBodies(keep)()
		p := &partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
			if key == "1003" {
				io.WriteString(w, `{"hasError": true, "errorMessage": "unknown store"}`)
				return true
			}
			return false
		}}
		srv := httptest.NewTLSServer(p)
		defer srv.Close()
		d := openTestDB(t)
		dir := t.TempDir()
		file := events(t, dir, 5)
		// Blank lines and spaces: line numbers and bodies come from the
		// file, not from the record count.
		b, _ := os.ReadFile(file)
		os.WriteFile(file, []byte("\n"+strings.ReplaceAll(string(b), "\n", "\n\n")), 0o600)
		if _, err := push(t, d, httpSite(t, srv, func(c *transfer.HTTPConfig) { c.Parallel = 1 }), file); err != nil {
			t.Fatal(err)
		}
		rejects, err := os.ReadFile(filepath.Join(dir, "sent", "events.ndjson.rejects.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return p.got, string(rejects)
	}
	held, heldRejects := run(1 << 20)
	again, againRejects := run(10)
	if len(held) != 5 || fmt.Sprint(held) != fmt.Sprint(again) {
		t.Errorf("held in memory:\n%v\nread again:\n%v", held, again)
	}
	if !strings.Contains(heldRejects, "3,6,1003,200,unknown store,") || heldRejects != againRejects {
		t.Errorf("rejects held:\n%s\nread again:\n%s", heldRejects, againRejects)
	}
}
