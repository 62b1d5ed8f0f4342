package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/orders"
)

func newOrdersCmd(app *App) *cobra.Command {
	group := groupCmd("orders", "Online-store orders: list, show, cancel, complete",
		newOrdersListCmd(app), newOrdersShowCmd(app), newOrdersCancelCmd(app), newOrdersCompleteCmd(app))
	group.Long = `Orders imported from partners (posbridge import orders). Each open line holds its
open quantity (ordered - cancelled - fulfilled) reserved in the order's
warehouse; cancel releases it, complete ships it (on hand and reserved go
down). Every change queues an order event for 'export order-events' and the
order's status for 'export order-status'. ORDER is our order code (SO0000001)
or the partner's key (onlineReferenceNo). See docs/orders.md.`
	return group
}

// orderErr gives the errors of an order command their wording and exit
// code: an unknown order is not found, as for every show command, and a
// refused change (an order that is not open, more than is open) failed
// with nothing changed: both exit 1. Exit 2 is for a wrong command line.
func orderErr(err error, code string) error {
	switch {
	case errors.Is(err, orders.ErrNotFound):
		return notFound("order", code, "orders list")
	case errors.Is(err, orders.ErrRefused):
		return fmt.Errorf("%w; nothing changed", err)
	}
	return err
}

func newOrdersListCmd(app *App) *cobra.Command {
	var f orders.Filter
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List orders, oldest first",
		Long: `List orders, oldest first. --short lists the orders with an open quantity that
the warehouse's available stock did not cover when it was reserved: they
were accepted, and someone must find the stock.`,
		Example: `  posbridge orders list --short
  posbridge orders list --partner shop --status open --output csv`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch f.Status {
			case "", orders.StatusOpen, orders.StatusCompleted, orders.StatusCancelled:
			default:
				return usageErr("--status %q: want open, completed or cancelled", f.Status)
			}
			return app.knownPartner(f.Partner)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			w := app.newRecords(out.value, "order", "partner", "key", "status", "customer", "warehouse", "quantity", "short", "total", "order_time")
			err = orders.List(cmd.Context(), d, f, func(o orders.Order) error {
				return w.add(orderJSON(o), o.Code, o.Partner, o.ExternalKey, o.Status, o.Customer, o.Warehouse, o.TotalQuantity, o.Short,
					format.FormatAmount(o.TotalAmount), o.OrderTime)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	cmd.Flags().StringVar(&f.Partner, "partner", "", "only the orders of this partner")
	cmd.Flags().StringVar(&f.Status, "status", "", "only orders in this status: open, completed or cancelled")
	cmd.Flags().BoolVar(&f.Short, "short", false, "only orders short of stock")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

// orderJSON is an order as list and show write it in JSON: amounts and
// percentages as decimal numbers, as the table shows them.
func orderJSON(o orders.Order) map[string]any {
	m := map[string]any{"order": o.Code, "partner": o.Partner, "key": o.ExternalKey, "channel": o.Channel, "warehouse": o.Warehouse,
		"location_id": o.LocationID, "location_code": o.LocationCode, "customer": o.Customer, "status": o.Status, "online_status": orders.OnlineStatus(o.Status),
		"payment_method": o.PaymentMethod, "order_time": o.OrderTime, "customer_name": o.CustomerName,
		"customer_mobile": o.CustomerMobile, "customer_email": o.CustomerEmail, "shipping": o.Ship,
		"total_quantity": o.TotalQuantity, "total_amount": format.Amount(o.TotalAmount), "total_tax": format.Amount(o.TotalTax),
		"total_discount": format.Amount(o.TotalDiscount), "shipping_charge": format.Amount(o.ShippingCharge),
		"short": o.Short, "revision": o.Revision, "created_at": o.CreatedAt, "updated_at": o.UpdatedAt}
	if o.Lines != nil {
		lines := make([]map[string]any, len(o.Lines))
		for i, l := range o.Lines {
			lines[i] = map[string]any{"line": l.No, "item": l.Item, "sku": l.SKU, "ref_code": l.RefCode, "upc": l.UPC, "location": l.Location,
				"ordered": l.Ordered, "cancelled": l.Cancelled, "fulfilled": l.Fulfilled, "open": l.Open(), "short": l.Short,
				"sale_price": format.Amount(l.SalePrice), "item_amount": format.Amount(l.ItemAmount),
				"tax_percent": format.Amount(l.TaxPercent), "discount_percent": format.Amount(l.DiscountPercent)}
		}
		m["lines"] = lines
	}
	return m
}

func newOrdersShowCmd(app *App) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "show ORDER",
		Short:   "Show an order and its lines",
		Example: `  posbridge orders show SO0000001`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			o, err := orders.Get(cmd.Context(), d, args[0])
			if err != nil {
				return asNotFound(err, orders.ErrNotFound, "order", args[0], "orders list")
			}
			if out.value == "json" {
				return writeJSON(app.Out, orderJSON(o))
			}
			printOrder(app, o)
			return nil
		},
	}
	out.add(cmd, "text", "json")
	return cmd
}

