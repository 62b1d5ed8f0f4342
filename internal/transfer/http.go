package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Errors of http sites with their own handling.
var (
	// ErrAuth means the partner refused the credentials (401 or 403):
	// nothing is sent on, nothing is marked delivered (exit 1).
	ErrAuth = errors.New("authentication refused")
	// ErrRedirect means the partner redirected to another host or
	// scheme: the credentials are never sent there.
	ErrRedirect = errors.New("redirect to another host refused")
)

// HTTPConfig says how to reach an http site. Secrets are never held here:
// only the names of the environment variables that carry them.
type HTTPConfig struct {
	Name    string
	BaseURL string
	// CAFile adds a CA certificate (PEM) to the system's; verification
	// cannot be turned off.
	CAFile string
	// One way to authenticate: BearerEnv; BasicUser with PasswordEnv;
	// Header (a header's name) with HeaderEnv.
	BearerEnv, BasicUser, PasswordEnv, Header, HeaderEnv string
	// Timeout ends one request.
	Timeout time.Duration
	// Retries are the further tries of a request after a 5xx, 408, 429
	// or network error; Backoff is the first wait, doubling with jitter
	// up to BackoffMax. A Retry-After longer than BackoffMax ends the
	// retries.
	Retries             int
	Backoff, BackoffMax time.Duration
	// Rate caps requests a second (0: no cap); Parallel is how many
	// requests are in flight at once.
	Rate     float64
	Parallel int
	// HealthPath is what Test asks for; "" is the base URL.
	HealthPath string
	// HTTP2 offers HTTP/2 (one connection, requests multiplexed); else
	// HTTP/1.1 with a keep-alive connection per request in flight, which
	// costs the client and the server less CPU a request (BENCHMARKS.md).
	HTTP2 bool
	// HasErrorRule says a 2xx answer counts only with "hasError": false
	// in its body.
	HasErrorRule bool
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// NoCredentials leaves the credentials unread: a dry run sends
	// nothing.
	NoCredentials bool
}

// HTTPSite is a partner's REST API.
type HTTPSite struct {
	cfg     HTTPConfig
	base    *url.URL
	client  *http.Client
	limiter *rate.Limiter
	// authName and authValue are the header that carries the
	// credentials; authValue is never printed.
	authName, authValue string
}

// NewHTTP prepares an http site: it reads the CA file and the
// credentials from the environment, and connects on the first request.
func NewHTTP(cfg HTTPConfig) (*HTTPSite, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("base_url: %w", err)
	}
	lookup := cfg.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := func(name string) (string, error) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	}
	h := &HTTPSite{cfg: cfg, base: base}
	switch {
	case cfg.NoCredentials:
	case cfg.BearerEnv != "":
		v, err := env(cfg.BearerEnv)
		if err != nil {
			return nil, err
		}
		h.authName, h.authValue = "Authorization", "Bearer "+v
	case cfg.BasicUser != "":
		v, err := env(cfg.PasswordEnv)
		if err != nil {
			return nil, err
		}
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(cfg.BasicUser, v)
		h.authName, h.authValue = "Authorization", r.Header.Get("Authorization")
	case cfg.Header != "":
		v, err := env(cfg.HeaderEnv)
		if err != nil {
			return nil, err
		}
		h.authName, h.authValue = http.CanonicalHeaderKey(cfg.Header), v
	}
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q: no PEM certificate in it", cfg.CAFile)
		}
		tlsc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsc
	tr.MaxIdleConnsPerHost = max(cfg.Parallel, 1) * 2
	if cfg.HTTP2 {
		tr.ForceAttemptHTTP2 = true
	} else {
		// A non-nil empty map turns HTTP/2 off.
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	h.client = &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: h.checkRedirect}
	if cfg.Rate > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate)))
	}
	return h, nil
}

// String names the site by its base URL.
func (h *HTTPSite) String() string { return h.base.String() }

