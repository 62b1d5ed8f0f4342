package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/export"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
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

// closeSite ends an sftp session; a local site has nothing to close.
// site loads the configuration and opens the named site.
func (a *App) site(name string) (*config.Config, config.Site, transfer.Site, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, config.Site{}, nil, err
	}
	sc, site, err := openSite(cfg, name)
	return cfg, sc, site, err
}

func closeSite(s transfer.Site) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

// siteLabel names what a site stands for in messages.
func siteLabel(sc config.Site, s transfer.Site) string {
	if st, ok := s.(fmt.Stringer); ok && sc.Type == "sftp" {
		return "sftp " + st.String()
	}
	return "folder " + sc.Dir
}

func siteNames(cfg *config.Config) string {
	if len(cfg.Sites) == 0 {
		return "none; add them under sites: in the config"
	}
	names := make([]string, 0, len(cfg.Sites))
	for n := range cfg.Sites {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
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

type pushOptions struct {
	site, from, outbox, to, pattern string
	overwrite, dryRun               bool
	output                          outputFlag
	http                            httpFlags
}

func newPushCmd(app *App) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push --site S [FILE...|--from DIR|--outbox NAME] [--to REMOTE_DIR | --endpoint PATH]",
		Short: "Upload files to a site, never exposing half a file",
		Long: `Upload each file to a temporary name (.NAME.tmp) in the site folder, check the
size there, rename it to its name (failing when another file has that name,
unless --overwrite), record the transfer, then move the local file to sent/
beside it. A marker F.done is uploaded right after F, and never for an F that
failed. A push killed at any point is finished by the next one, which finds
its own file on the site (the push recovery rule in docs/transfers.md).

--outbox NAME pushes the folder an export writes to, read from the config:
items, vendors, invoices, customers, inventory, engagement, mass-customers, or
partner:NAME for the exports for a partner (export.outbox/partners/NAME).

--to is a folder of the site, or the name of one of its configured folders
(inbox, outbox, archive, error); the default is the site's inbox folder. On
an sftp site a folder with a leading / is absolute on the server, as for
the OpenSSH sftp client, and any other counts from the login folder; a
site with root: refuses folders outside it (exit 2).

To an http site (a partner's REST API), each record of an NDJSON or JSON
array file is one request to --endpoint (--per file: the file is one body).
An answer counts when it is 2xx and, for a partner that answers in the body
(an external OMS, or success: has_error_false), says "hasError": false. Each
record is recorded by its key (its messageId, else the file's sha256 and its
number), sent with an Idempotency-Key header, and never sent again once
answered; a refused record goes to sent/FILE.rejects.csv (exit 3). 5xx, 408,
429 and network errors are retried, then exit 75 with the file left for the
next run. --partner P takes the site and endpoint from partners.P (--what
order-events, orders, ...). See docs/transfers.md.`,
		Example: `  posbridge push --site partner --outbox items --pattern '*.xml'
  posbridge push --site partner --from data/outbox/items --to /srv/in
  posbridge push --site partner items_20260101T000000Z_1.xml --to inbox
  posbridge push --site partner --from data/outbox/items --dry-run
  posbridge push --site pos-api --endpoint /pos/sales events.ndjson
  posbridge push --partner increff --outbox partner:increff
  posbridge push --partner estore --what orders orders.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.site == "" && o.http.partner == "" {
				return usageErr("push needs --site")
			}
			if o.outbox != "" {
				if o.from != "" || len(args) > 0 {
					return usageErr("--outbox stands for --from: give files, --from DIR or --outbox NAME, one of them")
				}
				var err error
				if o.from, err = app.outboxFolder(o.outbox); err != nil {
					return err
				}
			}
			if o.http.used(cmd) || app.isHTTPSite(o.site) {
				return pushHTTP(cmd, app, &o, args)
			}
			if (len(args) == 0) == (o.from == "") {
				return usageErr("push takes files, --from DIR or --outbox NAME, one of them")
			}
			if o.pattern != "" && o.from == "" {
				return usageErr("--pattern goes with --from")
			}
			if _, err := filepath.Match(o.pattern, ""); err != nil {
				return usageErr("--pattern %q: %v", o.pattern, err)
			}
			cfg, sc, site, err := app.site(o.site)
			if err != nil {
				return err
			}
			defer closeSite(site)
			to := o.to
			if to == "" {
				to = "inbox"
				if _, ok := sc.Folders[to]; !ok {
					return usageErr("push needs --to: site %s has no inbox folder configured", o.site)
				}
			}
			dir, err := folder(o.site, sc, site, to)
			if err != nil {
				return err
			}
			po := transfer.PushOptions{SiteName: strings.ToLower(o.site), Files: args, FromDir: o.from, Pattern: o.pattern,
				To: dir, Overwrite: o.overwrite, DryRun: o.dryRun, LockDir: cfg.LockDir(),
				Parallel: sc.Parallel, Retry: siteRetry(sc)}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			return runTransfer(cmd.Context(), app, d, "push "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
				func(ctx context.Context) (*transfer.Result, error) { return transfer.Push(ctx, d, site, po) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.site, "site", "", "site name (config sites)")
	f.StringVar(&o.from, "from", "", "local folder whose files to push")
	f.StringVar(&o.outbox, "outbox", "", "push the folder an export writes to: items, vendors, ..., or partner:NAME (instead of --from)")
	f.StringVar(&o.to, "to", "", "site folder, or a configured folder name (default: inbox)")
	f.StringVar(&o.pattern, "pattern", "", "with --from: only names matching this glob")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace a file of the same name on the site")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be pushed and change nothing")
	o.http.addPush(cmd)
	o.output.add(cmd, "text", "json")
	// A push step locks its site, and the folders of its files or the
	// folder it pushes from.
	app.declareStep(cmd, func(args []string) (job.Command, error) {
		from := o.from
		if o.outbox != "" {
			dir, err := app.outboxFolder(o.outbox)
			if err != nil {
				return job.Command{}, err
			}
			from = dir
		}
		site, err := app.stepSite("push", o.site, o.http.partner)
		if err != nil {
			return job.Command{}, err
		}
		locks := []string{job.SiteLock(site)}
		for _, p := range args {
			locks = append(locks, job.PathLock(p))
		}
		return job.Command{Locks: append(locks, folderLocks(from)...)}, nil
	})
	return cmd
}

// outboxFolder is the folder the export called name writes to by default
// (push --outbox); an unknown name is a usage error listing the names.
func (a *App) outboxFolder(name string) (string, error) {
	cfg, err := a.Config()
	if err != nil {
		return "", err
	}
	o := export.Outbox{Dir: cfg.OutboxDir(), MassCustomers: cfg.Export.MassCustomers.Folder,
		Partners: slices.Sorted(maps.Keys(cfg.Partners))}
	dir, err := o.Folder(name)
	if err != nil {
		return "", usageErr("--outbox %v", err)
	}
	return dir, nil
}

type pullOptions struct {
	site, from, to, pattern, after string
	minAge, stableWait             time.Duration
	requireMarker, dryRun          bool
	output                         outputFlag
	http                           httpFlags
}

func newPullCmd(app *App) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull --site S (--from REMOTE_DIR | --endpoint PATH) --to DIR",
		Short: "Fetch the finished files of a site folder, each once",
		Long: `List the site folder and fetch every file that is finished: files younger than
--min-age are left, the folder is looked at twice --stable-wait apart and a file
whose size or time changed is left, and with --require-marker a file F is only
fetched once F.done is there (the marker is fetched after it). Names starting
with "." (temporary files) are never fetched; names holding "/", ".." or control
characters are refused.

Each file is written to a temporary name in --to (mode 0600), its size checked,
synced and renamed, the transfer is recorded, and only then is the remote file
kept, deleted or moved to the site's archive folder (--after). A file already
fetched (same site, path, size and time) is skipped; the same name with new
content is fetched. Two pulls of one site never run at once: the second exits 75.

From an http site, --endpoint is a list GET page by page (--page-param NAME,
pages from 1) until an empty page, a page with fewer than --page-size items or
the same page again; each page is one file in --to, written like a pulled file
and recorded. A page with the sha256 of one fetched before is not written
again. --since-param NAME sends the start time of the last pull of the
endpoint that finished (RFC 3339, UTC), so only what is new comes. --partner P
--what W takes the site and endpoint from partners.P; --to then defaults to
DATA_DIR/inbox/P/W. See docs/transfers.md.`,
		Example: `  posbridge pull --site partner --from outbox --to data/inbox --after archive
  posbridge pull --site partner --from outbox --to data/inbox --pattern '*.csv' --require-marker
  posbridge pull --site partner --from outbox --to data/inbox --dry-run
  posbridge pull --site wms-api --endpoint /api/v1/purchaseOrders --to data/inbox/po --page-param page --since-param lastReceivedFrom
  posbridge pull --partner ongoing --what purchase-orders`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.http.used(cmd) || app.isHTTPSite(o.site) {
				if o.site == "" && o.http.partner == "" {
					return usageErr("pull needs --site (or --partner)")
				}
				return pullHTTP(cmd, app, &o)
			}
			if o.site == "" || o.from == "" || o.to == "" {
				return usageErr("pull needs --site, --from and --to")
			}
			switch o.after {
			case transfer.AfterKeep, transfer.AfterDelete, transfer.AfterArchive:
			default:
				return usageErr("--after %q: want keep, delete or archive", o.after)
			}
			if o.minAge < 0 || o.stableWait < 0 {
				return usageErr("--min-age and --stable-wait must not be negative")
			}
			if _, err := filepath.Match(o.pattern, ""); err != nil {
				return usageErr("--pattern %q: %v", o.pattern, err)
			}
			cfg, sc, site, err := app.site(o.site)
			if err != nil {
				return err
			}
			defer closeSite(site)
			from, err := folder(o.site, sc, site, o.from)
			if err != nil {
				return err
			}
			po := transfer.PullOptions{SiteName: strings.ToLower(o.site), From: from, To: o.to, Pattern: o.pattern,
				After: o.after, MinAge: o.minAge, StableWait: o.stableWait, RequireMarker: o.requireMarker,
				DryRun: o.dryRun, LockDir: cfg.LockDir(), Parallel: sc.Parallel, Retry: siteRetry(sc)}
			if o.after == transfer.AfterArchive {
				if sc.Folders["archive"] == "" {
					return fmt.Errorf("%w: --after archive: site %s has no archive folder (sites.%s.folders.archive)",
						config.ErrInvalid, o.site, po.SiteName)
				}
				if po.ArchiveDir, err = folder(o.site, sc, site, "archive"); err != nil {
					return err
				}
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			return runTransfer(cmd.Context(), app, d, "pull "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
				func(ctx context.Context) (*transfer.Result, error) { return transfer.Pull(ctx, d, site, po) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.site, "site", "", "site name (config sites)")
	f.StringVar(&o.from, "from", "", "site folder, or a configured folder name such as outbox")
	f.StringVar(&o.to, "to", "", "local folder the files go to")
	f.StringVar(&o.pattern, "pattern", "", "only names matching this glob")
	f.StringVar(&o.after, "after", transfer.AfterKeep, "what happens to a fetched remote file: keep, delete or archive")
	f.DurationVar(&o.minAge, "min-age", 30*time.Second, "leave files modified less than this long ago")
	f.DurationVar(&o.stableWait, "stable-wait", 2*time.Second, "time between the two looks at the folder")
	f.BoolVar(&o.requireMarker, "require-marker", false, "fetch F only when F.done is there")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be fetched and change nothing")
	o.http.addPull(cmd)
	o.output.add(cmd, "text", "json")
	// A pull step locks its site and the folder it fills.
	app.declareStep(cmd, func([]string) (job.Command, error) {
		site, err := app.stepSite("pull", o.site, o.http.partner)
		if err != nil {
			return job.Command{}, err
		}
		return job.Command{Locks: append([]string{job.SiteLock(site)}, folderLocks(o.to)...)}, nil
	})
	return cmd
}

// runTransfer records the run around a push or pull, storing its id in
// *runID (the RunID field of the options do hands on), and reports each
// file.
func runTransfer(ctx context.Context, app *App, d *db.DB, command string, dryRun bool, output string, runID *int64,
	do func(ctx context.Context) (*transfer.Result, error)) error {
	var res *transfer.Result
	err := app.recordRun(ctx, d, command, dryRun, func(id int64) (any, bool, error) {
		*runID = id
		var err error
		res, err = do(ctx)
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
		fmt.Fprintf(app.Out, "dry run, nothing changed: %s: %d would be %s, %d skipped, %d failed\n", command, res.Would, verb, res.Skip, res.Failed)
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

func newSitesCmd(app *App) *cobra.Command {
	var out outputFlag
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the configured sites",
		Example: `  posbridge sites list`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Sites))
			for n := range cfg.Sites {
				names = append(names, n)
			}
			sort.Strings(names)
			w := app.newRecords(out.value, "name", "type", "where", "folders")
			for _, n := range names {
				s := cfg.Sites[n]
				where := s.Dir
				switch s.Type {
				case "sftp":
					where = fmt.Sprintf("%s@%s:%d", s.User, s.Host, s.Port)
				case "http":
					where = s.BaseURL
				}
				roles := make([]string, 0, len(s.Folders))
				for r, p := range s.Folders {
					roles = append(roles, r+"="+p)
				}
				sort.Strings(roles)
				obj := map[string]any{"name": n, "type": s.Type, "where": where, "folders": s.Folders}
				if err := w.add(obj, n, s.Type, where, strings.Join(roles, " ")); err != nil {
					return err
				}
			}
			return w.close()
		},
	}
	out.add(list, "table", "json", "csv")

	test := &cobra.Command{
		Use:   "test SITE",
		Short: "Check that a site and each of its folders can be reached and written",
		Long: `For a local site: the folder exists, and each configured folder exists and takes
a new file (a temporary file is created and removed). For an sftp site: connect,
verify the host key against known_hosts, log in, list the login folder, then
the same checks for each configured folder. For an http site: one authenticated
GET of its health_path (default: the base URL), reporting the TLS version, the
answer and the latency; 401 or 403 is a failure. Prints one line per check and
exits 1 when one failed (75 when the server cannot be reached).`,
		Example: `  posbridge sites test partner`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if app.isHTTPSite(args[0]) {
				cfg, _ := app.Config()
				return testHTTPSite(cmd, app, strings.ToLower(args[0]), cfg.Sites[strings.ToLower(args[0])])
			}
			_, sc, site, err := app.site(args[0])
			if err != nil {
				return err
			}
			defer closeSite(site)
			if sc.Type == "sftp" {
				fmt.Fprintf(app.Out, "ok     site %s: connected to %s, host key verified, logged in\n", args[0], siteLabel(sc, site))
				// The login folder of a partner's server is often
				// read-only: it is only listed. With a root, the root
				// is, and nothing outside it.
				start, what := "", "login folder"
				if sc.Root != "" {
					start, what = sc.Root, "root "+sc.Root
				}
				if _, err := site.List(start); err != nil {
					fmt.Fprintf(app.Out, "FAILED site %s: %s: %v\n", args[0], what, err)
					return fmt.Errorf("site %s: %w", args[0], err)
				}
				fmt.Fprintf(app.Out, "ok     site %s: %s listed\n", args[0], what)
			} else {
				if err := transfer.Probe(site, ""); err != nil {
					fmt.Fprintf(app.Out, "FAILED site %s: %s: %v\n", args[0], siteLabel(sc, site), err)
					return fmt.Errorf("site %s: %w", args[0], err)
				}
				fmt.Fprintf(app.Out, "ok     site %s: %s listed and writable\n", args[0], siteLabel(sc, site))
			}
			roles := make([]string, 0, len(sc.Folders))
			for r := range sc.Folders {
				roles = append(roles, r)
			}
			sort.Strings(roles)
			failed := 0
			var refused error // a configured folder the site refuses: fix the config
			for _, r := range roles {
				if err := transfer.Probe(site, sc.Folders[r]); err != nil {
					failed++
					fmt.Fprintf(app.Out, "FAILED folder %s (%s): %v\n", r, sc.Folders[r], err)
					if errors.Is(err, transfer.ErrOutsideRoot) || errors.Is(err, transfer.ErrBadName) {
						refused = fmt.Errorf("%w: sites.%s.folders.%s: %v", config.ErrInvalid, strings.ToLower(args[0]), r, err)
					}
					continue
				}
				fmt.Fprintf(app.Out, "ok     folder %s (%s): listed and writable\n", r, sc.Folders[r])
			}
			if refused != nil {
				return refused
			}
			if failed > 0 {
				if b, ok := site.(interface{ Broken() error }); ok && b.Broken() != nil {
					return fmt.Errorf("site %s: %d of %d folders failed: %w", args[0], failed, len(roles), b.Broken())
				}
				return fmt.Errorf("site %s: %d of %d folders failed", args[0], failed, len(roles))
			}
			return nil
		},
	}

	var lsOut outputFlag
	ls := &cobra.Command{
		Use:     "ls SITE [PATH]",
		Short:   "List a folder of a site",
		Example: `  posbridge sites ls partner outbox`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr("%s takes a site and an optional folder (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			_, sc, site, err := app.site(args[0])
			if err != nil {
				return err
			}
			defer closeSite(site)
			dir := ""
			if len(args) == 2 {
				if dir, err = folder(args[0], sc, site, args[1]); err != nil {
					return err
				}
			}
			entries, err := site.List(dir)
			if err != nil {
				return err
			}
			w := app.newRecords(lsOut.value, "name", "size", "mtime", "type")
			for _, e := range entries {
				kind := "file"
				if e.IsDir {
					kind = "dir"
				}
				mt := e.ModTime.UTC().Format(time.RFC3339)
				obj := map[string]any{"name": e.Name, "size": e.Size, "mtime": mt, "type": kind}
				if err := w.add(obj, e.Name, e.Size, mt, kind); err != nil {
					return err
				}
			}
			return w.close()
		},
	}
	lsOut.add(ls, "table", "json", "csv")
	g := groupCmd("sites", "The configured sites: list, test, ls", list, test, ls)
	g.Long = `Sites are the places files are pushed to and pulled from, configured under
sites: by name, type local (a folder), sftp (an SFTP server) or http (a partner's REST API).
See docs/transfers.md.`
	return g
}

func newTransfersCmd(app *App) *cobra.Command {
	var site, status string
	var deliveries bool
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the transfer ledger: every file pushed or pulled",
		Example: `  posbridge transfers list --site partner --status failed
  posbridge transfers list --output json
  posbridge transfers list --deliveries --site pos-api --status rejected`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if deliveries {
				switch status {
				case "", ledger.DeliveryStarted, ledger.DeliveryDone, ledger.DeliveryRejected, ledger.DeliveryFailed:
					return nil
				}
				return usageErr("--status %q: with --deliveries want started, done, rejected or failed", status)
			}
			switch status {
			case "", ledger.TransferStarted, ledger.TransferDone, ledger.TransferFailed, ledger.TransferSkipped:
				return nil
			}
			return usageErr("--status %q: want started, done, failed or skipped", status)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			if deliveries {
				w := app.newRecords(out.value, "id", "site", "endpoint", "key", "record", "local_path", "status", "code", "attempts", "updated", "error")
				err = ledger.ListDeliveries(cmd.Context(), d, ledger.TransferFilter{Site: strings.ToLower(site), Status: status}, func(x ledger.Delivery) error {
					return w.add(x, x.ID, x.Site, x.Endpoint, x.Key, x.Record, x.LocalPath, x.Status, x.HTTPStatus, x.Attempts, x.UpdatedAt, x.Error)
				})
				if err != nil {
					return err
				}
				return w.close()
			}
			w := app.newRecords(out.value, "id", "site", "direction", "remote_path", "local_path", "size", "status", "updated", "error")
			err = ledger.ListTransfers(cmd.Context(), d, ledger.TransferFilter{Site: strings.ToLower(site), Status: status}, func(t ledger.Transfer) error {
				return w.add(t, t.ID, t.Site, t.Direction, t.RemotePath, t.LocalPath, t.Size, t.Status, t.UpdatedAt, t.Error)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	list.Flags().StringVar(&site, "site", "", "only this site")
	list.Flags().StringVar(&status, "status", "", "only this status: started, done, failed or skipped (with --deliveries: started, done, rejected or failed)")
	list.Flags().BoolVar(&deliveries, "deliveries", false, "the records delivered to http sites, by key, with the answer's status code")
	out.add(list, "table", "json", "csv")
	return groupCmd("transfers", "The ledger of files pushed to and pulled from sites", list)
}
