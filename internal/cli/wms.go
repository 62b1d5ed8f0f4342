package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/wms"
)

// wmsImport is one upload of a WMS partner: the function that applies a
// file of it.
type wmsImport func(ctx context.Context, d *db.DB, name string, p config.Partner, path string, o imports.Options) (*imports.Result, wms.Stats, error)

// newImportWMSCmd is import receipts or import counts: the upload frame of
// every import with the event shape of a wms partner.
func newImportWMSCmd(app *App, im importer, run wmsImport) *cobra.Command {
	var partner string
	var p config.Partner
	im.apply = func(ctx context.Context, d *db.DB, path string, o imports.Options) (*imports.Result, error) {
		res, st, err := run(ctx, d, partner, p, path, o)
		if res == nil {
			return res, err
		}
		log := app.logger()
		for _, id := range st.ResentIDs {
			log.Info(fmt.Sprintf("%s %s: event %s was applied before: nothing done", im.name, path, id))
		}
		if res.Applied > 0 || st.Resent > 0 {
			prefix := ""
			if o.DryRun {
				prefix = "dry run, nothing changed: "
			}
			log.Info(fmt.Sprintf("%s%s %s: %d events applied, %d applied before (no-op)", prefix, im.name, path, st.Events, st.Resent))
		}
		return res, err
	}
	cmd := newImportKindCmd(app, im)
	addPartnerFlag(cmd, app, &partner, &p, "the wms partner the events come from (partners.NAME)", config.ProfileWMS)
	cmd.Flags().MarkHidden("format")         // always JSON
	cmd.Flags().MarkHidden("all-or-nothing") // always: an event is never half applied
	return cmd
}

func newImportReceiptsCmd(app *App) *cobra.Command {
	return newImportWMSCmd(app, importer{
		name:  "receipts",
		short: "Apply purchase order receptions of a wms partner (JSON)",
		long: `Apply purchase order receptions of a wms partner: a JSON file holds one event or
an array of them: webhookEventId, purchaseOrderNumber, lines[] (or
purchaseOrderLines[]) with rowNumber, articleNumber, advisedNumberOfItems,
receivedNumberOfItems; keys in any letter case. articleNumber names a SKU by
the partner's sku_code. receivedNumberOfItems is cumulative for a purchase
order line: each event raises on hand in partners.P.warehouse by the increase
over what the line received before (a receipt, code R, with history and
inventory triggers as import inventory-transactions), never twice. More than
advised is accepted with a warning; less than before changes nothing, with a
warning. An event whose webhookEventId was applied before is a no-op. A file
applies whole or not at all: a rejected line (FILE.rejects.csv, exit 3) or
invalid JSON (exit 1) applies nothing of it. See docs/partners.md.`,
		example: `  posbridge import receipts --partner ongoing receptions.json
  posbridge import receipts --partner ongoing /srv/drop/ongoing/receipts`,
	}, wms.ImportReceipts)
}

func newImportCountsCmd(app *App) *cobra.Command {
	return newImportWMSCmd(app, importer{
		name:  "counts",
		short: "Apply stock count adjustments of a wms partner (JSON)",
		long: `Apply stock-taking of a wms partner: a JSON file holds one event or an array of
them: webhookEventId, adjustments[] with articleNumber, location (the
partner's location code, partners.P.location; empty means that one; any
other is rejected), numberOfItems (the signed difference the count found),
causeCode and isStockTaking; keys in any letter case. Each adjustment is an
adjustment (code A) of on hand in partners.P.warehouse, with history and
inventory triggers as import inventory-transactions; the cause code (or
COUNT for a count without one) is its reason. An event whose webhookEventId
was applied before is a no-op. A file applies whole or not at all: a
rejected adjustment (FILE.rejects.csv, exit 3) or invalid JSON (exit 1)
applies nothing of it. See docs/partners.md.`,
		example: `  posbridge import counts --partner ongoing count-2026-03.json
  posbridge import counts --partner ongoing /srv/drop/ongoing/counts`,
	}, wms.ImportCounts)
}
