package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/wms"
)

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
			prefix := ""
			if o.DryRun {
				prefix = "dry run, nothing changed: "
			}
			log.Info(fmt.Sprintf("%s%s %s: %d messages applied, %d webhooks applied before (no-op)", prefix, im.name, path, st.Messages, st.Resent))
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
