package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/returns"
	"github.com/posbridge/posbridge/internal/stores"
	"github.com/posbridge/posbridge/internal/wms"
)

type importOptions struct {
	format       string
	allOrNothing bool
	dryRun       bool
	force        bool
	output       outputFlag
}

// importer is one kind of upload: its name, its command help and the
// function that applies one file.
type importer struct {
	name, short, long, example string
	apply                      func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error)
}

func newImportCmd(app *App) *cobra.Command {
	group := groupCmd("import", "Apply uploads from stores and warehouses (CSV or XML), exactly once")
	group.Long = `Apply upload files: every record is validated; the good ones and the file's
ledger entry commit in one transaction, the bad ones go to FILE.rejects.csv
with their line and reason (exit 3). The ledger key is the file's sha256: the
same content is applied once (a second run says so, exit 0) unless --force.

Give files, or folders: a folder's files are taken in name order, files
modified within import.min_age are left for the next run, and each file is
moved to processed/ or error/ (import.processed_dir, import.error_dir) after
its transaction committed; its rejects file goes to the error folder.`
	addSubs(group, newImportKindCmd(app, importer{
		name:  "inventory-transactions",
		short: "Apply inventory transactions: adjustments, counts, transfers, receipts, sales",
		long: `Apply inventory transactions from CSV (columns transaction_code, item, sku, upc,
retail_ref, warehouse, location, quantity, to_item, to_sku, to_warehouse,
to_location, reason, reference, transaction_date, user) or the OMS inventory
transaction upload XML (Message / InventoryTransaction / Transaction,
TransactionTo). Codes: A adjust by the signed quantity, O overlay (stock
count; OV, Oracle's streamlined overlay, too), T transfer between warehouses
or locations, G item-to-item transfer, V return to vendor, S negative
adjustment, R receipt, P POS sale (CSV only: in XML, P is Oracle's physical
inventory and refused, like C, E, I, M and *); more codes map to these in
import.transaction_codes. The item is named by item and sku,
else upc, else retail_ref. Every applied transaction is kept in the history
with on hand before and after; inventory triggers follow the threshold rule.`,
		example: `  posbridge import inventory-transactions counts.csv
  posbridge import inventory-transactions /srv/drop/inventory --all-or-nothing
  posbridge import inventory-transactions upload.xml --dry-run`,
		apply: imports.ImportTransactions,
	}), newImportKindCmd(app, storesImporter(app)), newImportOrdersCmd(app),
		newImportReceiptsCmd(app), newImportCountsCmd(app), newImportReturnsCmd(app))
	for _, c := range group.Commands() {
		app.declareImport(c)
	}
	return group
}

func newImportKindCmd(app *App, im importer) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:     im.name + " FILE|DIR...",
		Short:   im.short,
		Long:    im.long,
		Example: im.example,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("give at least one file or folder (see '%s --help')", cmd.CommandPath())
			}
			if !format.Known(o.format) {
				return usageErr("--format %q: want auto, csv or xml", o.format)
			}
			return runImport(cmd, app, im, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "auto", "file format: auto (by extension), csv or xml")
	f.BoolVar(&o.allOrNothing, "all-or-nothing", false, "apply nothing of a file if any record is rejected")
	f.BoolVar(&o.dryRun, "dry-run", false, "validate and report, change nothing")
	f.BoolVar(&o.force, "force", false, "apply a file even if the same content was applied before")
	o.output.add(cmd, "text", "json")
	return cmd
}