func printOrder(app *App, o orders.Order) {
	w := app.Out
	fmt.Fprintf(w, "order %s (%s %s), %s, online %s\n", o.Code, o.Partner, o.ExternalKey, o.Status, orders.OnlineStatus(o.Status))
	warehouse := o.Warehouse
	if o.LocationID != "" {
		warehouse += " (locationId " + o.LocationID + ")"
	}
	fmt.Fprintf(w, "ordered %s, channel %s, warehouse %s, location code %s, payment %s, revision %d\n",
		o.OrderTime, o.Channel, warehouse, o.LocationCode, o.PaymentMethod, o.Revision)
	fmt.Fprintf(w, "customer %s: %s, %s, %s\n", o.Customer, o.CustomerName, o.CustomerMobile, o.CustomerEmail)
	fmt.Fprintf(w, "ship to %s, %s, %s, %s %s, %s\n", o.Ship.Name, strings.TrimSuffix(o.Ship.Address1+" "+o.Ship.Address2, " "),
		o.Ship.City, o.Ship.State, o.Ship.Zip, o.Ship.Country)
	fmt.Fprintf(w, "total %s (tax %s, discount %s, shipping %s), %d units, %d short\n", format.FormatAmount(o.TotalAmount),
		format.FormatAmount(o.TotalTax), format.FormatAmount(o.TotalDiscount), format.FormatAmount(o.ShippingCharge), o.TotalQuantity, o.Short)
	tab := newTable(w, "LINE", "ITEM", "SKU", "REF", "LOCATION", "ORDERED", "CANCELLED", "FULFILLED", "OPEN", "SHORT", "PRICE")
	for _, l := range o.Lines {
		tab.row(l.No, l.Item, l.SKU, l.RefCode, l.Location, l.Ordered, l.Cancelled, l.Fulfilled, l.Open(), l.Short, format.FormatAmount(l.SalePrice))
	}
	tab.flush()
}

func newOrdersCancelCmd(app *App) *cobra.Command {
	var line, qty int64
	cmd := &cobra.Command{
		Use:   "cancel ORDER",
		Short: "Cancel an order, or some units of one line",
		Long: `Cancel what is open of a whole order, or with --line of one line (--qty units of
it, default all it has open), releasing the reserved stock. More than the line
has open (ordered - cancelled - fulfilled) is refused: exit 2, nothing changed.
A whole order cancelled queues SUBORDER_CANCEL; a part, SUBORDER_PARTIAL_CANCEL.`,
		Example: `  posbridge orders cancel SO0000001
  posbridge orders cancel SO0000001 --line 2 --qty 1`,
		Args: exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("qty") && line == 0 {
				return usageErr("--qty needs --line")
			}
			if line < 0 || qty < 0 || (cmd.Flags().Changed("qty") && qty == 0) {
				return usageErr("--line and --qty must be above 0")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return orderChange(cmd, app, args[0], func(ctx context.Context, d *db.DB) (orders.Change, error) {
				return orders.Cancel(ctx, d, args[0], line, qty)
			}, "cancelled")
		},
	}
	cmd.Flags().Int64Var(&line, "line", 0, "cancel only this line")
	cmd.Flags().Int64Var(&qty, "qty", 0, "cancel this many units of the line (default: all it has open)")
	return cmd
}

func newOrdersCompleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "complete ORDER",
		Short: "Fulfil the open quantities of an order",
		Long: `Fulfil what is open of every line: the reserved stock is consumed (on hand and
reserved go down by it), the order becomes completed (Delivered online), and
SUBORDER_COMPLETE is queued. A line whose shipment would take on hand below
zero refuses the order (exit 1, nothing changed) unless
import.allow_negative_on_hand is true: cancel the part that is not in stock
(orders cancel ORDER --line N --qty Q) or receive it first.`,
		Example: `  posbridge orders complete SO0000001`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			return orderChange(cmd, app, args[0], func(ctx context.Context, d *db.DB) (orders.Change, error) {
				return orders.Complete(ctx, d, args[0], cfg.Import.AllowNegativeOnHand)
			}, "fulfilled")
		},
	}
}

func orderChange(cmd *cobra.Command, app *App, code string, change func(context.Context, *db.DB) (orders.Change, error), what string) error {
	ctx := cmd.Context()
	d, err := app.DB(ctx)
	if err != nil {
		return err
	}
	var ch orders.Change
	err = app.recordRun(ctx, d, cmd.CommandPath()[len("posbridge "):], false, func(int64) (any, bool, error) {
		var err error
		ch, err = change(ctx, d)
		return ch, false, err
	})
	if err != nil {
		return orderErr(err, code)
	}
	fmt.Fprintf(app.Out, "order %s: %d units %s; now %s; event %s\n", ch.Order.Code, ch.Quantity, what, ch.Order.Status, ch.Event)
	return nil
}
