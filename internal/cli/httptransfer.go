package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/transfer"
)

// httpFlags are the flags of push and pull for http sites.
type httpFlags struct {
	endpoint, method, per string
	partner, what         string
	query                 []string
	pageParam, sinceParam string
	sizeParam             string
	pageSize, maxPages    int
}

func (h *httpFlags) addPush(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&h.endpoint, "endpoint", "", "http site: the path records go to (default: the partner's endpoint for --what)")
	f.StringVar(&h.method, "method", http.MethodPost, "http site: POST or PUT")
	f.StringVar(&h.per, "per", "record", "http site: one request per record, or the whole file as one body (record or file)")
	h.addPartner(cmd, "what the file holds: order-events, orders, ... (partners.P.endpoints)")
}

func (h *httpFlags) addPull(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&h.endpoint, "endpoint", "", "http site: the list to GET (default: the partner's endpoint for --what)")
	f.StringArrayVar(&h.query, "query", nil, "http site: a query parameter k=v (repeatable)")
	f.StringVar(&h.pageParam, "page-param", "", "http site: the page number parameter (pages from 1); without it one GET")
	f.StringVar(&h.sinceParam, "since-param", "", "http site: the parameter that gets the time of the last pull that finished")
	f.IntVar(&h.pageSize, "page-size", 0, "http site: items a full page holds; a page with fewer is the last")
	f.StringVar(&h.sizeParam, "size-param", "", "http site: the parameter that sends --page-size")
	f.IntVar(&h.maxPages, "max-pages", 1000, "http site: fail a pull that has more pages than this")
	h.addPartner(cmd, "the list to collect: purchase-orders, inventory-adjustments, ... (partners.P.endpoints)")
}

func (h *httpFlags) addPartner(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&h.partner, "partner", "", "partner (config partners): its site and endpoints")
	cmd.Flags().StringVar(&h.what, "what", "", what)
}