func runImport(cmd *cobra.Command, app *App, im importer, args []string, o *importOptions) error {
	ctx := cmd.Context()
	cfg, d, err := app.ConfigDB(ctx)
	if err != nil {
		return err
	}
	log := app.logger()
	io := imports.Options{Format: o.format, AllOrNothing: o.allOrNothing, DryRun: o.dryRun, Force: o.force,
		AllowNegative: cfg.Import.AllowNegativeOnHand, Codes: cfg.Import.TransactionCodes, MaxFieldLength: cfg.Load.MaxFieldLength,
		FormulaGuard: cfg.CSV.FormulaGuard, Warn: func(msg string) { log.Warn(msg) }}
	if !o.dryRun {
		if io.RunID, err = app.startRun(ctx, d, "import "+im.name); err != nil {
			return err
		}
	}
	var failed, rejected, busy, notMoved int
	var results []*imports.Result
	var objects []importJSON
	folders := app.settling(ctx, cfg, d)
	folders.Processed, folders.Error = cfg.Import.ProcessedDir, cfg.Import.ErrorDir
	imports.Paths(args, folders, func(path, rejectsDir string) (*imports.Result, error) {
		opts := io
		opts.RejectsDir = rejectsDir
		return im.apply(ctx, d, path, opts)
	}, func(out imports.Outcome) {
		switch {
		case out.Waiting:
			log.Info(fmt.Sprintf("%s: modified less than %s ago, left for the next run", out.Path, cfg.Import.MinAge))
			return
		case out.Err != nil:
			failed++
			if errors.Is(out.Err, db.ErrBusy) {
				busy++
			}
			msg := out.Err.Error()
			if out.MoveErr != nil {
				msg += "; " + notMovedText(out) + "; it stays in the folder for the next run"
			}
			log.Error(msg)
		case out.MoveErr != nil:
			notMoved++
			log.Error(fmt.Sprintf("%s: %s; it stays in the folder for the next run", out.Path, notMovedText(out)))
		}
		objects = append(objects, newImportJSON(out))
		if out.Result != nil {
			results = append(results, out.Result)
			if o.output.value == "text" {
				fmt.Fprintln(app.Out, importLine(im.name, out))
			}
			if out.Result.Rejected > 0 {
				rejected++
			}
		}
	})
	if io.RunID > 0 {
		status := ledger.RunOK
		switch {
		case failed > 0 || notMoved > 0:
			status = ledger.RunFailed
		case rejected > 0:
			status = ledger.RunRejects
		}
		var runErr error
		if failed > 0 || notMoved > 0 {
			runErr = errors.New(importFailure(failed, notMoved))
		}
		if err := ledger.EndRun(context.WithoutCancel(ctx), d, io.RunID, status, results, runErr); err != nil {
			return err
		}
	}
	if o.output.value == "json" {
		if objects == nil {
			objects = []importJSON{}
		}
		if err := writeJSON(app.Out, objects); err != nil {
			return err
		}
	}
	switch {
	case busy > 0 && busy == failed && notMoved == 0:
		return fmt.Errorf("%w: %d files were left for the next run", db.ErrBusy, busy)
	case failed > 0 || notMoved > 0:
		return fmt.Errorf("%w: %s", errReported, importFailure(failed, notMoved))
	case rejected > 0:
		return fmt.Errorf("%w: records were rejected in %d files (see the rejects files)", errRejected, rejected)
	}
	return nil
}

// errReported is a failure whose details were already logged.
var errReported = errors.New("import failed")

// importFailure says what failed in a run: files that failed applied
// nothing, while a file that was not moved keeps what it applied.
func importFailure(failed, notMoved int) string {
	var parts []string
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d of the files failed; nothing of those was applied", failed))
	}
	if notMoved > 0 {
		parts = append(parts, fmt.Sprintf("%d of the files not moved (see above): what they applied stays applied, the next run moves them", notMoved))
	}
	return strings.Join(parts, "; ")
}

// notMovedText is what became of a file whose move failed (out.MoveErr):
// whether its content is applied, and why it stays.
func notMovedText(out imports.Outcome) string {
	if r := out.Result; out.Err == nil && r != nil && !r.RolledBack && (r.Applied > 0 || r.SameAs != "") {
		return "applied, but " + out.MoveErr.Error()
	}
	return "nothing applied, and " + out.MoveErr.Error()
}

// importJSON is a file's object in the JSON output of an import: its
// result, why it failed and why it was not moved. A file that failed
// before it had a result has its name and zero counts.
type importJSON struct {
	*imports.Result
	Error     string `json:"error,omitempty"`
	MoveError string `json:"move_error,omitempty"`
}

