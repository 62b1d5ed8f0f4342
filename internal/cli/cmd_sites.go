package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/transfer"
)

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
			w := app.newRecords(out.value, "name", "type", "where", "folders")
			for _, n := range slices.Sorted(maps.Keys(cfg.Sites)) {
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
				slices.Sort(roles)
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
			roles := slices.Sorted(maps.Keys(sc.Folders))
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

// siteLabel names what a site stands for in messages.
func siteLabel(sc config.Site, s transfer.Site) string {
	if st, ok := s.(fmt.Stringer); ok && sc.Type == "sftp" {
		return "sftp " + st.String()
	}
	return "folder " + sc.Dir
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
