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
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
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
	// lostHost is a host given up for good (--lost-host).
	lostHost string
}

func newExportCmd(app *App) *cobra.Command {
	group := groupCmd("export", "Write ready triggers to partner files, exactly once")
	group.Long = `Export the ready outbound triggers of one kind to files in the outbox
(<data_dir>/outbox/<kind>/ by default), named <kind>_<yyyymmddThhmmssZ>_<seq>.<ext>
with a sequence number per kind that never repeats.

A run claims the triggers for a file, writes it under a temporary name, syncs
and renames it, then records the file complete, which makes its triggers
processed.
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
	o.addLostHostFlag(cmd)
	o.output.add(cmd, "text", "json")
}

// addLostHostFlag adds --lost-host, with which the operator gives up a
// host that died with files of its exports unfinished in its own outbox.
func (o *exportOptions) addLostHostFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.lostHost, "lost-host", "",
		"a host that will not come back: undo the files it left written and not finished (not in this host's outbox), so that this run sends their records again")
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
		FormulaGuard: cfg.CSV.FormulaGuard, LostHost: o.lostHost, ReadBeside: true,
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
		addInventoryPartnerFlags(cmd, &o)
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

func (r exportReport) file(w io.Writer, dryRun bool, f export.File) {
	label := cmp.Or(r.label, r.kind)
	switch {
	case dryRun:
		fmt.Fprintf(w, "%s%s: would write %s (%d %s)\n", dryRunPrefix(true), label, f.Path, f.Records, r.unit)
	case r.triggers:
		fmt.Fprintf(w, "%s: wrote %s (%d %s, %d triggers, sha256 %s)\n", label, f.Path, f.Records, r.unit, f.Triggers, f.SHA256)
	default:
		fmt.Fprintf(w, "%s: wrote %s (%d %s, sha256 %s)\n", label, f.Path, f.Records, r.unit, f.SHA256)
	}
}

func (r exportReport) nothing(w io.Writer, dryRun bool) {
	fmt.Fprintf(w, "%s%s: nothing to export\n", dryRunPrefix(dryRun), cmp.Or(r.label, r.kind))
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

// heldErr reports the order events or return updates an export held
// back, one a line on stderr, and makes the run exit 3; nil when there are
// none.
func heldErr(app *App, name, partner string, held []orders.Held) error {
	if len(held) == 0 {
		return nil
	}
	for _, h := range held {
		app.logger().Warn("not sent: " + h.String())
	}
	fix := "their order or customer is fixed"
	if name == "return-updates" {
		fix = "their return has what they lack (a RETURN_ORDER_UPDATE)"
	}
	return fmt.Errorf("%w: %s %s: %d events not sent; they stay ready and go out with the first export after %s",
		errRejected, name, partner, len(held), fix)
}

// newExportOrdersCmd is export order-events, order-status or
// return-updates: the messages of a partner's orders and returns.
func newExportOrdersCmd(app *App, name string) *cobra.Command {
	var o exportOptions
	var partnerName string
	short, long := "Write the ready order events of a partner's orders (NDJSON sales posting)", `Write the order events (SUBORDER_CREATE, SUBORDER_PARTIAL_CANCEL, SUBORDER_CANCEL,
SUBORDER_COMPLETE) of the partner's orders that no file holds yet, one JSON
object per line, into <export.outbox>/partners/<partner>/order_events_<ts>_<seq>.ndjson,
in the shape of Increff's sales posting to a POS: messageId, omsSubOrderId and
omsSubOrderItemId are numbers, times dd-MM-yyyy'T'HH:mm:ss in UTC
(partners.P.time_format: iso8601 for 2026-03-01T10:15:00Z), channelType from
partners.P.channel_type (default ERP), the billing address the customer's.
Each event's messageId is its id in the state: a file written again after a
crash carries the same ids, so the receiver's de-duplication holds. An event
with a field the sales posting requires left empty (a city, an email, ...) is
not sent, nor are the later events of its order: it is listed on stderr with
its order and field, stays ready for the next export, and the run exits 3.`
	if name == "order-status" {
		short, long = "Write the status of the partner's orders that changed (pending, delivered, cancelled)", `Write each of the partner's orders whose status changed since the last export
(new orders: pending; completed: delivered; cancelled: cancelled) in the shape
of GoFrugal's "Retrieve a sales order" response, {"messageId": N, "salesOrder":
{... the order as the partner sent it ..., "status": "pending", "updatedAt": ...}},
one a line, into <export.outbox>/partners/<partner>/order_status_<ts>_<seq>.ndjson.
Several changes before an export make one message with the latest status.`
	}
	profiles := []string(nil)
	if name == "return-updates" {
		profiles = []string{partner.ExternalOMS}
		short, long = "Write the QC results of the partner's returns (NDJSON return updates)", `Write a return update (eventType RETURN_ORDER_PROCESSED) for each of the
partner's returns with QC results recorded since its last update: the return's
keys and, per item, qcStatus and qcReason; one JSON object per line, into
<export.outbox>/partners/<partner>/return_updates_<ts>_<seq>.ndjson.`
	}
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Long: long + `