func newImportJSON(out imports.Outcome) importJSON {
	j := importJSON{Result: out.Result}
	if j.Result == nil {
		j.Result = &imports.Result{File: out.Path}
	}
	if out.Err != nil {
		j.Error = out.Err.Error()
	}
	if out.MoveErr != nil {
		j.MoveError = out.MoveErr.Error()
	}
	return j
}

func importLine(kind string, out imports.Outcome) string {
	r := out.Result
	var b strings.Builder
	b.WriteString(dryRunPrefix(r.DryRun))
	switch {
	case r.SameAs != "":
		fmt.Fprintf(&b, "%s %s: nothing to do, same content as %s (use --force to apply it again)", kind, r.File, r.SameAs)
	case r.RolledBack:
		fmt.Fprintf(&b, "%s %s: %d read, nothing applied (the file applies whole or not at all), %d rejected", kind, r.File, r.Read, r.Rejected)
	default:
		fmt.Fprintf(&b, "%s %s: %d read, %d applied, %d rejected; %d triggers", kind, r.File, r.Read, r.Applied, r.Rejected, r.Triggers)
	}
	if r.RejectsFile != "" {
		fmt.Fprintf(&b, "; rejects in %s", r.RejectsFile)
	}
	switch {
	case out.MoveErr != nil:
		fmt.Fprintf(&b, "; %s", notMovedText(out))
	case out.MovedTo != "":
		fmt.Fprintf(&b, "; moved to %s", out.MovedTo)
	}
	return b.String()
}

// storesImporter is the store upload of the import command group. Its
// summary line is the one of every upload; what became of the stores
// (added, changed, unchanged) is logged beside it.
func storesImporter(app *App) importer {
	return importer{
		name:  "stores",
		short: "Create or update stores of the store cross reference",
		long: `Create or update store cross reference records from CSV (columns store, name,
active required; address1, address2, city, state, postal_code, country, phone,
email, warehouse, ship_for_pickup, source_code, external_id; any order) or XML
(a <Stores> root with one <Store> element per store, the column names as
attributes). A store in the file replaces the fields of the store of the same
number; stores not in the file are kept. Records are validated with the
messages of the OMS store upload, such as "Store name is required." or
"Country is invalid."; a store given twice in one file is rejected the second
time.`,
		example: `  posbridge import stores stores.csv
  posbridge import stores /srv/drop/stores --all-or-nothing
  posbridge import stores stores.xml --dry-run`,
		apply: func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error) {
			res, err := stores.ImportStores(ctx, d, path, o)
			if res == nil {
				return nil, err
			}
			if res.Applied > 0 {
				app.logger().Info(fmt.Sprintf("%sstores %s: %d added, %d changed, %d unchanged",
					dryRunPrefix(o.DryRun), path, res.Added, res.Changed, res.Unchanged))
			}
			return &res.Result, err
		},
	}
}

