package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/export"
)

// addPartnerFlags adds --partner and --full to export inventory.
func addPartnerFlags(cmd *cobra.Command, o *exportOptions) {
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
		return res, res != nil && res.Unmapped > 0, err
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
	if res.Unmapped == 0 {
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
