package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/returns"
)

func newReturnsCmd(app *App) *cobra.Command {
	group := groupCmd("returns", "Returns of an external OMS: list, show, receive with QC",
		newReturnsListCmd(app), newReturnsShowCmd(app), newReturnsReceiveCmd(app))
	group.Long = `Returns expected from an external-oms partner (posbridge import returns). Each
returned item is received once with its QC result: PASS raises on hand in the
return's warehouse (an inventory transaction), FAIL only records it. Every
result queues the return's update for 'export return-updates'. RETURN is the
partner's returnOrderCode. See docs/returns.md.`
	return group
}

// returnErr gives the errors of a returns command their wording and exit
// code: an unknown return is not found, as for every show command; an
// unknown item, an item received already or a return the partner
// cancelled failed with nothing changed: all exit 1. Exit 2 is for a wrong
// command line.
func returnErr(err error, code string) error {
	switch {
	case errors.Is(err, returns.ErrNotFound):
		return notFound("return", code, "returns list")
	case errors.Is(err, returns.ErrNoItem), errors.Is(err, returns.ErrRefused), errors.Is(err, returns.ErrCancelled):
		return fmt.Errorf("%w; nothing changed", err)
	}
	return err
}

func newReturnsListCmd(app *App) *cobra.Command {
	var f returns.Filter
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List returns, oldest first",
		Example: `  posbridge returns list --status expected
  posbridge returns list --partner increff --output csv`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch f.Status {
			case "", returns.StatusExpected, returns.StatusReceived, returns.StatusClosed, returns.StatusCancelled:
			default:
				return usageErr("--status %q: want expected, received, closed or cancelled", f.Status)
			}
			return app.knownPartner(f.Partner)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			w := app.newRecords(out.value, "return", "partner", "forward_order", "order_type", "warehouse", "status", "items", "received", "passed", "updated")
			err = returns.List(cmd.Context(), d, f, func(r returns.Return) error {
				return w.add(returnJSON(r), r.Code, r.Partner, r.ForwardOrderCode, r.OrderType, r.Warehouse, r.Status, r.Items, r.Received, r.Passed, r.UpdatedAt)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	cmd.Flags().StringVar(&f.Partner, "partner", "", "only the returns of this partner")
	cmd.Flags().StringVar(&f.Status, "status", "", "only returns in this status: expected, received, closed or cancelled")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

// returnJSON is a return as list and show write it in JSON.
func returnJSON(r returns.Return) map[string]any {
	m := map[string]any{"return": r.Code, "partner": r.Partner, "forward_order_code": r.ForwardOrderCode, "location_code": r.LocationCode,
		"warehouse": r.Warehouse, "channel": r.Channel, "event_type": r.EventType, "order_type": r.OrderType, "awb_number": r.AwbNumber,
		"transporter": r.Transporter, "return_time": r.ReturnTime, "status": r.Status, "items": r.Items, "received": r.Received,
		"passed": r.Passed, "revision": r.Revision, "cancelled_at": r.CancelledAt, "created_at": r.CreatedAt, "updated_at": r.UpdatedAt}
	if r.Lines != nil {
		m["lines"] = r.Lines
	}
	return m
}

func newReturnsShowCmd(app *App) *cobra.Command {
	var out outputFlag
	var partner string
	cmd := &cobra.Command{
		Use:     "show RETURN",
		Short:   "Show a return and its items",
		Example: `  posbridge returns show RET-1001`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			r, err := returns.Get(cmd.Context(), d, partner, args[0])
			if err != nil {
				return asNotFound(err, returns.ErrNotFound, "return", args[0], "returns list")
			}
			if out.value == "json" {
				return writeJSON(app.Out, returnJSON(r))
			}
			w := app.Out
			fmt.Fprintf(w, "return %s (%s), %s, %s, revision %d\n", r.Code, r.Partner, r.Status, r.OrderType, r.Revision)
			fmt.Fprintf(w, "forward order %s, location code %s, warehouse %s, channel %s, event %s\n",
				r.ForwardOrderCode, r.LocationCode, r.Warehouse, r.Channel, r.EventType)
			fmt.Fprintf(w, "awb %s, transporter %s, returned %s\n", r.AwbNumber, r.Transporter, r.ReturnTime)
			if r.CancelledAt != "" {
				fmt.Fprintf(w, "cancelled by the partner at %s\n", r.CancelledAt)
			}
			tab := newTable(w, "ITEM_CODE", "CHANNEL_SKU", "ITEM", "SKU", "QTY", "REASON", "QC", "QC_REASON", "RECEIVED", "LOCATION", "CANCELLED")
			for _, it := range r.Lines {
				tab.row(it.Code, it.ChannelSkuCode, it.Item, it.SKU, it.Quantity, it.Reason, it.QCStatus, it.QCReason, it.ReceivedAt, it.Location, it.CancelledAt)
			}
			tab.flush()
			return nil
		},
	}
	cmd.Flags().StringVar(&partner, "partner", "", "the partner of the return (when several have the code)")
	out.add(cmd, "text", "json")
	return cmd
}

func newReturnsReceiveCmd(app *App) *cobra.Command {
	var rc returns.Receipt
	cmd := &cobra.Command{
		Use:   "receive RETURN --item RETURN_ITEM_CODE --qc PASS|FAIL [--reason TEXT]",
		Short: "Record a returned item and its QC result; PASS raises stock",
		Long: `Record that a returned item arrived and its QC result, once per item. PASS
raises on hand of the item's SKU in the return's warehouse by its quantity
(an inventory transaction, code R, reference the return code: history, change
stamp, inventory trigger), in --location or else the SKU's stock row there
with the most on hand. FAIL records the result and changes no stock. Either
queues the result for 'export return-updates'. An item received before, an
unknown return or item, or a bad --qc: exit 2, nothing changed. A return or
item the partner cancelled (RETURN_ORDER_CANCEL): exit 1, nothing changed,
no stock raised.`,
		Example: `  posbridge returns receive RET-1001 --item RI-1 --qc PASS
  posbridge returns receive RET-1001 --item RI-2 --qc FAIL --reason "torn sole"`,
		Args: exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if rc.Item == "" {
				return usageErr("--item is required (the returnItemCode)")
			}
			switch rc.QC {
			case "PASS", "FAIL", "pass", "fail":
				return nil
			}
			return usageErr("--qc %q: want PASS or FAIL", rc.QC)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, d, err := app.ConfigDB(ctx)
			if err != nil {
				return err
			}
			rc.Return = args[0]
			rc.Stock = imports.Options{Codes: cfg.Import.TransactionCodes, AllowNegative: cfg.Import.AllowNegativeOnHand}
			var res returns.Received
			err = app.recordRun(ctx, d, "returns receive", false, func(int64) (any, bool, error) {
				var err error
				res, err = returns.Receive(ctx, d, rc)
				return res, false, err
			})
			if err != nil {
				return returnErr(err, rc.Return)
			}
			it := res.Item
			stock := "no stock change"
			if it.QCStatus == returns.QCPass {
				stock = fmt.Sprintf("+%d on hand of %s/%s in %s %s", it.Quantity, it.Item, it.SKU, res.Return.Warehouse, locName(it.Location))
			}
			fmt.Fprintf(app.Out, "return %s item %s: QC %s, %s; return %s; update %d queued\n",
				res.Return.Code, it.Code, it.QCStatus, stock, res.Status, res.Message)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rc.Item, "item", "", "the returnItemCode of the item")
	f.StringVar(&rc.QC, "qc", "", "the QC result: PASS or FAIL")
	f.StringVar(&rc.Reason, "reason", "", "the QC reason (qcReason)")
	f.StringVar(&rc.Location, "location", "", "the location a passed item goes to (default: the SKU's location with the most on hand)")
	f.StringVar(&rc.Partner, "partner", "", "the partner of the return (when several have the code)")
	return cmd
}

func locName(l string) string {
	if l == "" {
		return "(no location)"
	}
	return "location " + l
}
