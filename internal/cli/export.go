package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/export"
	"github.com/posbridge/posbridge/internal/ledger"
)

type exportOptions struct {
	format     string
	out        string
	maxRecords int
	marker     bool
	dryRun     bool
	classes    string
	since      string
	partner    string
	full       bool
	output     outputFlag
	// framing and filePerMessage override export.xml for one run.
	framing        string
	filePerMessage bool
}

func newExportCmd(app *App) *cobra.Command {
	group := groupCmd("export", "Write ready triggers to partner files, exactly once")
	group.Long = `Export the ready outbound triggers of one kind to files in the outbox
(<data_dir>/outbox/<kind>/ by default), named <kind>_<yyyymmddThhmmssZ>_<seq>.<ext>
with a sequence number per kind that never repeats.

A run claims the triggers, writes the file under a temporary name, syncs and
renames it, then marks the triggers processed with the file they went into.
A run that dies is finished or undone by the next run of the same kind: a
finished file is never written twice and no trigger is lost. Runs of one kind
never overlap; a second one waits up to export.lock_wait, then exits 75.

With no ready triggers no file is written and the exit code is 0.
See docs/exports.md for the formats.`
	for _, kind := range export.Kinds {
		addSubs(group, newExportKindCmd(app, kind))
	}
	addSubs(group, newExportMassCmd(app), newExportEngagementCmd(app),
		newExportOrdersCmd(app, "order-events"), newExportOrdersCmd(app, "order-status"),
		newExportOrdersCmd(app, "return-updates"))
	return group
}

func (o *exportOptions) addFlags(cmd *cobra.Command, split bool) {
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "", "file format: xml or csv (default: export.format)")
	f.StringVar(&o.out, "out", "", "output folder (default: the kind's folder in export.outbox)")
	if split {
		f.IntVar(&o.maxRecords, "max-records", -1, "at most this many records per file, 0 for one file (default: export.max_records)")
	}
	f.BoolVar(&o.marker, "marker", false, "write F.done (count and sha256) beside every file F (default: export.marker)")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be written and change nothing")
	o.output.add(cmd, "text", "json")
}

// addFramingFlags adds the XML framing flags of the exports that have it.
func (o *exportOptions) addFramingFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.framing, "framing", "", "XML framing: batch or oracle (default: export.xml.framing)")
	f.BoolVar(&o.filePerMessage, "file-per-message", false,
		"with --framing oracle, write each Message to a file of its own (default: export.xml.file_per_message)")
}

// options turns flags and configuration into export options.
func (o *exportOptions) options(cmd *cobra.Command, cfg *config.Config) (export.Options, error) {
	eo := export.Options{
		Format: cfg.Export.Format, Dir: o.out, Outbox: cfg.OutboxDir(), LockDir: cfg.LockDir(),
		LockWait: cfg.Export.LockWait, MaxRecords: cfg.Export.MaxRecords, Marker: cfg.Export.Marker || o.marker,
		DryRun: o.dryRun, Source: cfg.Export.Source, Target: cfg.Export.Target, Company: cfg.Company.Number,
		ExcludeNonAllocatable: cfg.Export.ExcludeNonAllocatable,
		Framing:               cfg.Export.XML.Framing, FilePerMessage: cfg.Export.XML.FilePerMessage,
		FormulaGuard: cfg.CSV.FormulaGuard,
	}
	if o.format != "" {
		eo.Format = o.format
	}
	if cmd.Flags().Changed("framing") {
		if o.framing != export.FramingBatch && o.framing != export.FramingOracle {
			return eo, usageErr("--framing %q: want batch or oracle", o.framing)
		}
		eo.Framing = o.framing
		if eo.Framing == export.FramingBatch && !cmd.Flags().Changed("file-per-message") {
			eo.FilePerMessage = false
		}
	}
	if cmd.Flags().Changed("file-per-message") {
		eo.FilePerMessage = o.filePerMessage
	}
	if eo.FilePerMessage && eo.Framing != export.FramingOracle {
		return eo, usageErr("--file-per-message goes with --framing oracle (or export.xml.framing: oracle)")
	}
	if eo.Format != "xml" && eo.Format != "csv" {
		return eo, usageErr("--format %q: want xml or csv", eo.Format)
	}
	if cmd.Flags().Changed("max-records") {
		if o.maxRecords < 0 {
			return eo, usageErr("--max-records must be 0 (one file) or more")
		}
		eo.MaxRecords = o.maxRecords
	}
	return eo, nil
}

func newExportKindCmd(app *App, kind string) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   kind,
		Short: "Export the ready " + kind + " triggers",
		Example: fmt.Sprintf(`  posbridge export %[1]s
  posbridge export %[1]s --format csv --max-records 5000 --marker
  posbridge export %[1]s --dry-run`, kind),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.partner != "" {
				return runPartnerInventory(cmd, app, &o)
			}
			return runExport(cmd, app, kind, &o)
		},
	}
	o.addFlags(cmd, true)
	app.declareExport(cmd, &o.out)
	o.addFramingFlags(cmd)
	if kind == "inventory" {
		addPartnerFlags(cmd, &o)
	}
	return cmd
}

