package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
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
	if p.Profile != config.ProfileExternalOMS && p.Profile != config.ProfileStorePOS && p.Profile != config.ProfileWMS {
		return usageErr("export inventory --partner %s: profile %q has no inventory export here (external-oms, store-pos or wms)", o.partner, p.Profile)
	}
	need := map[string]string{"warehouse": p.Warehouse, "location": p.Location}
	if p.Profile == config.ProfileWMS {
		delete(need, "location") // a WMS's warehouse is warehouse_id
	}
	for key, v := range need {
		if v == "" {
			return fmt.Errorf("%w: partners.%s.%s: an inventory export needs it", config.ErrInvalid, o.partner, key)
		}
	}
	if p.Profile == config.ProfileWMS && p.WarehouseID <= 0 {
		return fmt.Errorf("%w: partners.%s.warehouse_id is not set: the inventory per warehouse names the WMS's number of the warehouse (warehouseId)",
			config.ErrInvalid, o.partner)
	}
	var known bool
	if err := d.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM warehouses WHERE warehouse = ?)`, p.Warehouse).Scan(&known); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%w: partners.%s.warehouse: warehouse %q is not loaded", config.ErrInvalid, o.partner, p.Warehouse)
	}
	eo, err := o.options(cmd, cfg)
	if err != nil {
		return err
	}
	kind := export.PartnerKind(o.partner)
	sku := p.SKUCode
	if sku == "" {
		sku = config.SKUCodeXref
	}
	var res *export.PartnerResult
	err = app.recordRun(ctx, d, "export inventory --partner "+o.partner, eo.DryRun, func(id int64) (any, bool, error) {
		eo.RunID = id
		var err error
		res, err = export.PartnerInventory(ctx, d, export.Partner{Name: o.partner, Profile: p.Profile, SKUCode: sku,
			Location: p.Location, Warehouse: p.Warehouse, WarehouseID: p.WarehouseID}, o.full, eo)
		return res, res != nil && res.Unmapped > 0, err
	})
	log := app.logger()
	if res != nil {
		if res.Completed > 0 {
			log.Warn(fmt.Sprintf("export %s: recovered an earlier run that died: %d files it had written are now complete", kind, res.Completed))
		}
		if res.Abandoned > 0 {
			log.Warn(fmt.Sprintf("export %s: recovered an earlier run that died: %d unfinished files undone, this run sends their records", kind, res.Abandoned))
		}
		if res.Unfinished > 0 {
			log.Warn(fmt.Sprintf("export %s: %d files of an earlier run that died are unfinished; the next real run recovers them first", kind, res.Unfinished))
		}
	}
	if err != nil {
		return err
	}
	if o.output.value == "json" {
		if err := writeJSON(app.Out, res); err != nil {
			return err
		}
	} else {
		prefix := ""
		if res.DryRun {
			prefix = "dry run, nothing changed: "
		}
		for _, f := range res.Files {
			if res.DryRun {
				fmt.Fprintf(app.Out, "%s%s: would write %s (%d products)\n", prefix, kind, f.Path, f.Records)
				continue
			}
			fmt.Fprintf(app.Out, "%s: wrote %s (%d products, sha256 %s)\n", kind, f.Path, f.Records, f.SHA256)
		}
		if len(res.Files) == 0 {
			fmt.Fprintf(app.Out, "%s%s: nothing to export\n", prefix, kind)
		}
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
