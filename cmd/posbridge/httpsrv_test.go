package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The HTTPS partner servers of issue 14: an in-process httptest server per
// name, each with a certificate of its own, that plays the partners'
// endpoints (docs/partners.md, sections 3 and 5) and the faults of a real network, and
// logs every request it gets so that a script can grep or count them.
//
//	httpsrv start NAME [-cert ca|self|expired]   $NAME_URL, $NAME_CA, $NAME_LOG
//	httpsrv auth NAME bearer TOKEN | basic USER PASS | header HEADER VALUE | none
//	httpsrv reject NAME MESSAGEID...               hasError true for these events
//	httpsrv list NAME PATH FILE [-page P] [-size S] [-default-size N] [-since Q] [-field F]
//	httpsrv fault NAME [-n N] PATH KIND [ARG]      KIND: 500, status CODE, 429 SECONDS,
//	                                               cut, stall DURATION, redirect URL, html;
//	                                               clear drops the path's faults
//	httpsrv count NAME PATTERN N                   N lines of the log match the regexp
//	httpsrv keys NAME                              per messageId: received N acked M
//	httpsrv inflight NAME                          the most requests answered at once
//	httpsrv span NAME PATTERN MIN                  the matching requests came over MIN or more
//
// Endpoints, the same on every server:
//
//   - GET /health: {"status":"ok"}, behind the auth like the rest.
//   - POST /api/v1/salesOrders (GoFrugal "Create a sales order"): 401
//     without an X-Auth-Token header (its value is checked by httpsrv auth
//     header X-Auth-Token VALUE); the body must be {"salesOrder": {...}}
//     (400 otherwise); answers the order back with status "pending".
//   - GET of a path given to list (Ongoing's lists): the file's JSON array,
//     paged by the page parameter (-page, default "page"; page 1 first; an
//     empty array after the end) and the page size parameter (-size,
//     default "pageSize"; without it -default-size, 0: all in one page),
//     and filtered by the since parameter (-since) against a field of the
//     elements (-field; string comparison, enough for ISO times).
//   - any other POST or PUT (Increff "sales posting to a POS"): a JSON
//     object, a JSON array or NDJSON of events; answers 200 with
//     {"hasError": false, "errorMessage": ""}, or hasError true and a
//     message when an event's messageId was given to reject.
//
// A fault applies to the first N requests to its path (-n 1 by default;
// -n 0: all of them), before the auth check: 500 (then the normal answer),
// status CODE, 429 with Retry-After, cut (the request is read whole, then
// the connection is closed without an answer: the partner has the record,
// the client does not know), stall (no answer for DURATION, then 200 with
// hasError false; nothing if the client goes first), redirect (307 to
// another URL, e.g. another httpsrv), html (200 with a page that is not
// JSON). A request a fault answered is logged with the fault's name as its
// code.
//
// Each log line is
//
//	METHOD PATH[?QUERY] key=IDEMPOTENCY-KEY mid=MESSAGEIDS auth=ok|bad|none|present code=CODE body=BODY
//
// with MESSAGEIDS the body's messageIds (a sales order's
// onlineReferenceNo), auth "present" when the server wants none but the
// request carries credentials (a leak to another host), BODY the request's
// compacted JSON (or its quoted bytes). Secrets are never logged.

// httpsrvSets holds each script's servers by its *TestScript; the first
// httpsrv of a script makes the set and defers closing its servers.
var httpsrvSets sync.Map

type httpsrvSet struct {
	mu      sync.Mutex
	servers map[string]*partnerServer
}

func scriptServers(ts *testscript.TestScript) *httpsrvSet {
	v, loaded := httpsrvSets.LoadOrStore(ts, &httpsrvSet{servers: map[string]*partnerServer{}})
	set := v.(*httpsrvSet)
	if !loaded {
		ts.Defer(func() {
			set.mu.Lock()
			defer set.mu.Unlock()
			for _, s := range set.servers {
				s.Close()
			}
			httpsrvSets.Delete(ts)
		})
	}
	return set
}

// partnerServer is one HTTPS partner: its handler state and its httptest
// server. The crash test and the scripts use the same one.
type partnerServer struct {
	srv    *httptest.Server
	URL    string
	CAFile string
	Log    string

	mu       sync.Mutex
	logf     *os.File
	auth     []string // kind and values; nil: none
	rejects  map[string]bool
	lists    map[string]*listSpec
	faults   map[string][]*srvFault
	received map[string]int             // by messageId (or Idempotency-Key without one)
	acked    map[string]int             // answered 2xx without hasError
	idem     map[string]map[string]bool // Idempotency-Keys by messageId
	requests int
	// lines are the log's lines with the time each request came.
	lines []logLine
	// inflight and maxInflight count the requests being answered at once.
	inflight, maxInflight int
}