func newExportMassCmd(app *App) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "mass-customers",
		Short: "Write every sold-to customer of the chosen classes (no triggers)",
		Long: `Write the mass customer download: every live sold-to customer whose class is in
--class (default: export.mass_customers.classes), action A, into one file of kind
mass_customers in --out (default: export.mass_customers.folder). Triggers are
not touched. Both settings must be set, in the config or as flags.`,
		Example: `  posbridge export mass-customers --class RT,WH --out /srv/posbridge/outbox/mass
  posbridge export mass-customers --format csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, app, "mass_customers", &o)
		},
	}
	o.addFlags(cmd, false)
	app.declareExport(cmd, &o.out)
	o.addFramingFlags(cmd)
	cmd.Flags().StringVar(&o.classes, "class", "", "customer classes, comma-separated (default: export.mass_customers.classes)")
	return cmd
}

func runExport(cmd *cobra.Command, app *App, kind string, o *exportOptions) error {
	ctx := cmd.Context()
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	eo, err := o.options(cmd, cfg)
	if err != nil {
		return err
	}
	if o.since != "" {
		if eo.Since, err = export.ParseSince(o.since); err != nil {
			return usageErr("--since: %v", err)
		}
	}
	if kind == "mass_customers" {
		eo.Classes = cfg.Export.MassCustomers.Classes
		if o.classes != "" {
			eo.Classes = nil
			for _, c := range strings.Split(o.classes, ",") {
				if c = strings.TrimSpace(c); c != "" {
					eo.Classes = append(eo.Classes, c)
				}
			}
		}
		if len(eo.Classes) == 0 {
			return fmt.Errorf("%w: export mass-customers needs customer classes: set export.mass_customers.classes in the config or give --class",
				config.ErrInvalid)
		}
		if eo.Dir == "" {
			eo.Dir = cfg.Export.MassCustomers.Folder
		}
		if eo.Dir == "" {
			return fmt.Errorf("%w: export mass-customers needs an output folder: set export.mass_customers.folder in the config or give --out",
				config.ErrInvalid)
		}
	}
	d, err := app.DB(ctx)
	if err != nil {
		return err
	}
	var res *export.Result
	err = app.recordRun(ctx, d, "export "+kind, eo.DryRun, func(id int64) (any, bool, error) {
		eo.RunID = id
		var err error
		switch kind {
		case "mass_customers":
			res, err = export.MassCustomers(ctx, d, eo)
		case "engagement":
			res, err = export.Engagement(ctx, d, eo)
			if errors.Is(err, export.ErrNoFeedYet) {
				err = fmt.Errorf("%w: %v", errUsage, err)
			}
		default:
			res, err = export.Run(ctx, d, kind, eo)
		}
		return res, false, err
	})
	rep := exportReport{kind: kind, unit: "records", again: "their triggers are ready again", triggers: true}
	if kind == "engagement" {
		rep.again = "this run sends their records"
	}
	if res != nil {
		rep.recovered(app.logger(), res)
	}
	if err != nil {
		return err
	}
	if o.output.value == "json" {
		return writeJSON(app.Out, res)
	}
	if kind == "engagement" {
		printFeed(app.Out, res)
		return nil
	}
	rep.files(app.Out, res)
	return nil
}

// exportReport renders what an export run did, the same way for every
// export: on stderr what it recovered of an earlier run that died, on
// stdout a line per file written (in a dry run, that it would write) or
// that there was nothing to export.
type exportReport struct {
	kind  string // the export in the recovery warnings
	label string // what the file lines start with (default kind)
	unit  string // what a file's records are: records, messages, products
	again string // what becomes of the records of the files undone
	// triggers adds the triggers a file completed to its line.
	triggers bool
}

// recovered warns of the files of an earlier run that died: completed or
// undone by this run, or left for the next real run by a dry run, and of
// triggers put in error because their record is gone.
func (r exportReport) recovered(log *slog.Logger, res *export.Result) {
	if res.Completed > 0 {
		log.Warn(fmt.Sprintf("export %s: recovered an earlier run that died: %d files it had written are now complete", r.kind, res.Completed))
	}
	if res.Abandoned > 0 {
		log.Warn(fmt.Sprintf("export %s: recovered an earlier run that died: %d unfinished files undone, %s", r.kind, res.Abandoned, r.again))
	}
	if res.Unfinished > 0 {
		log.Warn(fmt.Sprintf("export %s: %d files of an earlier run that died are unfinished; the next real run recovers them first",
			r.kind, res.Unfinished))
	}
	if res.Missing > 0 {
		log.Warn(fmt.Sprintf("export %s: %d triggers put in error: their record is gone without a tombstone (see trigger list --status error)",
			r.kind, res.Missing))
	}
}

// files prints a line per file of res, or that it has none.
func (r exportReport) files(w io.Writer, res *export.Result) {
	for _, f := range res.Files {
		r.file(w, res.DryRun, f)
	}
	if len(res.Files) == 0 {
		r.nothing(w, res.DryRun)
	}
}

// dryRunPrefix starts the lines of a dry run.
const dryRunPrefix = "dry run, nothing changed: "

func (r exportReport) file(w io.Writer, dryRun bool, f export.File) {
	label := cmp.Or(r.label, r.kind)
	switch {
	case dryRun:
		fmt.Fprintf(w, "%s%s: would write %s (%d %s)\n", dryRunPrefix, label, f.Path, f.Records, r.unit)
	case r.triggers:
		fmt.Fprintf(w, "%s: wrote %s (%d %s, %d triggers, sha256 %s)\n", label, f.Path, f.Records, r.unit, f.Triggers, f.SHA256)
	default:
		fmt.Fprintf(w, "%s: wrote %s (%d %s, sha256 %s)\n", label, f.Path, f.Records, r.unit, f.SHA256)
	}
}

func (r exportReport) nothing(w io.Writer, dryRun bool) {
	prefix := ""
	if dryRun {
		prefix = dryRunPrefix
	}
	fmt.Fprintf(w, "%s%s: nothing to export\n", prefix, cmp.Or(r.label, r.kind))
}

func newExportEngagementCmd(app *App) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "engagement",
		Short: "Write the Customer Engagement feed: customers, items, sales and returns since the last feed",
		Long: `Write the batch files of a customer engagement system into --out (default
<export.outbox>/engagement/), one per kind that has something new:
engagement_customers (customers added, changed or deleted), engagement_items
(item/SKUs added, changed or deleted), engagement_sales (invoices) and
engagement_returns (credit invoices). The first feed sends every customer,
item/SKU and invoice; each later one what loads added or changed since the
last, by the change sequence the loads stamp on every row. Each kind keeps a
watermark, the last change it sent, which moves together with the file, so
every change and every invoice is in exactly one complete file, also when a
run dies. An invoice is sent once: a change to it after that is not resent.