// newImportOrdersCmd is import orders: the upload frame of every import
// with the store POS order shape of a partner.
func newImportOrdersCmd(app *App) *cobra.Command {
	var p partner.Profile
	cmd := newImportKindCmd(app, importer{
		name:  "orders",
		short: "Apply online-store sales orders of a store-pos partner (JSON)",
		long: `Apply sales orders of the online store of a store-pos partner, as GoFrugal's
"Create a sales order" API posts them: {"salesOrder": {...}} or the order object
alone, one in a file, an array of them, or one a line (NDJSON). Fields as the
API documents them (onlineReferenceNo, createdAt, status, paymentMode, totals,
shipping*, locationId, customer*, orderItems[] with rowNo, itemId,
itemReferenceCode, salePrice, quantity, ...), keys in any letter case, numbers
as numbers or strings. onlineReferenceNo is the order's key: the same order
again changes nothing, a changed one updates it (the later one wins; logged).
A new customerMobile creates a customer with the order's customer address.
Lines name SKUs by itemReferenceCode through the partner's sku_code (xref: its
cross reference), or by itemId alone for an item without SKUs. The order's
locationId chooses our warehouse (partners.P.locations; none: partners.P.warehouse)
and each line reserves its quantity there; an order short of stock is accepted
and listed by 'posbridge orders list --short'. An order with a bad field or
line, or an unknown locationId, is rejected whole into FILE.rejects.csv (exit
3); invalid JSON fails the file (exit 1). See docs/orders.md.`,
		example: `  posbridge import orders --partner shop orders.json
  posbridge import orders --partner shop /srv/drop/shop/orders`,
		apply: func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error) {
			res, st, err := orders.Import(ctx, d, p, path, o)
			if res != nil && res.Applied > 0 {
				app.logger().Info(fmt.Sprintf("%sorders %s: %d added, %d updated, %d unchanged, %d short of stock",
					dryRunPrefix(o.DryRun), path, st.Added, st.Updated, st.Unchanged, st.Short))
			}
			return res, err
		},
	})
	addPartnerFlag(cmd, app, &p, "the store-pos partner the orders come from (partners.NAME)", partner.StorePOS)
	cmd.Flags().MarkHidden("format") // always JSON
	return cmd
}

// wmsImport is one upload of a WMS partner: the function that applies a
// file of it.
type wmsImport func(ctx context.Context, d *db.DB, p partner.Profile, path string, o imports.Options) (*imports.Result, wms.Stats, error)

// newImportWMSCmd is import receipts or import counts: the upload frame of
// every import with the event shape of a wms partner.
func newImportWMSCmd(app *App, im importer, run wmsImport) *cobra.Command {
	var p partner.Profile
	im.apply = func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error) {
		res, st, err := run(ctx, d, p, path, o)
		if res == nil {
			return res, err
		}
		log := app.logger()
		for _, id := range st.ResentIDs {
			log.Info(fmt.Sprintf("%s %s: webhookEventId %s was applied before: nothing done", im.name, path, id))
		}
		for _, n := range st.Notes {
			log.Info(n)
		}
		if res.Applied > 0 || st.Resent > 0 {
			log.Info(fmt.Sprintf("%s%s %s: %d messages applied, %d webhooks applied before (no-op)", dryRunPrefix(o.DryRun), im.name, path, st.Messages, st.Resent))
		}
		return res, err
	}
	cmd := newImportKindCmd(app, im)
	addPartnerFlag(cmd, app, &p, "the wms partner the events come from (partners.NAME)", partner.WMS)
	cmd.Flags().MarkHidden("format")         // always JSON
	cmd.Flags().MarkHidden("all-or-nothing") // always: an event is never half applied
	return cmd
}

func newImportReceiptsCmd(app *App) *cobra.Command {
	return newImportWMSCmd(app, importer{
		name:  "receipts",
		short: "Apply Ongoing receptions of a wms partner (webhooks, purchase order GET)",
		long: `Apply receptions of a wms partner (Ongoing WMS) as Ongoing sends them: a JSON
file holds one message, an array of them, or one a line (NDJSON), each one of:
the "Inbound transaction has been performed" webhook (webhookEventId,
goodsOwnerId, article, articleItem.numberOfItems, purchaseOrder), the
"Purchase order is received" webhook (no lines: accepted, nothing to apply),
or the GET /api/v1/purchaseOrders/{id} response (goodsOwner,
purchaseOrderInfo, purchaseOrderLines). article.articleNumber names a SKU by
the partner's sku_code; quantities are decimals with a zero fraction (5.0).
Stock goes up (a receipt, code R) in partners.P.warehouse, or the warehouse
that partners.P.locations maps the purchase order's warehouse code to. Each
purchase order line (by its id) is applied once: a webhook adds its
transaction's amount, a GET the increase of the cumulative
receivedNumberOfItems over what the line had; a GET whose received number
went down is rejected. A webhook whose webhookEventId was applied before is a
no-op. A file applies whole or not at all: a rejected record
(FILE.rejects.csv, exit 3) or invalid JSON (exit 1) applies nothing of it.
See docs/partners.md section 5.`,
		example: `  posbridge import receipts --partner ongoing inbound-webhooks.ndjson
  posbridge import receipts --partner ongoing purchase-order-1001.json
  posbridge import receipts --partner ongoing /srv/drop/ongoing/receipts`,
	}, wms.ImportReceipts)
}