// checkRedirect follows a redirect only on the same scheme, host and
// port: the credentials never go to another host.
func (h *HTTPSite) checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != h.base.Scheme || !strings.EqualFold(req.URL.Host, h.base.Host) {
		return fmt.Errorf("%w: %s", ErrRedirect, req.URL.Redacted())
	}
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	return nil
}

// url is the address of endpoint (a path under the base URL) with query.
func (h *HTTPSite) url(endpoint string, query url.Values) (string, error) {
	p, err := target(endpoint, query)
	if err != nil {
		return "", err
	}
	u := *h.base
	u.Path = strings.TrimSuffix(h.base.Path, "/") + p.Path
	u.RawQuery = p.RawQuery
	return u.String(), nil
}

// target is endpoint with query added to its own query (query's values
// win): what a request asks for under the base URL, and how a run names
// it (String: no "?" without a query).
func target(endpoint string, query url.Values) (*url.URL, error) {
	p, err := url.Parse(endpoint)
	if err != nil || p.Scheme != "" || p.Host != "" || !strings.HasPrefix(p.Path, "/") {
		return nil, fmt.Errorf("endpoint %q: want a path starting with /", endpoint)
	}
	q := p.Query()
	for k, vs := range query {
		q[k] = vs
	}
	p.RawQuery = q.Encode()
	return p, nil
}

// request is one request of a site: its body is made again for each try.
type request struct {
	method, endpoint string
	query            url.Values
	body             func() (io.ReadCloser, error)
	// size is the body's length: sent as Content-Length, not chunked,
	// which some partners' servers do not read.
	size int64
	// key goes in the Idempotency-Key header.
	key string
	// u, when set, is the endpoint's URL made once for many requests.
	u string
}

