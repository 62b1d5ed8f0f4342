package cli

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/transfer"
)

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
			return runTransfer(cmd.Context(), app, "pull "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
				func(ctx context.Context, d *db.DB) (*transfer.Result, error) { return transfer.Pull(ctx, d, site, po) })
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
	return runTransfer(cmd.Context(), app, "pull "+po.SiteName, o.dryRun, o.output.value, &po.RunID,
		func(ctx context.Context, d *db.DB) (*transfer.Result, error) {
			return transfer.HTTPPull(ctx, d, site, po)
		})
}