func newImportCountsCmd(app *App) *cobra.Command {
	return newImportWMSCmd(app, importer{
		name:  "counts",
		short: "Apply Ongoing stock adjustments of a wms partner (webhook, inventoryAdjustments GET)",
		long: `Apply stock adjustments of a wms partner (Ongoing WMS) as Ongoing sends them: a
JSON file holds one message, an array of them, or one a line (NDJSON), each
one of: the "Inventory transaction has been performed" webhook
(webhookEventId, goodsOwnerId, transaction.transactionNumberOfItems, inventory,
article, location) or the GET /api/v1/inventoryAdjustments response (an
array of {article, inventoryAdjustments[]}). Each adjustment is a signed
adjustment (code A) of on hand in partners.P.warehouse, or the warehouse that
partners.P.locations maps its warehouse code to; the cause code (or COUNT for
a count without one) is its reason. An adjustment (inventoryId, article, bin,
batch, serial) is applied once, whichever message brings it; a webhook whose
webhookEventId was applied before is a no-op. A file applies whole or not at
all: a rejected record (FILE.rejects.csv, exit 3) or invalid JSON (exit 1)
applies nothing of it. See docs/partners.md section 5.`,
		example: `  posbridge import counts --partner ongoing inventory-webhooks.ndjson
  posbridge import counts --partner ongoing inventory-adjustments.json
  posbridge import counts --partner ongoing /srv/drop/ongoing/counts`,
	}, wms.ImportCounts)
}

// newImportReturnsCmd is import returns: the upload frame of every import
// with the return expectations of an external-oms partner.
func newImportReturnsCmd(app *App) *cobra.Command {
	var p partner.Profile
	cmd := newImportKindCmd(app, importer{
		name:  "returns",
		short: "Apply return expectations of an external-oms partner (JSON)",
		long: `Apply the return messages of an external-oms partner (Increff's "Push Return
Order Expectations" and return events): a JSON file holds one message, an
array of them, or one a line (NDJSON): forwardOrderCode, returnOrderCode,
locationCode, channelName, eventType, returnOrderTime, orderType
SELF_SHIP|CUSTOMER_RETURN|RETURN_TO_ORIGIN, awbNumber, transporter,
orderItems[] with returnItemCode, channelSkuCode, reason; keys in any letter
case, each once; the documented strings as JSON strings.

RETURN_ORDER_CREATE, _UPDATE and _COMPLETE carry the return: returnOrderCode
is its key, the same return again changes nothing, a changed one updates it
and its items not yet received. RETURN_ORDER_CANCEL cancels the return and
its items, RETURN_ORDER_PARTIAL_CANCEL the items with status CANCELLED; a
cancelled item can no longer be received. A cancel of a return that does not
exist, or of an item already received, is rejected. channelSkuCode names a
SKU through the partner's sku_code. A bad message is rejected whole, into
FILE.rejects.csv (exit 3); invalid JSON fails the file (exit 1). See
docs/returns.md.`,
		example: `  posbridge import returns --partner increff returns.ndjson
  posbridge import returns --partner increff /srv/drop/increff/returns`,
		apply: func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error) {
			res, st, err := returns.Import(ctx, d, p, path, o)
			if res != nil && res.Applied > 0 {
				app.logger().Info(fmt.Sprintf("%sreturns %s: %d added, %d updated, %d unchanged, %d cancelled", dryRunPrefix(o.DryRun), path,
					st.Added, st.Updated, st.Unchanged, st.Cancelled))
			}
			return res, err
		},
	})
	addPartnerFlag(cmd, app, &p, "the external-oms partner the returns come from (partners.NAME)", partner.ExternalOMS)
	cmd.Flags().MarkHidden("format") // always JSON
	return cmd
}
