package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/export"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// partnerOf checks that partner is configured with one of the profiles.
func partnerOf(cfg *config.Config, name string, profiles ...string) (partner.Profile, error) {
	if name == "" {
		return partner.Profile{}, usageErr("--partner is required")
	}
	p, err := cfg.Partner(name)
	if err != nil {
		return p, fmt.Errorf("%w: %w", errUsage, err)
	}
	if len(profiles) > 0 && !contains(profiles, p.Kind) {
		return p, usageErr("--partner %q has profile %s; this command is for profile %s", name, p.Kind, strings.Join(profiles, " or "))
	}
	return p, nil
}

// addPartnerFlag adds --partner to an import command: the name of a
// configured partner of one of profiles, checked (after the command's own
// checks) before it runs, into *p.
func addPartnerFlag(cmd *cobra.Command, app *App, p *partner.Profile, usage string, profiles ...string) {
	var name string
	cmd.Flags().StringVar(&name, "partner", "", usage)
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(c, args); err != nil {
				return err
			}
		}
		cfg, err := app.Config()
		if err != nil {
			return err
		}
		*p, err = partnerOf(cfg, name, profiles...)
		return err
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
				prefix := ""
				if o.DryRun {
					prefix = "dry run, nothing changed: "
				}
				app.logger().Info(fmt.Sprintf("%sorders %s: %d added, %d updated, %d unchanged, %d short of stock",
					prefix, path, st.Added, st.Updated, st.Unchanged, st.Short))
			}
			return res, err
		},
	})
	addPartnerFlag(cmd, app, &p, "the store-pos partner the orders come from (partners.NAME)", partner.StorePOS)
	cmd.Flags().MarkHidden("format") // always JSON
	return cmd
}

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

// orderErr gives the errors of an order command their exit code: an
// unknown order or a refused change is the operator's mistake (2).
func orderErr(err error) error {
	if errors.Is(err, orders.ErrNotFound) || errors.Is(err, orders.ErrRefused) {
		return fmt.Errorf("%w: %v; nothing changed", errUsage, err)
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
				return nil
			}
			return usageErr("--status %q: want open, completed or cancelled", f.Status)
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
			return orderChange(cmd, app, func(ctx context.Context, d *db.DB) (orders.Change, error) {
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
			return orderChange(cmd, app, func(ctx context.Context, d *db.DB) (orders.Change, error) {
				return orders.Complete(ctx, d, args[0], cfg.Import.AllowNegativeOnHand)
			}, "fulfilled")
		},
	}
}

func orderChange(cmd *cobra.Command, app *App, change func(context.Context, *db.DB) (orders.Change, error), what string) error {
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
		return orderErr(err)
	}
	fmt.Fprintf(app.Out, "order %s: %d units %s; now %s; event %s\n", ch.Order.Code, ch.Quantity, what, ch.Order.Status, ch.Event)
	return nil
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

// newExportOrdersCmd is export order-events or export order-status.
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
				MaxRecords: cfg.Export.MaxRecords, Marker: cfg.Export.Marker || o.marker, DryRun: o.dryRun}
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
				return res, res != nil && len(res.Held) > 0, err
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
	o.output.add(cmd, "text", "json")
	return cmd
}