// do sends a request, trying again after a network error, a 5xx, 408 or
// 429 while retries are left (waiting as Retry-After says when it does).
// It returns the answer with its body open, or ErrAuth for a 401 or 403,
// an error wrapping ErrUnreachable when the tries are used up, or another
// error (TLS, redirect) that trying again would not change.
func (h *HTTPSite) do(ctx context.Context, r request) (*http.Response, error) {
	u := r.u
	if u == "" {
		var err error
		if u, err = h.url(r.endpoint, r.query); err != nil {
			return nil, err
		}
	}
	what := r.method + " " + r.endpoint
	for attempt := 0; ; attempt++ {
		if h.limiter != nil {
			if err := h.limiter.Wait(ctx); err != nil {
				return nil, err
			}
		}
		resp, err := h.once(ctx, r, u)
		var retryAfter time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && !transient(err):
			return nil, fmt.Errorf("%s: %w", what, err)
		case err != nil:
			err = fmt.Errorf("%s: %w", what, err)
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			drain(resp)
			return nil, fmt.Errorf("%s: %s: %w", what, resp.Status, ErrAuth)
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			drain(resp)
			err = fmt.Errorf("%s: answered %s", what, resp.Status)
		default:
			return resp, nil
		}
		if attempt >= h.cfg.Retries {
			return nil, fmt.Errorf("%v, after %d tries: %w", err, attempt+1, ErrUnreachable)
		}
		wait := h.backoff(attempt)
		if retryAfter > 0 {
			if retryAfter > h.cfg.BackoffMax {
				return nil, fmt.Errorf("%v; Retry-After %s is beyond backoff_max %s: %w", err, retryAfter, h.cfg.BackoffMax, ErrUnreachable)
			}
			wait = retryAfter
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// once is one try of a request.
func (h *HTTPSite) once(ctx context.Context, r request, u string) (*http.Response, error) {
	var body io.ReadCloser
	if r.body != nil {
		var err error
		if body, err = r.body(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if r.body != nil {
		req.GetBody, req.ContentLength = r.body, r.size
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "posbridge")
	if r.key != "" {
		req.Header.Set("Idempotency-Key", r.key)
	}
	if h.authName != "" {
		req.Header.Set(h.authName, h.authValue)
	}
	return h.client.Do(req)
}

// transient says a request error may go away on another try: not a
// refused certificate, a refused redirect or a bad address.
func transient(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrRedirect), errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &rh):
		return false
	}
	return true
}

// backoff is the wait before retry attempt+1: Backoff doubled per
// attempt, at most BackoffMax, less a random part of up to half (so many
// clients do not come back at once).
func (h *HTTPSite) backoff(attempt int) time.Duration {
	w := h.cfg.Backoff
	for i := 0; i < attempt && w < h.cfg.BackoffMax; i++ {
		w *= 2
	}
	w = min(w, h.cfg.BackoffMax)
	if w <= 1 {
		return w
	}
	return w/2 + rand.N(w/2+1)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// drain reads what is left of an answer so its connection is reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// maxAnswer caps the answer to a push read into memory.
const maxAnswer = 1 << 20

// verdict reads the answer to a push: ok, or the partner's refusal; or,
// unclear, a 2xx answer without the partner's verdict in it (a proxy's
// page): not a refusal, so the record is tried again by the next run.
func (h *HTTPSite) verdict(resp *http.Response) (ok bool, msg string, unclear bool) {
	defer drain(resp)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Sprintf("%s: %s", resp.Status, snippet(body)), false
	}
	if !h.cfg.HasErrorRule {
		return true, "", false
	}
	var a struct {
		HasError     *bool           `json:"hasError"`
		ErrorMessage json.RawMessage `json:"errorMessage"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.HasError == nil {
		return false, fmt.Sprintf("%s without \"hasError\" in the answer: %s", resp.Status, snippet(body)), true
	}
	if *a.HasError {
		var m string
		if json.Unmarshal(a.ErrorMessage, &m) != nil {
			m = string(a.ErrorMessage)
		}
		if m == "" {
			m = "hasError true, no errorMessage"
		}
		return false, m, false
	}
	return true, "", false
}

// snippet is the start of an answer body, on one line, for a message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		b = append(b[:300:300], "..."...)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// HealthReport is what Test found.
type HealthReport struct {
	URL        string        `json:"url"`
	Status     int           `json:"status"`
	TLSVersion string        `json:"tls_version,omitempty"`
	Protocol   string        `json:"protocol,omitempty"`
	Auth       string        `json:"auth"`
	Latency    time.Duration `json:"latency"`
}

// Test does one authenticated GET of the health path (no retries) and
// reports the TLS version, the answer and the latency. A 401 or 403 is
// ErrAuth; a network error or 5xx wraps ErrUnreachable.
func (h *HTTPSite) Test(ctx context.Context) (HealthReport, error) {
	p := h.cfg.HealthPath
	if p == "" {
		p = "/"
	}
	rep := HealthReport{Auth: "none configured"}
	if h.authName != "" {
		rep.Auth = h.authName + " accepted"
	}
	u, err := h.url(p, nil)
	if err != nil {
		return rep, err
	}
	rep.URL = u
	start := time.Now()
	resp, err := h.once(ctx, request{method: http.MethodGet, endpoint: p}, u)
	rep.Latency = time.Since(start)
	if err != nil {
		if transient(err) {
			return rep, fmt.Errorf("GET %s: %v: %w", p, err, ErrUnreachable)
		}
		return rep, fmt.Errorf("GET %s: %w", p, err)
	}
	defer drain(resp)
	rep.Status, rep.Protocol = resp.StatusCode, resp.Proto
	if resp.TLS != nil {
		rep.TLSVersion = tls.VersionName(resp.TLS.Version)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		rep.Auth = "refused"
		return rep, fmt.Errorf("GET %s: %s: %w", p, resp.Status, ErrAuth)
	case resp.StatusCode >= 500:
		return rep, fmt.Errorf("GET %s: answered %s: %w", p, resp.Status, ErrUnreachable)
	}
	return rep, nil
}