With nothing new no file is written and the exit code is 0.

--since TIMESTAMP resends what changed at or after that time (UTC
YYYY-MM-DDThh:mm:ssZ, another RFC 3339 offset, or a date YYYY-MM-DD): records
whose last change, and invoices loaded, at or after it. A resend does not
move the watermarks, neither back nor forward: the next feed without --since
sends what changed since the last one as if the resend had not happened.
See docs/exports.md, "Customer Engagement feed".`,
		Example: `  posbridge export engagement
  posbridge export engagement --format csv --marker
  posbridge export engagement --since 2026-11-01T00:00:00Z --out /srv/posbridge/resend
  posbridge export engagement --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, app, "engagement", &o)
		},
	}
	o.addFlags(cmd, false)
	app.declareExport(cmd, &o.out)
	cmd.Flags().StringVar(&o.since, "since", "", "resend what changed at or after this UTC time; the watermarks stay where they are")
	return cmd
}

// printFeed prints a line per file kind of the engagement feed: the file
// written (or, in a dry run, planned), or that it had nothing new.
func printFeed(w io.Writer, res *export.Result) {
	for _, k := range export.EngagementKinds {
		rep := exportReport{kind: k, unit: "records"}
		found := false
		for _, f := range res.Files {
			if f.Kind == k {
				found = true
				rep.file(w, res.DryRun, f)
			}
		}
		if !found {
			rep.nothing(w, res.DryRun)
		}
	}
}

func newFilesCmd(app *App) *cobra.Command {
	var direction, kind string
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the file ledger: loads and imports in, exports out",
		Example: `  posbridge files list --direction out --kind items
  posbridge files list --output json`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if direction != "" && direction != "in" && direction != "out" {
				return usageErr("--direction %q: want in or out", direction)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			w := app.newRecords(out.value, "id", "direction", "kind", "name", "records", "rejected", "status", "sha256", "created", "error")
			err = ledger.ListFiles(cmd.Context(), d, ledger.FileFilter{Direction: direction, Kind: kind}, func(f ledger.File, msg string) error {
				obj := map[string]any{"id": f.ID, "direction": f.Direction, "kind": f.Kind, "name": f.Name, "path": f.Path,
					"records": f.Records, "rejected": f.Rejected, "status": f.Status, "sha256": f.SHA256, "size": f.Size,
					"run_id": f.RunID, "created_at": f.CreatedAt, "error": msg}
				return w.add(obj, f.ID, f.Direction, f.Kind, f.Name, f.Records, f.Rejected, f.Status, f.SHA256, f.CreatedAt, msg)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	list.Flags().StringVar(&direction, "direction", "", "in or out")
	list.Flags().StringVar(&kind, "kind", "", "file kind, such as items or load-items")
	out.add(list, "table", "json", "csv")
	return groupCmd("files", "The ledger of files in and out", list)
}