type logLine struct {
	at   time.Time
	line string
}

type listSpec struct {
	items                    []json.RawMessage
	page, size, since, field string
	defaultSize              int
}

type srvFault struct {
	n    int // requests left; -1: all
	kind string
	arg  string
}

// newPartnerServer starts a server whose files (CA, log) are in dir under
// name. cert is "ca" (a leaf signed by a CA of its own, written to the CA
// file), "self" (a self-signed leaf; the CA file holds another CA that did
// not sign it) or "expired" (signed by the CA, but no longer valid).
func newPartnerServer(dir, name, cert string) (*partnerServer, error) {
	caPEM, leaf, err := makeTestCert(cert)
	if err != nil {
		return nil, err
	}
	s := &partnerServer{
		CAFile:   filepath.Join(dir, name+"-ca.pem"),
		Log:      filepath.Join(dir, name+"-requests.log"),
		rejects:  map[string]bool{},
		lists:    map[string]*listSpec{},
		faults:   map[string][]*srvFault{},
		received: map[string]int{},
		acked:    map[string]int{},
		idem:     map[string]map[string]bool{},
	}
	if err := os.WriteFile(s.CAFile, caPEM, 0o644); err != nil {
		return nil, err
	}
	if s.logf, err = os.Create(s.Log); err != nil {
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// HTTP/2 for a site with http2: true, HTTP/1.1 for the others.
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"h2", "http/1.1"}}
	s.srv.EnableHTTP2 = true
	// The client's side of a stall or a cut is its business; the server's
	// complaints about it are noise.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server: connections of stalled requests first, so that
// Close does not wait for them.
func (s *partnerServer) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.mu.Lock()
	s.logf.Close()
	s.mu.Unlock()
}

// makeTestCert makes the server's certificate and the CA file's PEM.
func makeTestCert(kind string) (caPEM []byte, leaf tls.Certificate, err error) {
	newKey := func() *ecdsa.PrivateKey {
		k, e := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if e != nil {
			err = e
		}
		return k
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		return n
	}
	now := time.Now()
	caKey := newKey()
	if err != nil {
		return nil, leaf, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "posbridge test CA"},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, leaf, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey := newKey()
	if err != nil {
		return nil, leaf, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	parent, signer := ca, caKey
	switch kind {
	case "ca":
	case "expired":
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	case "self":
		parent, signer = tmpl, leafKey
	default:
		return nil, leaf, fmt.Errorf("certificate %q: want ca, self or expired", kind)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &leafKey.PublicKey, signer)
	if err != nil {
		return nil, leaf, err
	}
	leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: leafKey}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), leaf, nil
}

// messageIDs are the messageIds of a body: one object, an array or NDJSON;
// a sales order's onlineReferenceNo stands for one.
func messageIDs(body []byte) []string {
	var ids []string
	add := func(raw []byte) {
		var m map[string]json.RawMessage
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&m) != nil {
			return
		}
		if so, ok := m["salesOrder"]; ok {
			var o map[string]json.RawMessage
			if json.Unmarshal(so, &o) == nil {
				for k, v := range o {
					if strings.EqualFold(k, "onlineReferenceNo") {
						ids = append(ids, strings.Trim(string(v), `"`))
					}
				}
			}
			return
		}
		if v, ok := m["messageId"]; ok {
			ids = append(ids, strings.Trim(string(v), `"`))
		}
	}
	t := bytes.TrimSpace(body)
	if len(t) > 0 && t[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(t, &arr) == nil {
			for _, a := range arr {
				add(a)
			}
		}
		return ids
	}
	for _, line := range bytes.Split(t, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			add(line)
		}
	}
	return ids
}

func (s *partnerServer) logRequest(r *http.Request, body []byte, ids []string, auth, code string) {
	at := time.Now()
	b := bytes.TrimSpace(body)
	var c bytes.Buffer
	if len(b) > 0 && json.Compact(&c, b) == nil {
		b = c.Bytes()
	} else if len(b) > 0 {
		b = []byte(strconv.Quote(string(b)))
	}
	target := r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	line := fmt.Sprintf("%s %s key=%s mid=%s auth=%s code=%s body=%s\n", r.Method, target,
		r.Header.Get("Idempotency-Key"), strings.Join(ids, ","), auth, code, b)
	s.mu.Lock()
	s.logf.WriteString(line)
	s.lines = append(s.lines, logLine{at, strings.TrimSuffix(line, "\n")})
	s.mu.Unlock()
}