// used says a flag only http sites take was given.
func (h *httpFlags) used(cmd *cobra.Command) bool {
	for _, n := range []string{"endpoint", "method", "per", "partner", "what", "query", "page-param", "since-param", "page-size", "size-param", "max-pages"} {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// httpTarget is the site and endpoint of an http push or pull.
type httpTarget struct {
	siteName string
	sc       config.Site
	endpoint string
	partner  partner.Profile
	// wrap is the key each record is wrapped in (a store POS's sales
	// order: salesOrder).
	wrap string
}

// defaultWhat is what a partner takes when push --partner has no --what.
var defaultWhat = map[string]string{partner.ExternalOMS: "order-events", partner.StorePOS: "orders"}

// target resolves --site, --partner, --what and --endpoint.
func (h *httpFlags) target(cfg *config.Config, site string, push bool) (httpTarget, error) {
	t := httpTarget{siteName: strings.ToLower(site), endpoint: h.endpoint}
	if h.partner != "" {
		p, err := cfg.Partner(strings.ToLower(h.partner))
		if err != nil {
			return t, fmt.Errorf("%w: %w", errUsage, err)
		}
		t.partner = p
		if t.siteName == "" {
			if t.siteName = p.Site; t.siteName == "" {
				return t, usageErr("partner %s has no site (partners.%s.site): give --site", h.partner, strings.ToLower(h.partner))
			}
		}
		what := h.what
		if what == "" && push {
			what = defaultWhat[p.Kind]
		}
		if t.endpoint == "" {
			if what == "" {
				return t, usageErr("--partner %s needs --what (configured: %s)", h.partner, endpointNames(p))
			}
			if t.endpoint = p.Endpoints[what]; t.endpoint == "" {
				return t, usageErr("partner %s has no endpoint for %q (partners.%s.endpoints; configured: %s)",
					h.partner, what, strings.ToLower(h.partner), endpointNames(p))
			}
		}
		if push && what == "orders" && p.Kind == partner.StorePOS {
			t.wrap = "salesOrder"
		}
	} else if h.what != "" {
		return t, usageErr("--what goes with --partner")
	}
	if t.siteName == "" {
		return t, usageErr("give --site or --partner")
	}
	sc, ok := cfg.Sites[t.siteName]
	if !ok {
		return t, usageErr("unknown site %q (configured: %s)", t.siteName, siteNames(cfg))
	}
	if sc.Type != "http" {
		return t, usageErr("site %s is of type %s: --endpoint, --partner and the other http flags go with an http site", t.siteName, sc.Type)
	}
	t.sc = sc
	if t.endpoint == "" {
		return t, usageErr("an http site needs --endpoint PATH (or --partner P --what W)")
	}
	if !strings.HasPrefix(t.endpoint, "/") {
		return t, usageErr("--endpoint %q: want a path starting with /", t.endpoint)
	}
	if t.partner.Kind == "" {
		// Without --partner, the partner whose site this is says how it
		// answers.
		t.partner, _ = cfg.SitePartner(t.siteName)
	}
	return t, nil
}

func endpointNames(p partner.Profile) string {
	if len(p.Endpoints) == 0 {
		return "none"
	}
	names := make([]string, 0, len(p.Endpoints))
	for n := range p.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// openHTTP prepares an http site; the answer rule is the site's success
// setting, else the partner profile's (an external OMS answers hasError).
func openHTTP(name string, sc config.Site, p partner.Profile, dryRun bool) (*transfer.HTTPSite, error) {
	rule := sc.Success
	if rule == "" && p.Kind == partner.ExternalOMS {
		rule = config.SuccessHasErrorFalse
	}
	h, err := transfer.NewHTTP(transfer.HTTPConfig{Name: name, BaseURL: sc.BaseURL, CAFile: sc.CAFile,
		BearerEnv: sc.BearerEnv, BasicUser: sc.BasicUser, PasswordEnv: sc.PasswordEnv, Header: sc.Header, HeaderEnv: sc.HeaderEnv,
		Timeout: sc.Timeout, Retries: sc.Retries, Backoff: sc.Backoff, BackoffMax: sc.BackoffMax, Rate: sc.Rate,
		Parallel: sc.Parallel, HealthPath: sc.HealthPath, HTTP2: sc.HTTP2, HasErrorRule: rule == config.SuccessHasErrorFalse, NoCredentials: dryRun})
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", name, err)
	}
	return h, nil
}

// isHTTPSite says the named site is configured with type http.
func (a *App) isHTTPSite(name string) bool {
	cfg, err := a.Config()
	return err == nil && cfg.Sites[strings.ToLower(name)].Type == "http"
}

// pushHTTP is push to an http site.
func pushHTTP(cmd *cobra.Command, app *App, o *pushOptions, args []string) error {
	h := &o.http
	if (len(args) == 0) == (o.from == "") {
		return usageErr("push takes files, --from DIR or --outbox NAME, one of them")
	}
	if o.to != "" || o.overwrite {
		return usageErr("--to and --overwrite go with file sites; an http site takes --endpoint")
	}
	method := strings.ToUpper(h.method)
	if method != http.MethodPost && method != http.MethodPut {
		return usageErr("--method %q: want POST or PUT", h.method)
	}
	if h.per != "record" && h.per != "file" {
		return usageErr("--per %q: want record or file", h.per)
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	t, err := h.target(cfg, o.site, true)
	if err != nil {
		return err
	}
	site, err := openHTTP(t.siteName, t.sc, t.partner, o.dryRun)
	if err != nil {
		return err
	}
	po := transfer.HTTPPushOptions{SiteName: t.siteName, Files: args, FromDir: o.from, Pattern: o.pattern,
		Endpoint: t.endpoint, Method: method, PerFile: h.per == "file", Wrap: t.wrap, DryRun: o.dryRun, LockDir: cfg.LockDir()}
	d, err := app.DB(cmd.Context())
	if err != nil {
		return err
	}
	return runTransfer(cmd.Context(), app, d, "push "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
		func(ctx context.Context) (*transfer.Result, error) {
			res, err := transfer.HTTPPush(ctx, d, site, po)
			if err == nil && res != nil && res.Rejected > 0 {
				err = fmt.Errorf("%w: %s: %d records refused (see the rejects files in sent/)", errRejected, po.SiteName, res.Rejected)
			}
			return res, err
		})
}

// pullHTTP is pull from an http site.
func pullHTTP(cmd *cobra.Command, app *App, o *pullOptions) error {
	h := &o.http
	if o.from != "" || o.requireMarker || o.pattern != "" || cmd.Flags().Changed("after") {
		return usageErr("--from, --pattern, --after and --require-marker go with file sites; an http site takes --endpoint")
	}
	if h.pageSize < 0 || h.maxPages < 1 {
		return usageErr("--page-size must not be negative and --max-pages must be at least 1")
	}
	query := url.Values{}
	for _, kv := range h.query {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErr("--query %q: want NAME=VALUE", kv)
		}
		query.Add(k, v)
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	t, err := h.target(cfg, o.site, false)
	if err != nil {
		return err
	}
	to := o.to
	if to == "" {
		if h.partner == "" || h.what == "" {
			return usageErr("pull needs --to DIR")
		}
		to = filepath.Join(cfg.DataDir, "inbox", strings.ToLower(h.partner), h.what)
	}
	site, err := openHTTP(t.siteName, t.sc, t.partner, o.dryRun)
	if err != nil {
		return err
	}
	po := transfer.HTTPPullOptions{SiteName: t.siteName, Endpoint: t.endpoint, To: to, Query: query, PageParam: h.pageParam,
		SinceParam: h.sinceParam, PageSize: h.pageSize, SizeParam: h.sizeParam, MaxPages: h.maxPages, DryRun: o.dryRun,
		LockDir: cfg.LockDir()}
	d, err := app.DB(cmd.Context())
	if err != nil {
		return err
	}
	return runTransfer(cmd.Context(), app, d, "pull "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
		func(ctx context.Context) (*transfer.Result, error) { return transfer.HTTPPull(ctx, d, site, po) })
}

// testHTTPSite is sites test for an http site.
func testHTTPSite(cmd *cobra.Command, app *App, name string, sc config.Site) error {
	site, err := openHTTP(name, sc, partner.Profile{}, false)
	if err != nil {
		fmt.Fprintf(app.Out, "FAILED site %s: %v\n", name, err)
		return err
	}
	rep, err := site.Test(cmd.Context())
	if err != nil {
		auth := ""
		if errors.Is(err, transfer.ErrAuth) {
			auth = " (credentials refused)"
		}
		fmt.Fprintf(app.Out, "FAILED site %s: %v%s\n", name, err, auth)
		return fmt.Errorf("site %s: %w", name, err)
	}
	fmt.Fprintf(app.Out, "ok     site %s: GET %s answered %d (%s) in %s\n", name, rep.URL, rep.Status, rep.Protocol, rep.Latency.Round(1e6))
	if rep.TLSVersion != "" {
		fmt.Fprintf(app.Out, "ok     site %s: %s, certificate verified\n", name, rep.TLSVersion)
	} else {
		fmt.Fprintf(app.Out, "ok     site %s: plain http (loopback only)\n", name)
	}
	fmt.Fprintf(app.Out, "ok     site %s: auth: %s\n", name, rep.Auth)
	return nil
}