Exactly once like every export: claimed, written under a temporary name,
synced, renamed, completed; a run that died is finished or undone by the next.
With nothing ready no file is written (exit 0). See docs/orders.md and
docs/returns.md.`,
		Example: fmt.Sprintf(`  posbridge export %[1]s --partner shop
  posbridge export %[1]s --partner shop --marker`, name),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			p, err := partnerOf(cfg, partnerName, profiles...)
			if err != nil {
				return err
			}
			eo := export.Options{Dir: o.out, Outbox: cfg.OutboxDir(), LockDir: cfg.LockDir(), LockWait: cfg.Export.LockWait,
				MaxRecords: cfg.Export.MaxRecords, Marker: cfg.Export.Marker || o.marker, DryRun: o.dryRun, LostHost: o.lostHost}
			if cmd.Flags().Changed("max-records") {
				if o.maxRecords < 0 {
					return usageErr("--max-records must be 0 (one file) or more")
				}
				eo.MaxRecords = o.maxRecords
			}
			d, err := app.DB(ctx)
			if err != nil {
				return err
			}
			var res *export.OrdersResult
			err = app.recordRun(ctx, d, "export "+name, eo.DryRun, func(id int64) (any, bool, error) {
				eo.RunID = id
				var err error
				res, err = export.Orders(ctx, d, export.OrderKinds[name], p, eo)
				return res, res.Partial(), err
			})
			rep := exportReport{kind: name, label: name + " " + partnerName, unit: "messages", again: "their messages are ready again"}
			if res != nil {
				rep.recovered(app.logger(), res.Result)
			}
			if err != nil {
				return err
			}
			if o.output.value == "json" {
				if err := writeJSON(app.Out, res); err != nil {
					return err
				}
				return heldErr(app, name, partnerName, res.Held)
			}
			rep.files(app.Out, res.Result)
			return heldErr(app, name, partnerName, res.Held)
		},
	}
	f := cmd.Flags()
	f.StringVar(&partnerName, "partner", "", "the partner whose orders' messages to write (partners.NAME)")
	f.StringVar(&o.out, "out", "", "output folder (default: <export.outbox>/partners/<partner>)")
	app.declareExport(cmd, &o.out)
	f.IntVar(&o.maxRecords, "max-records", -1, "at most this many messages per file, 0 for one file (default: export.max_records)")
	f.BoolVar(&o.marker, "marker", false, "write F.done (count and sha256) beside every file F (default: export.marker)")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be written and change nothing")
	o.addLostHostFlag(cmd)
	o.output.add(cmd, "text", "json")
	return cmd
}

// addInventoryPartnerFlags adds --partner and --full to export inventory.
func addInventoryPartnerFlags(cmd *cobra.Command, o *exportOptions) {
	cmd.Flags().StringVar(&o.partner, "partner", "", "write the inventory of this partner (partners in the config) in its profile's shape")
	cmd.Flags().BoolVar(&o.full, "full", false, "with --partner: send every SKU with a code, not only the changed ones")
	cmd.Example += `
  posbridge export inventory --partner shopify
  posbridge export inventory --partner shopify --full`
	cmd.Long = `Without --partner: export the ready inventory triggers in the OMS format.

With --partner P: write P's stock in the shape of its profile (docs/partners.md)
into --out (default <export.outbox>/partners/P/): for external-oms, NDJSON
batches of at most 300 {channelSkuCode, quantity} per line with P's
locationCode; for store-pos, a JSON array of the stock and price list; for
wms, Ongoing's inventoryPerWarehouse shape: a JSON array of {articleNumber,
inventoryPerWarehouse: [{warehouseId (partners.P.warehouse_id), numberOfItems
(on hand), numberOfLockedItems (0), sellableNumberOfItems (on hand less
reserved, may be negative), availableForSaleNumberOfItems (never below 0)}]},
decimals as Ongoing writes them (14.0). The store-pos and
external-oms quantity is on hand less reserved in partners.P.warehouse, summed over its
locations, never below 0. The first export, and --full, send every SKU that
has a code; the others the SKUs whose stock, code or item/SKU record changed
since the last export to P, by the change sequence and a watermark that moves
with the file, exactly once also when a run dies. SKUs without a code are not
sent: they are listed on stderr and in unmapped/ of the output folder, exit 3.`
}

func runPartnerInventory(cmd *cobra.Command, app *App, o *exportOptions) error {
	ctx := cmd.Context()
	if cmd.Flags().Changed("format") || cmd.Flags().Changed("max-records") {
		return usageErr("--format and --max-records do not go with --partner: the partner's profile sets the format")
	}
	cfg, p, d, err := app.partnerDB(ctx, o.partner)
	if err != nil {
		return err
	}
	// A partner that can have no export records no run.
	if err := export.CheckPartner(ctx, d, p); err != nil {
		return err
	}
	eo, err := o.options(cmd, cfg)
	if err != nil {
		return err
	}
	kind := export.PartnerKind(o.partner)
	var res *export.PartnerResult
	err = app.recordRun(ctx, d, "export inventory --partner "+o.partner, eo.DryRun, func(id int64) (any, bool, error) {
		eo.RunID = id
		var err error
		res, err = export.PartnerInventory(ctx, d, p, o.full, eo)
		return res, res.Partial(), err
	})
	log := app.logger()
	rep := exportReport{kind: kind, unit: "products", again: "this run sends their records"}
	if res != nil {
		rep.recovered(log, &res.Result)
	}
	if err != nil {
		return err
	}
	if o.output.value == "json" {
		if err := writeJSON(app.Out, res); err != nil {
			return err
		}
	} else {
		rep.files(app.Out, &res.Result)
	}
	if !res.Partial() {
		return nil
	}
	for _, s := range res.UnmappedSample {
		log.Warn("not sent: " + s)
	}
	where := res.UnmappedFile
	if res.DryRun {
		where = "not written in a dry run"
	}
	if int64(len(res.UnmappedSample)) < res.Unmapped {
		log.Warn(fmt.Sprintf("and %d more SKUs not sent", res.Unmapped-int64(len(res.UnmappedSample))))
	}
	return fmt.Errorf("%w: %d SKUs were not sent to %s: no code (or price) for the partner (%s)", errRejected, res.Unmapped, o.partner, where)
}