// checkAuth says ok, bad, none (the server wants none and got none) or
// present (the server wants none and got some).
func (s *partnerServer) checkAuth(r *http.Request) string {
	s.mu.Lock()
	auth := s.auth
	s.mu.Unlock()
	if auth == nil {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Auth-Token") != "" {
			return "present"
		}
		return "none"
	}
	ok := false
	switch auth[0] {
	case "bearer":
		ok = r.Header.Get("Authorization") == "Bearer "+auth[1]
	case "basic":
		u, p, has := r.BasicAuth()
		ok = has && u == auth[1] && p == auth[2]
	case "header":
		ok = r.Header.Get(auth[1]) == auth[2]
	}
	if ok {
		return "ok"
	}
	return "bad"
}

// takeFault is the fault for the request's path, if one is left.
func (s *partnerServer) takeFault(path string) *srvFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults[path] {
		if f.n == 0 {
			continue
		}
		if f.n > 0 {
			f.n--
		}
		return f
	}
	return nil
}

func srvJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *partnerServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ids := messageIDs(body)
	s.mu.Lock()
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	s.mu.Lock()
	s.requests++
	for _, id := range ids {
		s.received[id]++
		if s.idem[id] == nil {
			s.idem[id] = map[string]bool{}
		}
		s.idem[id][r.Header.Get("Idempotency-Key")] = true
	}
	s.mu.Unlock()
	auth := s.checkAuth(r)
	if f := s.takeFault(r.URL.Path); f != nil {
		s.logRequest(r, body, ids, auth, f.kind)
		switch f.kind {
		case "500":
			srvJSON(w, 500, map[string]any{"hasError": true, "errorMessage": "internal server error"})
		case "status":
			code, _ := strconv.Atoi(f.arg)
			srvJSON(w, code, map[string]any{"hasError": true, "errorMessage": "status " + f.arg})
		case "429":
			w.Header().Set("Retry-After", f.arg)
			srvJSON(w, 429, map[string]any{"hasError": true, "errorMessage": "too many requests"})
		case "cut":
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case "stall":
			d, _ := time.ParseDuration(f.arg)
			select {
			case <-time.After(d):
				srvJSON(w, 200, map[string]any{"hasError": false, "errorMessage": ""})
			case <-r.Context().Done():
			}
		case "redirect":
			http.Redirect(w, r, f.arg, http.StatusTemporaryRedirect)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body><h1>Service temporarily unavailable</h1></body></html>\n")
		}
		return
	}
	// GoFrugal wants its token whatever else the script set up.
	if auth == "bad" || (r.URL.Path == "/api/v1/salesOrders" && r.Header.Get("X-Auth-Token") == "") {
		auth = "bad"
		s.logRequest(r, body, ids, auth, "401")
		srvJSON(w, 401, map[string]any{"hasError": true, "errorMessage": "unauthorized"})
		return
	}
	code, v := s.answer(r, body, ids)
	s.logRequest(r, body, ids, auth, strconv.Itoa(code))
	srvJSON(w, code, v)
}

// answer is the partner's answer to a request that no fault took.
func (s *partnerServer) answer(r *http.Request, body []byte, ids []string) (int, any) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/health":
		return 200, map[string]any{"status": "ok"}
	case r.Method == http.MethodGet:
		s.mu.Lock()
		l := s.lists[path]
		s.mu.Unlock()
		if l == nil {
			return 404, map[string]any{"message": "no such list"}
		}
		return 200, l.get(r)
	case r.Method != http.MethodPost && r.Method != http.MethodPut:
		return 405, map[string]any{"message": "method not allowed"}
	case path == "/api/v1/salesOrders":
		var so struct {
			SalesOrder map[string]any `json:"salesOrder"`
		}
		if json.Unmarshal(body, &so) != nil || so.SalesOrder == nil {
			return 400, map[string]any{"message": "the body must be {\"salesOrder\": {...}}"}
		}
		so.SalesOrder["status"] = "pending"
		s.ack(ids)
		return 200, map[string]any{"salesOrder": so.SalesOrder}
	}
	if !json.Valid(body) && len(ids) == 0 {
		return 400, map[string]any{"hasError": true, "errorMessage": "the body is not JSON"}
	}
	s.mu.Lock()
	var refused []string
	for _, id := range ids {
		if s.rejects[id] {
			refused = append(refused, id)
		}
	}
	s.mu.Unlock()
	if len(refused) > 0 {
		return 200, map[string]any{"hasError": true, "errorMessage": "messageId " + strings.Join(refused, ",") + ": location not mapped to a POS store"}
	}
	s.ack(ids)
	return 200, map[string]any{"hasError": false, "errorMessage": ""}
}

