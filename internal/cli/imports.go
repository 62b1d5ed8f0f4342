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
	var failed, rejected, busy int
	var results []*imports.Result
	folders := imports.Folders{MinAge: cfg.Import.MinAge, Processed: cfg.Import.ProcessedDir, Error: cfg.Import.ErrorDir,
		Warn: func(msg string) { log.Warn(msg) }}
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
			log.Error(out.Err.Error())
		}
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
		case failed > 0:
			status = ledger.RunFailed
		case rejected > 0:
			status = ledger.RunRejects
		}
		var runErr error
		if failed > 0 {
			runErr = fmt.Errorf("%d files failed", failed)
		}
		if err := ledger.EndRun(context.WithoutCancel(ctx), d, io.RunID, status, results, runErr); err != nil {
			return err
		}
	}
	if o.output.value == "json" {
		if results == nil {
			results = []*imports.Result{}
		}
		if err := writeJSON(app.Out, results); err != nil {
			return err
		}
	}
	switch {
	case busy > 0 && busy == failed:
		return fmt.Errorf("%w: %d files were left for the next run", db.ErrBusy, busy)
	case failed > 0:
		return fmt.Errorf("%w: %d of the files failed; nothing of those was applied", errReported, failed)
	case rejected > 0:
		return fmt.Errorf("%w: records were rejected in %d files (see the rejects files)", errRejected, rejected)
	}
	return nil
}

// errReported is a failure whose details were already logged.
var errReported = errors.New("import failed")

func importLine(kind string, out imports.Outcome) string {
	r := out.Result
	var b strings.Builder
	if r.DryRun {
		b.WriteString("dry run, nothing changed: ")
	}
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
	if out.MovedTo != "" {
		fmt.Fprintf(&b, "; moved to %s", out.MovedTo)
	}
	return b.String()
}
