package inquiry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// totals renders totals as "merchandise/discount/tax/freight=total".
func totals(t Totals) string {
	return fmt.Sprintf("%s/%s/%s/%s=%s", t.Merchandise, t.Discount, t.Tax, t.Freight, t.Total)
}

func TestHistory(t *testing.T) {
	d := demoDB(t)
	r, err := History(context.Background(), d, HistoryQuery{Customer: "100010", Detail: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Customer == nil || r.Customer.Customer != "100010" || len(r.Orders) != 1 {
		t.Fatalf("got %+v", r)
	}
	// testdata/demo/invoices.csv: invoice 10012 (EM customer, 30% off):
	// merchandise 447.00 + 139.98 + 238.50 + 44.00 = 869.48, discount
	// 134.10 + 41.99 + 71.55 + 13.20 = 260.84, tax 25.81 + 8.08 + 13.77 +
	// 2.54 = 50.20, total 658.84; credit 10017 -338.71 (README).
	o := r.Orders[0]
	if o.Order != "20012" || o.FirstDate != "2026-03-24" || o.LastDate != "2026-04-28" || len(o.Invoices) != 2 {
		t.Fatalf("order %+v", o)
	}
	if got := totals(o.Totals); got != "422.48/126.74/24.39/0.00=320.13" {
		t.Errorf("order totals %s", got)
	}
	if got := totals(o.Invoices[0].Totals); o.Invoices[0].Invoice != "10012" || o.Invoices[0].Type != "I" || got != "869.48/260.84/50.20/0.00=658.84" {
		t.Errorf("invoice %+v: %s", o.Invoices[0], got)
	}
	if got := totals(o.Invoices[1].Totals); o.Invoices[1].Invoice != "10017" || o.Invoices[1].Type != "C" || got != "-447.00/-134.10/-25.81/0.00=-338.71" {
		t.Errorf("credit %+v: %s", o.Invoices[1], got)
	}
	want := Line{Line: 1, Item: "IT0000008", SKU: "GRY-9", Quantity: -3, UnitPrice: 1490000, Extended: -4470000, Discount: -1341000, Tax: -258100}
	if len(o.Invoices[0].Lines) != 4 || len(o.Invoices[1].Lines) != 1 || o.Invoices[1].Lines[0] != want {
		t.Errorf("lines %+v %+v", o.Invoices[0].Lines, o.Invoices[1].Lines)
	}
	// Without Detail: the same totals, no lines.
	r, err = History(context.Background(), d, HistoryQuery{Customer: "100010"})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Orders[0]; totals(o.Totals) != "422.48/126.74/24.39/0.00=320.13" || o.Invoices[0].Lines != nil || o.Invoices[1].Lines != nil {
		t.Errorf("without detail: %+v", o)
	}
}

// Over every customer, the orders add up to the sums of the demo README:
// invoices 12865.90 / 318.44 / 1035.18 / 55.65 = 13638.29, credits
// -1200.85 / -156.60 / -86.15 / 0.00 = -1130.40.
func TestHistoryAddsUpToTheDemoSums(t *testing.T) {
	d := demoDB(t)
	rows, err := d.Query(`SELECT DISTINCT customer FROM invoices ORDER BY customer`)
	if err != nil {
		t.Fatal(err)
	}
	var customers []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		customers = append(customers, c)
	}
	rows.Close()
	var sum, invoices, credits Totals
	n := 0
	for _, c := range customers {
		r, err := History(context.Background(), d, HistoryQuery{Customer: c})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range r.Orders {
			sum.add(o.Totals)
			for _, inv := range o.Invoices {
				n++
				if inv.Type == "C" {
					credits.add(inv.Totals)
				} else {
					invoices.add(inv.Totals)
				}
			}
		}
	}
	if n != 40 || len(customers) != 35 {
		t.Errorf("%d invoices of %d customers, want 40 of 35", n, len(customers))
	}
	for _, c := range []struct{ name, got, want string }{
		{"invoices", totals(invoices), "12865.90/318.44/1035.18/55.65=13638.29"},
		{"credits", totals(credits), "-1200.85/-156.60/-86.15/0.00=-1130.40"},
		{"orders", totals(sum), "11665.05/161.84/949.03/55.65=12507.89"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
}

// Orders come newest first: by the last invoice date, then by order
// number descending; Orders keeps the newest, Order one.
func TestHistoryOrder(t *testing.T) {
	d := demoDB(t)
	loadCSV(t, d, "invoices", `invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price,discount,tax,freight
19001,29001,100010,I,2026-10-13,1,IT0000041,,1,14.95,4.49,0.86,7.95
19002,29002,100010,I,2026-10-13,1,IT0000008,GRY-9,1,149.00,44.70,8.60,0.00
19003,20012,100010,I,2026-02-01,1,IT0000041,,1,14.95,4.49,0.86,0.00
19004,29000,100010,I,2026-04-28,1,IT0000041,,1,14.95,4.49,0.86,0.00
`)
	ctx := context.Background()
	orders := func(q HistoryQuery) []string {
		r, err := History(ctx, d, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range r.Orders {
			var invs []string
			for _, inv := range o.Invoices {
				invs = append(invs, inv.Invoice)
			}
			out = append(out, fmt.Sprintf("%s %s..%s %s %s", o.Order, o.FirstDate, o.LastDate, strings.Join(invs, ","), totals(o.Totals)))
		}
		return out
	}
	// 29001: 14.95 - 4.49 + 0.86 + 7.95 = 19.27; 29002: 149.00 - 44.70 +
	// 8.60 = 112.90; 29000: 14.95 - 4.49 + 0.86 = 11.32; 20012 gains
	// 19003 (11.32, dated before 10012): 320.13 + 11.32 = 331.45.
	all := []string{
		"29002 2026-10-13..2026-10-13 19002 149.00/44.70/8.60/0.00=112.90",
		"29001 2026-10-13..2026-10-13 19001 14.95/4.49/0.86/7.95=19.27",
		"29000 2026-04-28..2026-04-28 19004 14.95/4.49/0.86/0.00=11.32",
		"20012 2026-02-01..2026-04-28 19003,10012,10017 437.43/131.23/25.25/0.00=331.45",
	}
	if got := orders(HistoryQuery{Customer: "100010"}); !reflect.DeepEqual(got, all) {
		t.Errorf("got\n%q\nwant\n%q", got, all)
	}
	if got := orders(HistoryQuery{Customer: "100010", Orders: 2}); !reflect.DeepEqual(got, all[:2]) {
		t.Errorf("newest 2: %q", got)
	}
	if got := orders(HistoryQuery{Customer: "100010", Order: "20012"}); !reflect.DeepEqual(got, all[3:]) {
		t.Errorf("order 20012: %q", got)
	}
	if got := orders(HistoryQuery{Customer: "100010", Order: "99999"}); got != nil {
		t.Errorf("unknown order: %q", got)
	}
	// A deleted invoice is not part of the history.
	exec(t, d, `UPDATE invoices SET deleted_at = '2026-11-01T00:00:00Z' WHERE invoice IN ('19002', '19003')`)
	if got := orders(HistoryQuery{Customer: "100010", Orders: 2}); len(got) != 2 || got[0] != all[1] || got[1] != all[2] {
		t.Errorf("without 19002: %q", got)
	}
}

func TestHistoryCustomer(t *testing.T) {
	d := demoDB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		q    HistoryQuery
		want string
	}{
		{HistoryQuery{AltCustomer: "S0001-001"}, "100002"},
		{HistoryQuery{AltCustomer: "s0001-001"}, "100002"},
		{HistoryQuery{AltCustomer: "S0001-00"}, ""},
		{HistoryQuery{Customer: "999999"}, ""},
		{HistoryQuery{Customer: "100001"}, "100001"}, // no invoices
	} {
		r, err := History(ctx, d, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if r.Customer != nil {
			got = r.Customer.Customer
		}
		if got != tc.want || r.Orders == nil {
			t.Errorf("%+v: customer %q, orders %v; want %q", tc.q, got, r.Orders, tc.want)
		}
	}
	r, err := History(ctx, d, HistoryQuery{AltCustomer: "S0001-001"})
	if err != nil || len(r.Orders) != 1 || r.Orders[0].Order != "20035" || r.Orders[0].Total != 0 {
		t.Errorf("100002 by alternate number: %+v %v", r, err)
	}
	// A deleted customer has no history; an alternate number of two
	// customers names neither.
	exec(t, d, `UPDATE customers SET deleted_at = '2026-01-01T00:00:00Z' WHERE customer = '100010'`)
	if r, err := History(ctx, d, HistoryQuery{Customer: "100010"}); err != nil || r.Customer != nil || len(r.Orders) != 0 {
		t.Errorf("deleted customer: %+v %v", r, err)
	}
	exec(t, d, `UPDATE customers SET alt_customer = 'S0001-001' WHERE customer = '100003'`)
	_, err = History(ctx, d, HistoryQuery{AltCustomer: "S0001-001"})
	if !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "more than one customer (100002, 100003, ...): give customer") {
		t.Errorf("shared alternate number: %v", err)
	}
}

func TestHistoryBadQueries(t *testing.T) {
	for _, tc := range []struct {
		q    HistoryQuery
		want string
	}{
		{HistoryQuery{}, "give one of customer or alt_customer"},
		{HistoryQuery{Customer: "1", AltCustomer: "2"}, "give only one of customer or alt_customer, not customer and alt_customer"},
		{HistoryQuery{Customer: "1", Orders: 3, Order: "5"}, "give orders or order, not both"},
		{HistoryQuery{Customer: "1", Orders: -1}, "orders -1: want 1 to 1000"},
		{HistoryQuery{Customer: "1", Orders: 1001}, "orders 1001: want 1 to 1000"},
	} {
		err := tc.q.Validate()
		if !errors.Is(err, ErrQuery) || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.q, err, tc.want)
		}
	}
}
