package cli

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/export"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/transfer"
)

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
			return runTransfer(cmd.Context(), app, "push "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
				func(ctx context.Context, d *db.DB) (*transfer.Result, error) { return transfer.Push(ctx, d, site, po) })
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
	return runTransfer(cmd.Context(), app, "push "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
		func(ctx context.Context, d *db.DB) (*transfer.Result, error) {
			res, err := transfer.HTTPPush(ctx, d, site, po)
			if err == nil && res != nil && res.Rejected > 0 {
				err = fmt.Errorf("%w: %s: %d records refused (see the rejects files in sent/)", errRejected, po.SiteName, res.Rejected)
			}
			return res, err
		})
}
