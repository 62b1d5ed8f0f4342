package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/partner"
)

func newXrefCmd(app *App) *cobra.Command {
	group := groupCmd("xref", "The SKU cross references of partners: their own codes of our SKUs")
	group.Long = `A partner whose sku_code is xref names our SKUs by codes of its own (its
channelSkuCode or itemReferenceCode). xref load reads them from the partner's
listing, xref list shows them (--unmapped: the SKUs still without one), and
xref delete removes one. PARTNER is a name under partners in the config.
See docs/partners.md.`
	addSubs(group, newXrefLoadCmd(app), newXrefListCmd(app), newXrefDeleteCmd(app))
	return group
}

func newXrefLoadCmd(app *App) *cobra.Command {
	var mode string
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "load PARTNER FILE",
		Short: "Load a partner's SKU codes from a listing (CSV, or Increff's listing JSON)",
		Long: `Load the cross reference of PARTNER from FILE, one of:

- a CSV file with the columns item, sku and external_code, and optionally
  serial (the channelSerialNo), barcode and tolerance_days;
- Increff's listing JSON ("Listing Creation For EFS"):
  {"skuListings":[{"channelSkuCode", "channelSerialNo", "barcode",
  "toleranceDays"}]}, each listing keyed by barcode, our SKU's UPC.

The content decides: a file whose first character (after a BOM and blanks)
is { or [ is JSON, any other is CSV. One code per SKU; a code names one SKU
of the partner. A row is rejected, with its line and field, for an unknown
or deleted item/SKU (a barcode that names no live SKU, or several), a
missing code, a value of the wrong type, a SKU or a code that appears twice
in the file, or a code that another SKU of the partner keeps; the good rows
are applied in one transaction and the rejected ones written to
FILE.rejects.csv (exit 3). A file that cannot be read (invalid JSON, another
wrapper than skuListings, no CSV header) is exit 1.

--mode delta (the default) adds and changes the mappings of the file;
--mode full makes the file the partner's whole listing: mappings of SKUs not
in the file are removed. A mapping added or changed makes its SKU go out in
the partner's next inventory export.`,
		Example: `  posbridge xref load shopify listing.csv
  posbridge xref load shopify listing.csv --mode full
  posbridge xref load increff skuListings.json`,
		Args: exactArgs(2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if mode != partner.ModeDelta && mode != partner.ModeFull {
				return usageErr("--mode %q: want delta or full", mode)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, _, d, err := app.partnerDB(ctx, args[0])
			if err != nil {
				return err
			}
			var res *partner.LoadResult
			err = app.recordRun(ctx, d, "xref load", false, func(int64) (any, bool, error) {
				var err error
				res, err = partner.Load(ctx, d, args[0], args[1], partner.LoadOptions{Mode: mode, FormulaGuard: cfg.CSV.FormulaGuard,
					MaxFieldLength: cfg.Load.MaxFieldLength})
				return res, res != nil && res.Rejected > 0, err
			})
			log := app.logger()
			for _, w := range res.Warnings {
				log.Warn(args[1] + ": " + w)
			}
			if err != nil {
				return err
			}
			if out.value == "json" {
				if err := writeJSON(app.Out, res); err != nil {
					return err
				}
			} else {
				line := fmt.Sprintf("xref %s %s: %d read, %d added, %d changed, %d deleted, %d unchanged, %d rejected",
					res.Partner, res.File, res.Read, res.Added, res.Changed, res.Deleted, res.Unchanged, res.Rejected)
				if res.RejectsFile != "" {
					line += "; rejects in " + res.RejectsFile
				}
				fmt.Fprintln(app.Out, line)
			}
			if res.Rejected > 0 {
				return fmt.Errorf("%w: %d of %d rows rejected (%s)", errRejected, res.Rejected, res.Read, res.RejectsFile)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", partner.ModeDelta, "delta (add and change) or full (the file is the whole listing)")
	out.add(cmd, "text", "json")
	return cmd
}

func newXrefListCmd(app *App) *cobra.Command {
	var unmapped bool
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list PARTNER",
		Short: "List a partner's SKU codes, or the SKUs without one",
		Example: `  posbridge xref list shopify
  posbridge xref list shopify --unmapped --output csv`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, _, d, err := app.partnerDB(ctx, args[0])
			if err != nil {
				return err
			}
			if unmapped {
				w := app.newRecords(out.value, "item", "sku", "description", "upc")
				err = partner.ListUnmapped(ctx, d, args[0], func(u partner.Unmapped) error {
					return w.add(u, u.Item, u.SKU, u.Description, u.UPC)
				})
				if err != nil {
					return err
				}
				return w.close()
			}
			w := app.newRecords(out.value, "item", "sku", "external_code", "serial", "barcode", "tolerance_days", "updated")
			err = partner.List(ctx, d, args[0], func(m partner.Mapping) error {
				days := ""
				if m.ToleranceDays != nil {
					days = fmt.Sprint(*m.ToleranceDays)
				}
				return w.add(m, m.Item, m.SKU, m.ExternalCode, m.Serial, m.Barcode, days, m.UpdatedAt)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	cmd.Flags().BoolVar(&unmapped, "unmapped", false, "list the live SKUs that have no code for the partner")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

func newXrefDeleteCmd(app *App) *cobra.Command {
	var item, sku, code string
	cmd := &cobra.Command{
		Use:   "delete PARTNER (--item I --sku S | --external-code C)",
		Short: "Delete one of a partner's SKU codes",
		Long: `Delete the mapping of one SKU (--item and --sku; --sku "" for an item
without SKUs) or of one external code. The partner's next inventory export
sends a quantity of 0 under the code, so the partner stops selling the figure
it was last sent there (as for a mapping that xref load --mode full drops or
gives a new code). A mapping that does not exist is an error (exit 1).`,
		Example: `  posbridge xref delete shopify --item IT0000001 --sku BLK-8
  posbridge xref delete shopify --external-code SHOP-1001`,
		Args: exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			byCode := cmd.Flags().Changed("external-code")
			bySKU := cmd.Flags().Changed("item") || cmd.Flags().Changed("sku")
			switch {
			case byCode && bySKU:
				return usageErr("give --item and --sku, or --external-code, not both")
			case byCode && code == "":
				return usageErr("--external-code is empty")
			case !byCode && item == "":
				return usageErr("give --item (and --sku) or --external-code")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, _, d, err := app.partnerDB(ctx, args[0])
			if err != nil {
				return err
			}
			m, err := partner.Delete(ctx, d, args[0], item, sku, code)
			if errors.Is(err, partner.ErrNotFound) {
				what := fmt.Sprintf("item/SKU %q/%q", item, sku)
				if code != "" {
					what = fmt.Sprintf("external code %q", code)
				}
				return fmt.Errorf("xref delete %s: %s: %w", args[0], what, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "xref %s: deleted %s/%s = %s\n", args[0], m.Item, m.SKU, m.ExternalCode)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&item, "item", "", "our item number")
	f.StringVar(&sku, "sku", "", "our SKU code (empty for an item without SKUs)")
	f.StringVar(&code, "external-code", "", "the partner's code")
	return cmd
}
