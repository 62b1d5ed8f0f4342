package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/inquiry"
	"github.com/posbridge/posbridge/internal/job"
)

func newInquireCmd(app *App) *cobra.Command {
	var requests, responses string
	group := groupCmd("inquire", "Answer a store's questions: stock by warehouse, customer search, order history",
		newInquireInventoryCmd(app), newInquireCustomerCmd(app), newInquireHistoryCmd(app))
	group.Use = "inquire [--requests DIR --responses DIR]"
	group.Long = `Answer the questions a store asks the OMS from the state: the stock of an item
or SKU in each warehouse (inventory), who a customer is (customer, page by
page), and what a customer has ordered (history). Each reads through indexes
and changes nothing.

With --requests DIR, answer every inquiry request file of the folder with a
response file in --responses DIR instead (the drop-folder form, for jobs).

A query that cannot be asked (no selector, two selectors, a value out of
range, a page cursor of another search) exits 2; finding nothing is not an
error: the answer is empty, the exit code 0, and stderr says so.
See docs/inquiries.md.`
	group.Example += "\n  posbridge inquire --requests /srv/drop/requests --responses /srv/drop/responses"
	group.RunE = func(cmd *cobra.Command, args []string) error {
		if requests == "" {
			if responses != "" {
				return usageErr("--responses needs --requests (see '%s --help')", cmd.CommandPath())
			}
			return usageErr("%s needs a subcommand, or --requests DIR (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
		}
		return runInquireRequests(cmd, app, requests, responses)
	}
	group.Flags().StringVar(&requests, "requests", "", "answer every request file of this folder")
	group.Flags().StringVar(&responses, "responses", "", "write the response files into this folder")
	// A step answers the requests of a folder (its subcommands answer a
	// person): it locks that folder.
	app.declareStep(group, func([]string) (job.Command, error) { return job.Command{Locks: folderLocks(requests)}, nil })
	return group
}

// flagName names a query input as its flag: retail_ref is --retail-ref.
func flagName(input string) string { return "--" + strings.ReplaceAll(input, "_", "-") }

// inquiryErr turns a query that cannot be asked into a usage error that
// names the flags at fault.
func inquiryErr(err error) error {
	var qe *inquiry.QueryError
	if errors.As(err, &qe) {
		return usageErr("%s", qe.Message(flagName))
	}
	return err
}

// sizeFlag checks a page or history size given on the command line: the
// inquiry package reads 0 as "the default", a flag given as 0 is a
// mistake.
func sizeFlag(cmd *cobra.Command, name string, v, max int) error {
	if cmd.Flags().Changed(name) && (v < 1 || v > max) {
		return usageErr("--%s %d: want 1 to %d", name, v, max)
	}
	return nil
}

// given lists the flags of names that were given as they would be typed.
func given(cmd *cobra.Command, names ...string) string {
	var parts []string
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			parts = append(parts, "--"+n+" "+shellQuote(f.Value.String()))
		}
	}
	return strings.Join(parts, " ")
}

// shellQuote puts v in single quotes when a shell would need them. The
// log's own quoting would turn double quotes into \".
func shellQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t'\"\\$`&|;<>()*?[]#~!{}") {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