func (s *partnerServer) ack(ids []string) {
	s.mu.Lock()
	for _, id := range ids {
		s.acked[id]++
	}
	s.mu.Unlock()
}

// get is one page of the list.
func (l *listSpec) get(r *http.Request) []json.RawMessage {
	q := r.URL.Query()
	items := l.items
	if since := q.Get(l.since); l.since != "" && since != "" {
		var kept []json.RawMessage
		for _, it := range items {
			var m map[string]any
			json.Unmarshal(it, &m)
			if fmt.Sprint(m[l.field]) > since {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	size := l.defaultSize
	if n, err := strconv.Atoi(q.Get(l.size)); err == nil && n > 0 {
		size = n
	}
	page := 1
	if n, err := strconv.Atoi(q.Get(l.page)); err == nil && n > 0 {
		page = n
	}
	out := []json.RawMessage{}
	if size <= 0 {
		if page == 1 {
			out = append(out, items...)
		}
		return out
	}
	for i := (page - 1) * size; i < page*size && i < len(items); i++ {
		out = append(out, items[i])
	}
	return out
}

// Counts of the server, for the Go tests.
func (s *partnerServer) counts() (received, acked map[string]int, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	received, acked = map[string]int{}, map[string]int{}
	for k, v := range s.received {
		received[k] = v
	}
	for k, v := range s.acked {
		acked[k] = v
	}
	return received, acked, s.requests
}

// keyMismatches are the messageIds that came with more than one
// Idempotency-Key (or with one and without).
func (s *partnerServer) keyMismatches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for id, keys := range s.idem {
		if len(keys) > 1 {
			bad = append(bad, id)
		}
	}
	sort.Strings(bad)
	return bad
}

// setAuth sets what the server wants: bearer TOKEN, basic USER PASS,
// header NAME VALUE, or nil for none.
func (s *partnerServer) setAuth(auth ...string) {
	s.mu.Lock()
	s.auth = auth
	s.mu.Unlock()
}

func cmdHTTPSrv(ts *testscript.TestScript, neg bool, args []string) {
	usage := "usage: httpsrv start|auth|reject|list|fault|count|keys|inflight|span NAME ..."
	if len(args) < 2 {
		ts.Fatalf("%s", usage)
	}
	if neg && args[0] != "count" {
		ts.Fatalf("unsupported: ! httpsrv %s", args[0])
	}
	set := scriptServers(ts)
	name := args[1]
	if args[0] == "start" {
		cert := "ca"
		if len(args) == 4 && args[2] == "-cert" {
			cert = args[3]
		} else if len(args) != 2 {
			ts.Fatalf("usage: httpsrv start NAME [-cert ca|self|expired]")
		}
		set.mu.Lock()
		defer set.mu.Unlock()
		if set.servers[name] != nil {
			ts.Fatalf("httpsrv: %s is already started", name)
		}
		s, err := newPartnerServer(ts.MkAbs("."), name, cert)
		ts.Check(err)
		set.servers[name] = s
		ts.Setenv(name+"_URL", s.URL)
		ts.Setenv(name+"_CA", s.CAFile)
		ts.Setenv(name+"_LOG", s.Log)
		return
	}
	set.mu.Lock()
	s := set.servers[name]
	set.mu.Unlock()
	if s == nil {
		ts.Fatalf("httpsrv: no server %s (httpsrv start %s first)", name, name)
	}
	rest := args[2:]
	switch args[0] {
	case "auth":
		want := map[string]int{"bearer": 2, "basic": 3, "header": 3, "none": 1}
		if len(rest) == 0 || want[rest[0]] != len(rest) {
			ts.Fatalf("usage: httpsrv auth NAME bearer TOKEN | basic USER PASS | header HEADER VALUE | none")
		}
		s.mu.Lock()
		s.auth = rest
		if rest[0] == "none" {
			s.auth = nil
		}
		s.mu.Unlock()
	case "reject":
		s.mu.Lock()
		for _, id := range rest {
			s.rejects[id] = true
		}
		s.mu.Unlock()
	case "list":
		if len(rest) < 2 {
			ts.Fatalf("usage: httpsrv list NAME PATH FILE [-page P] [-size S] [-default-size N] [-since Q] [-field F]")
		}
		l := &listSpec{page: "page", size: "pageSize", defaultSize: 0}
		var items []json.RawMessage
		if err := json.Unmarshal([]byte(ts.ReadFile(rest[1])), &items); err != nil {
			ts.Fatalf("httpsrv list: %s is not a JSON array: %v", rest[1], err)
		}
		l.items = items
		for i := 2; i+1 < len(rest); i += 2 {
			switch v := rest[i+1]; rest[i] {
			case "-page":
				l.page = v
			case "-size":
				l.size = v
			case "-default-size":
				l.defaultSize, _ = strconv.Atoi(v)
			case "-since":
				l.since = v
			case "-field":
				l.field = v
			default:
				ts.Fatalf("httpsrv list: unknown option %s", rest[i])
			}
		}
		if len(rest)%2 != 0 {
			ts.Fatalf("httpsrv list: options come in pairs")
		}
		s.mu.Lock()
		s.lists[rest[0]] = l
		s.mu.Unlock()
	case "fault":
		n := 1
		if len(rest) >= 2 && rest[0] == "-n" {
			var err error
			if n, err = strconv.Atoi(rest[1]); err != nil || n < 0 {
				ts.Fatalf("httpsrv fault: -n %q", rest[1])
			}
			if n == 0 {
				n = -1
			}
			rest = rest[2:]
		}
		if len(rest) < 2 {
			ts.Fatalf("usage: httpsrv fault NAME [-n N] PATH KIND [ARG]")
		}
		if rest[1] == "clear" {
			s.mu.Lock()
			delete(s.faults, rest[0])
			s.mu.Unlock()
			return
		}
		f := &srvFault{n: n, kind: rest[1]}
		switch rest[1] {
		case "500", "cut", "html":
			if len(rest) != 2 {
				ts.Fatalf("httpsrv fault %s takes no argument", rest[1])
			}
		case "status", "429", "stall", "redirect":
			if len(rest) != 3 {
				ts.Fatalf("httpsrv fault %s takes one argument", rest[1])
			}
			f.arg = rest[2]
		default:
			ts.Fatalf("httpsrv fault: unknown kind %q", rest[1])
		}
		if f.kind == "stall" {
			if _, err := time.ParseDuration(f.arg); err != nil {
				ts.Fatalf("httpsrv fault stall: %v", err)
			}
		}
		s.mu.Lock()
		s.faults[rest[0]] = append(s.faults[rest[0]], f)
		s.mu.Unlock()
	case "count":
		if len(rest) != 2 {
			ts.Fatalf("usage: httpsrv count NAME PATTERN N")
		}
		re, err := regexp.Compile(rest[0])
		ts.Check(err)
		want, err := strconv.Atoi(rest[1])
		ts.Check(err)
		s.mu.Lock()
		b, err := os.ReadFile(s.Log)
		s.mu.Unlock()
		ts.Check(err)
		got := 0
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && re.MatchString(line) {
				got++
			}
		}
		if (got == want) == neg {
			ts.Fatalf("httpsrv count: %d requests match %q, want %s%d\n%s", got, rest[0], map[bool]string{true: "not ", false: ""}[neg], want, b)
		}
	case "span":
		// The time from the first to the last request matching PATTERN
		// must be at least MIN (a rate cap at work).
		if len(rest) != 2 {
			ts.Fatalf("usage: httpsrv span NAME PATTERN MIN")
		}
		re, err := regexp.Compile(rest[0])
		ts.Check(err)
		least, err := time.ParseDuration(rest[1])
		ts.Check(err)
		var first, last time.Time
		n := 0
		s.mu.Lock()
		for _, l := range s.lines {
			if re.MatchString(l.line) {
				if n == 0 {
					first = l.at
				}
				last, n = l.at, n+1
			}
		}
		s.mu.Unlock()
		if span := last.Sub(first); span < least {
			ts.Fatalf("httpsrv span: %d requests match %q over %v, want at least %v", n, rest[0], span, least)
		}
	case "inflight":
		// The most requests the server was answering at once.
		s.mu.Lock()
		fmt.Fprintln(ts.Stdout(), s.maxInflight)
		s.mu.Unlock()
	case "keys":
		// One line per messageId: received N acked M, sorted by id.
		received, acked, _ := s.counts()
		var ids []string
		for id := range received {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(ts.Stdout(), "%s received %d acked %d\n", id, received[id], acked[id])
		}
	default:
		ts.Fatalf("%s", usage)
	}
}
