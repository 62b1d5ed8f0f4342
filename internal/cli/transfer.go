package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/transfer"
)

// openSite finds a configured site and opens it.
func openSite(cfg *config.Config, name string) (config.Site, transfer.Site, error) {
	sc, ok := cfg.Sites[strings.ToLower(name)]
	if !ok {
		return sc, nil, usageErr("unknown site %q (configured: %s)", name, siteNames(cfg))
	}
	switch sc.Type {
	case "local":
		s, err := transfer.NewLocal(sc.Dir)
		if errors.Is(err, transfer.ErrNoFolder) {
			return sc, nil, fmt.Errorf("site %s: %w, or correct sites.%s.dir in the config", name, err, strings.ToLower(name))
		}
		if err != nil {
			return sc, nil, fmt.Errorf("site %s: %w", name, err)
		}
		return sc, s, nil
	case "sftp":
		s, err := transfer.DialSFTP(sftpConfig(sc))
		if err != nil {
			return sc, nil, fmt.Errorf("site %s: %w", name, err)
		}
		return sc, s, nil
	case "http":
		return sc, nil, usageErr("site %s is an http site: it has no folders (push/pull --endpoint, sites test)", name)
	default:
		return sc, nil, fmt.Errorf("site %s: unknown type %q", name, sc.Type)
	}
}

// siteFolderProblems checks every configured folder of the local and sftp
// sites as far as it can be without reaching them: refused names, and an
// absolute folder outside the site's root (a local site's dir, an sftp
// site's root). config validate reports them.
func siteFolderProblems(cfg *config.Config) []error {
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Sites)) {
		sc := cfg.Sites[name]
		root := sc.Root
		switch sc.Type {
		case "local":
			abs, err := filepath.Abs(sc.Dir)
			if err != nil {
				continue
			}
			root = filepath.ToSlash(abs)
		case "sftp":
		default:
			continue
		}
		for _, role := range slices.Sorted(maps.Keys(sc.Folders)) {
			if _, err := transfer.CheckFolder(root, sc.Folders[role]); err != nil {
				problems = append(problems, fmt.Errorf("%w: sites.%s.folders.%s: %v", config.ErrInvalid, name, role, err))
			}
		}
	}
	return problems
}

// sftpConfig is the connection part of an sftp site's settings.
func sftpConfig(sc config.Site) transfer.SFTPConfig {
	return transfer.SFTPConfig{Host: sc.Host, Port: sc.Port, User: sc.User, KeyFile: sc.KeyFile,
		KeyPassphraseEnv: sc.KeyPassphraseEnv, PasswordEnv: sc.PasswordEnv, KnownHosts: sc.KnownHosts,
		ConnectTimeout: sc.ConnectTimeout, IdleTimeout: sc.IdleTimeout, Root: sc.Root}
}

// siteRetry is how a file lost to an unreachable site is retried: the
// site's retries, the first after a second and each wait doubling.
func siteRetry(sc config.Site) transfer.Retry {
	return transfer.Retry{Retries: sc.Retries, Backoff: time.Second}
}

// site loads the configuration and opens the named site.
func (a *App) site(name string) (*config.Config, config.Site, transfer.Site, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, config.Site{}, nil, err
	}
	sc, site, err := openSite(cfg, name)
	return cfg, sc, site, err
}

// closeSite ends an sftp session; a local site has nothing to close.
func closeSite(s transfer.Site) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

// siteNames lists the configured sites for a message about one that is
// not.
func siteNames(cfg *config.Config) string {
	if len(cfg.Sites) == 0 {
		return "none; add them under sites: in the config"
	}
	return strings.Join(slices.Sorted(maps.Keys(cfg.Sites)), ", ")
}

// folder resolves a site folder given as a role of the site's folders
// (inbox, outbox, archive, error) or as a path; a path the site refuses
// (a refused name, outside the site's root) is a usage error naming the
// site, the path and the root.
func folder(name string, sc config.Site, site transfer.Site, p string) (string, error) {
	if f, ok := sc.Folders[p]; ok {
		p = f
	}
	clean, err := site.Check(p)
	switch {
	case err == nil:
		return clean, nil
	case sc.Root != "" && !errors.Is(err, transfer.ErrOutsideRoot):
		return "", usageErr("site %s: %v (the site's root is %s)", name, err, sc.Root)
	}
	return "", usageErr("site %s: %v", name, err)
}

// runTransfer opens the database and records the run around a push or
// pull, storing its id in *runID (the RunID field of the options do hands
// on), and reports each file.
func runTransfer(ctx context.Context, app *App, command string, dryRun bool, output string, runID *int64,
	do func(ctx context.Context, d *db.DB) (*transfer.Result, error)) error {
	d, err := app.DB(ctx)
	if err != nil {
		return err
	}
	var res *transfer.Result
	err = app.recordRun(ctx, d, command, dryRun, func(id int64) (any, bool, error) {
		*runID = id
		var err error
		res, err = do(ctx, d)
		return res, false, err
	})
	if res == nil {
		return err
	}
	if output == "json" {
		if werr := writeJSON(app.Out, res); werr != nil && err == nil {
			err = werr
		}
		return err
	}
	verb := map[string]string{"push": "pushed", "pull": "pulled"}[strings.Fields(command)[0]]
	for _, f := range res.Files {
		switch f.Status {
		case "done":
			fmt.Fprintf(app.Out, "%s %s -> %s (%d bytes, sha256 %s)%s\n", verb, arrowFrom(command, f), arrowTo(command, f), f.Size, f.SHA256, reason(f))
		case "would":
			fmt.Fprintf(app.Out, "dry run: would have %s %s -> %s (%d bytes)\n", verb, arrowFrom(command, f), arrowTo(command, f), f.Size)
		default:
			fmt.Fprintf(app.Out, "%s %s: %s\n", f.Status, arrowFrom(command, f), f.Reason)
		}
	}
	if res.DryRun {
		fmt.Fprintf(app.Out, "%s%s: %d would be %s, %d skipped, %d failed\n", dryRunPrefix(true), command, res.Would, verb, res.Skip, res.Failed)
		return err
	}
	fmt.Fprintf(app.Out, "%s: %d %s, %d skipped, %d failed\n", command, res.Done, verb, res.Skip, res.Failed)
	return err
}

func arrowFrom(command string, f transfer.FileResult) string {
	if strings.HasPrefix(command, "push") {
		return f.Local
	}
	return "site:" + f.Remote
}

func arrowTo(command string, f transfer.FileResult) string {
	if strings.HasPrefix(command, "push") {
		return "site:" + f.Remote
	}
	return f.Local
}

func reason(f transfer.FileResult) string {
	if f.Reason == "" {
		return ""
	}
	return "; " + f.Reason
}

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
	return strings.Join(slices.Sorted(maps.Keys(p.Endpoints)), ", ")
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