func newInquireInventoryCmd(app *App) *cobra.Command {
	var q inquiry.InventoryQuery
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "inventory (--item ITEM [--sku SKU] | --upc UPC | --retail-ref REF)",
		Short: "Stock of an item or SKU in each warehouse",
		Long: `Show the stock of the live SKUs of an item (or one SKU of it), or of the SKU of
a UPC or retail reference number, in each warehouse that holds it: on hand,
reserved, available (on hand - reserved) and backordered, summed over the
locations, with a TOTAL over the warehouses shown; and the item's description
and the SKU's attributes (colour, size, width, UPC, retail reference, price).

--warehouse shows one warehouse (with zeros when it holds none of the SKU);
--exclude-non-allocatable leaves out warehouses that are not allocatable
(a returns centre). --output xml writes the InventoryInquiry document of
docs/schemas/inventory_inquiry.xsd.`,
		Example: `  posbridge inquire inventory --item IT0000001
  posbridge inquire inventory --item IT0000001 --sku BLK-8 --warehouse S01
  posbridge inquire inventory --upc 019876000205 --exclude-non-allocatable
  posbridge inquire inventory --retail-ref 30000001 --output xml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := q.Validate(); err != nil {
				return inquiryErr(err)
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			res, err := inquiry.Inventory(cmd.Context(), d, q)
			if err != nil {
				return inquiryErr(err)
			}
			if len(res.SKUs) == 0 {
				app.logger().Info("no item or SKU found for " + given(cmd, "item", "sku", "upc", "retail-ref"))
			}
			switch out.value {
			case "json":
				return writeJSON(app.Out, res)
			case "xml":
				return inquiry.WriteInventoryXML(app.Out, res)
			}
			return writeInventoryTable(app.Out, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Item, "item", "", "item number: all its SKUs")
	f.StringVar(&q.SKU, "sku", "", "SKU code within --item (exactly as stored: BLK-8, \"NVY  S\")")
	f.StringVar(&q.UPC, "upc", "", "UPC of the SKU")
	f.StringVar(&q.RetailRef, "retail-ref", "", "retail reference number of the SKU")
	f.StringVar(&q.Warehouse, "warehouse", "", "only this warehouse")
	f.BoolVar(&q.ExcludeNonAllocatable, "exclude-non-allocatable", false, "leave out warehouses that are not allocatable")
	out.add(cmd, "table", "json", "xml")
	return cmd
}

// writeInventoryTable writes one block per SKU: the item and SKU, their
// attributes, then a table of the warehouses with a TOTAL row.
func writeInventoryTable(w io.Writer, res *inquiry.InventoryResult) error {
	for i, k := range res.SKUs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		title := k.Item
		if k.SKU != "" {
			title += " " + k.SKU
		}
		desc := k.ItemDescription
		if k.SKUDescription != "" {
			desc += " (" + k.SKUDescription + ")"
		}
		fmt.Fprintf(w, "%s: %s\n", title, desc)
		var attrs []string
		for _, a := range [][2]string{{"class", k.ItemClass}, {"vendor", k.Vendor}, {"status", k.Status}, {"color", k.Color},
			{"size", k.Size}, {"width", k.Width}, {"upc", k.UPC}, {"retail ref", k.RetailRef}} {
			if a[1] != "" {
				attrs = append(attrs, a[0]+" "+a[1])
			}
		}
		if k.Price != nil {
			attrs = append(attrs, "price "+k.Price.String())
		}
		if len(attrs) > 0 {
			fmt.Fprintln(w, strings.Join(attrs, "  "))
		}
		tab := newTable(w, "WAREHOUSE", "NAME", "ALLOCATABLE", "ON HAND", "RESERVED", "AVAILABLE", "BACKORDERED")
		for _, s := range k.Warehouses {
			tab.row(s.Warehouse, s.Name, format.FormatFlag(s.Allocatable), s.OnHand, s.Reserved, s.Available, s.Backordered)
		}
		t := k.Total
		tab.row("TOTAL", "", "", t.OnHand, t.Reserved, t.Available, t.Backordered)
		if err := tab.flush(); err != nil {
			return err
		}
	}
	return nil
}

func newInquireCustomerCmd(app *App) *cobra.Command {
	var values = map[string]*string{}
	var exact bool
	var limit int
	var after string
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "customer (--customer N | --alt-customer A | --last-name L [--first-name F] | --postal-code P | --email E | --phone T | --company C)",
		Short: "Search sold-to customers, page by page",
		Long: `Search the sold-to customers by one field: the start of the field matches,
without regard to case (A-Z; other letters match as stored), or the whole
field with --exact. A phone matches by its digits: "(303) 555-0101" finds
303-555-0101. A customer number always matches exactly and finds one
customer. Deleted customers are never shown.

Customers come in ascending order of the search field (names: last name,
then first name), then of customer number, --limit (1 to 1000) at a time.
When more match, the table ends with the line "next page: --after CURSOR"
(JSON: "next"; CSV: a message on stderr); give the same search with
--after CURSOR for the next page, which starts where this one ended even
when customers were added or changed meanwhile.`,
		Example: `  posbridge inquire customer --last-name smi
  posbridge inquire customer --last-name Garcia --first-name ren --limit 10
  posbridge inquire customer --phone "(303) 555-8518"
  posbridge inquire customer --email zoe.orsted@example.net --exact --output json
  posbridge inquire customer --postal-code 803 --after eyJ...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := map[string]string{}
			for k, v := range values {
				in[k] = *v
			}
			q, err := inquiry.NewCustomerQuery(in)
			if err != nil {
				return inquiryErr(err)
			}
			if err := sizeFlag(cmd, "limit", limit, inquiry.MaxLimit); err != nil {
				return err
			}
			q.Exact, q.Limit, q.After = exact, limit, after
			if err := q.Validate(); err != nil {
				return inquiryErr(err)
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			page, err := inquiry.SearchCustomers(cmd.Context(), d, q)
			if err != nil {
				return inquiryErr(err)
			}
			if len(page.Customers) == 0 {
				what := "no customer matches "
				if after != "" {
					what = "no more customers match "
				}
				app.logger().Info(what + given(cmd, append(flagNames(inquiry.SearchInputs), "first-name")...))
			}
			if out.value == "json" {
				return writeJSON(app.Out, page)
			}
			w := app.newRecords(out.value, customerHeader(out.value)...)
			for _, c := range page.Customers {
				if err := w.add(c, customerCells(out.value, c)...); err != nil {
					return err
				}
			}
			if err := w.close(); err != nil {
				return err
			}
			if page.Next != "" {
				if out.value == "table" {
					fmt.Fprintf(app.Out, "\nnext page: --after %s\n", page.Next)
				} else {
					app.logger().Info("more customers match; next page: --after " + page.Next)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	for _, in := range append(append([]string(nil), inquiry.SearchInputs...), "first_name") {
		values[in] = f.String(strings.ReplaceAll(in, "_", "-"), "", customerFlagUsage[in])
	}
	f.BoolVar(&exact, "exact", false, "match the whole field, not its start")
	f.IntVar(&limit, "limit", inquiry.DefaultLimit, fmt.Sprintf("customers per page, 1 to %d", inquiry.MaxLimit))
	f.StringVar(&after, "after", "", "the cursor a page printed: continue after it")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

var customerFlagUsage = map[string]string{
	"customer":     "customer number (exact)",
	"alt_customer": "alternate (store) customer number",
	"last_name":    "last name",
	"first_name":   "first name, within --last-name",
	"postal_code":  "postal code",
	"email":        "email address",
	"phone":        "phone number (its digits are compared)",
	"company":      "company name",
}

func flagNames(inputs []string) []string {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		out[i] = strings.TrimPrefix(flagName(in), "--")
	}
	return out
}

// customerHeader: the table shows the main fields, CSV every field.
func customerHeader(form string) []string {
	if form == "csv" {
		return []string{"customer", "alt_customer", "customer_class", "first_name", "last_name", "company_name", "address1",
			"address2", "city", "state", "postal_code", "country", "email", "phone", "email_opt_in"}
	}
	return []string{"customer", "alt", "class", "last_name", "first_name", "company", "address", "city", "state",
		"postal_code", "phone", "email"}
}

func customerCells(form string, c inquiry.Customer) []any {
	if form == "csv" {
		return []any{c.Customer, c.AltCustomer, c.CustomerClass, c.FirstName, c.LastName, c.CompanyName, c.Address1,
			c.Address2, c.City, c.State, c.PostalCode, c.Country, c.Email, c.Phone, format.FormatFlag(c.EmailOptIn)}
	}
	addr := c.Address1
	if c.Address2 != "" {
		addr += ", " + c.Address2
	}
	return []any{c.Customer, c.AltCustomer, c.CustomerClass, c.LastName, c.FirstName, c.CompanyName, addr, c.City, c.State,
		c.PostalCode, c.Phone, c.Email}
}

func newInquireHistoryCmd(app *App) *cobra.Command {
	var q inquiry.HistoryQuery
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "history (--customer N | --alt-customer A) [--orders N | --order O] [--detail]",
		Short: "A customer's orders from its invoices, newest first",
		Long: `Show a customer's orders as its invoices show them, newest first (by the
date of the last invoice, then order number): the dates of the first and last
invoice and the totals (merchandise, discount, tax, freight, total), where a
credit counts negative. --orders keeps the newest N (default 10, at most
1000), --order shows one order; --detail adds each invoice and its lines.

The customer is named by number or by alternate (store) number, which is
compared without regard to case.`,
		Example: `  posbridge inquire history --customer 100010
  posbridge inquire history --alt-customer S0001-001 --orders 3
  posbridge inquire history --customer 100002 --order 20035 --detail
  posbridge inquire history --customer 100010 --detail --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sizeFlag(cmd, "orders", q.Orders, inquiry.MaxOrders); err != nil {
				return err
			}
			if !cmd.Flags().Changed("orders") {
				q.Orders = 0
			}
			if err := q.Validate(); err != nil {
				return inquiryErr(err)
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			res, err := inquiry.History(cmd.Context(), d, q)
			if err != nil {
				return inquiryErr(err)
			}
			switch {
			case res.Customer == nil:
				app.logger().Info("no customer found for " + given(cmd, "customer", "alt-customer"))
			case len(res.Orders) == 0 && q.Order != "":
				app.logger().Info(fmt.Sprintf("customer %s has no invoices of order %s", res.Customer.Customer, shellQuote(q.Order)))
			case len(res.Orders) == 0:
				app.logger().Info(fmt.Sprintf("customer %s has no invoices", res.Customer.Customer))
			}
			if out.value == "json" {
				return writeJSON(app.Out, res)
			}
			return writeHistoryTable(app.Out, res, q.Detail)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Customer, "customer", "", "customer number")
	f.StringVar(&q.AltCustomer, "alt-customer", "", "alternate (store) customer number")
	f.IntVar(&q.Orders, "orders", inquiry.DefaultOrders, fmt.Sprintf("the newest N orders, 1 to %d", inquiry.MaxOrders))
	f.StringVar(&q.Order, "order", "", "only this order")
	f.BoolVar(&q.Detail, "detail", false, "each invoice and its lines")
	out.add(cmd, "table", "json")
	return cmd
}

// writeHistoryTable writes the customer, one row per order with its
// totals, and with detail each order's invoices and their lines.
func writeHistoryTable(w io.Writer, res *inquiry.HistoryResult, detail bool) error {
	c := res.Customer
	if c == nil {
		return nil
	}
	name := strings.TrimSpace(c.FirstName + " " + c.LastName)
	if c.CompanyName != "" {
		if name != "" {
			name += ", "
		}
		name += c.CompanyName
	}
	alt := ""
	if c.AltCustomer != "" {
		alt = " (alt " + c.AltCustomer + ")"
	}
	fmt.Fprintf(w, "customer %s%s: %s, %s, %s %s %s\n\n", c.Customer, alt, name, c.Address1, c.City, c.State, c.PostalCode)
	amounts := func(t inquiry.Totals) []any {
		return []any{t.Merchandise, t.Discount, t.Tax, t.Freight, t.Total}
	}
	tab := newTable(w, "ORDER", "FIRST DATE", "LAST DATE", "INVOICES", "MERCHANDISE", "DISCOUNT", "TAX", "FREIGHT", "TOTAL")
	for _, o := range res.Orders {
		tab.row(append([]any{o.Order, o.FirstDate, o.LastDate, len(o.Invoices)}, amounts(o.Totals)...)...)
	}
	if err := tab.flush(); err != nil || !detail {
		return err
	}
	for _, o := range res.Orders {
		fmt.Fprintf(w, "\norder %s\n", o.Order)
		inv := newTable(w, "  INVOICE", "TYPE", "DATE", "MERCHANDISE", "DISCOUNT", "TAX", "FREIGHT", "TOTAL")
		for _, v := range o.Invoices {
			inv.row(append([]any{"  " + v.Invoice, v.Type, v.Date}, amounts(v.Totals)...)...)
		}
		if err := inv.flush(); err != nil {
			return err
		}
		lines := newTable(w, "  INVOICE", "LINE", "ITEM", "SKU", "QUANTITY", "UNIT PRICE", "EXTENDED", "DISCOUNT", "TAX")
		for _, v := range o.Invoices {
			for _, l := range v.Lines {
				lines.row("  "+v.Invoice, l.Line, l.Item, l.SKU, l.Quantity, l.UnitPrice, l.Extended, l.Discount, l.Tax)
			}
		}
		if err := lines.flush(); err != nil {
			return err
		}
	}
	return nil
}

// requestsResult is what a run of inquire --requests records and prints.
type requestsResult struct {
	Answered int               `json:"answered"`
	NotFound int               `json:"not_found"`
	Errors   int               `json:"errors"`
	Waiting  int               `json:"waiting"`
	Files    []inquiry.Outcome `json:"files"`
}

// runInquireRequests answers every request file of the folder requests
// with a response file in responses (posbridge inquire --requests DIR
// --responses DIR). A request that is malformed gets an error response
// and makes the run exit 3, like rejected records.
func runInquireRequests(cmd *cobra.Command, app *App, requests, responses string) error {
	ctx := cmd.Context()
	if responses == "" {
		return usageErr("inquire --requests needs --responses: the folder the response files go to")
	}
	cfg, d, err := app.ConfigDB(ctx)
	if err != nil {
		return err
	}
	o := inquiry.RequestOptions{Responses: responses, Folders: app.settling(ctx, cfg, d),
		Source: cfg.Export.Source, Company: cfg.Company.Number}
	res := &requestsResult{Files: []inquiry.Outcome{}}
	log := app.logger()
	err = app.recordRun(ctx, d, "inquire requests", false, func(id int64) (any, bool, error) {
		o.RunID = id
		err := inquiry.AnswerFolder(ctx, d, requests, o, func(out inquiry.Outcome) {
			res.Files = append(res.Files, out)
			switch {
			case out.Waiting:
				res.Waiting++
				log.Info(fmt.Sprintf("%s: left for the next run: changed less than %s ago (import.min_age)", out.Request, cfg.Import.MinAge))
				return
			case out.Status == inquiry.StatusError:
				res.Errors++
				log.Error(fmt.Sprintf("%s: %s; error response %s, request moved to %s", out.Request, out.Error, out.Response, out.MovedTo))
			case out.Status == inquiry.StatusNotFound:
				res.NotFound++
			default:
				res.Answered++
			}
			fmt.Fprintf(app.Out, "%s: %s %s, %d records -> %s\n", out.Request, out.Type, out.Status, out.Records, out.Response)
		})
		return res, res.Errors > 0, err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "inquire requests %s: %d answered, %d not found, %d errors, %d waiting\n",
		requests, res.Answered, res.NotFound, res.Errors, res.Waiting)
	if res.Errors > 0 {
		return fmt.Errorf("%d request file(s) were malformed; their responses say why: %w", res.Errors, errRejected)
	}
	return nil
}
