package inquiry

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// stockLines renders the SKUs of a result as "ITEM/SKU WH:onhand/reserved/available/backordered ... =totals".
func stockLines(r *InventoryResult) []string {
	var out []string
	for _, k := range r.SKUs {
		s := k.Item + "/" + k.SKU
		for _, w := range k.Warehouses {
			s += fmt.Sprintf(" %s:%d/%d/%d/%d", w.Warehouse, w.OnHand, w.Reserved, w.Available, w.Backordered)
		}
		t := k.Total
		out = append(out, s+fmt.Sprintf(" =%d/%d/%d/%d", t.OnHand, t.Reserved, t.Available, t.Backordered))
	}
	return out
}

func TestInventory(t *testing.T) {
	d := demoDB(t)
	// testdata/demo/README.md: IT0000001 BLK-8 is in DC1 (62 on hand, 17
	// reserved), DC2 (228, 0) and S01 (3, 0). BLU-9 (SKU row 5) is in RET.
	blk8 := "IT0000001/BLK-8 DC1:62/17/45/0 DC2:228/0/228/0 S01:3/0/3/0 =293/17/276/0"
	for _, tc := range []struct {
		name string
		q    InventoryQuery
		want []string
	}{
		{"item and sku", InventoryQuery{Item: "IT0000001", SKU: "BLK-8"}, []string{blk8}},
		{"upc", InventoryQuery{UPC: "019876000205"}, []string{blk8}},
		{"retail ref", InventoryQuery{RetailRef: "30000001"}, []string{blk8}},
		{"one warehouse", InventoryQuery{Item: "IT0000001", SKU: "BLK-8", Warehouse: "S01"}, []string{"IT0000001/BLK-8 S01:3/0/3/0 =3/0/3/0"}},
		{"a warehouse without stock shows zeros", InventoryQuery{Item: "IT0000001", SKU: "BLK-8", Warehouse: "S02"},
			[]string{"IT0000001/BLK-8 S02:0/0/0/0 =0/0/0/0"}},
		{"with the returns centre", InventoryQuery{Item: "IT0000001", SKU: "BLU-9"},
			[]string{"IT0000001/BLU-9 DC1:48/0/48/0 RET:3/1/2/0 =51/1/50/0"}},
		{"exclude non-allocatable", InventoryQuery{Item: "IT0000001", SKU: "BLU-9", ExcludeNonAllocatable: true},
			[]string{"IT0000001/BLU-9 DC1:48/0/48/0 =48/0/48/0"}},
		{"the non-allocatable warehouse excluded", InventoryQuery{Item: "IT0000001", SKU: "BLU-9", Warehouse: "RET", ExcludeNonAllocatable: true},
			[]string{"IT0000001/BLU-9 =0/0/0/0"}},
		{"sku code with inner spaces", InventoryQuery{Item: "IT0000014", SKU: "NVY  S"},
			[]string{"IT0000014/NVY  S DC1:224/0/224/0 DC2:190/0/190/0 =414/0/414/0"}},
		{"trimmed sku code is another SKU", InventoryQuery{Item: "IT0000014", SKU: "NVY S"}, nil},
		{"not stocked anywhere", InventoryQuery{Item: "IT0000047"}, []string{"IT0000047/ =0/0/0/0"}},
		{"unknown item", InventoryQuery{Item: "IT9999999"}, nil},
		{"unknown upc", InventoryQuery{UPC: "000000000000"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Inventory(context.Background(), d, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if r.SKUs == nil {
				t.Error("SKUs is nil, want an empty list")
			}
			if got := stockLines(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestInventoryItem(t *testing.T) {
	d := demoDB(t)
	r, err := Inventory(context.Background(), d, InventoryQuery{Item: "IT0000001"})
	if err != nil {
		t.Fatal(err)
	}
	var skus []string
	for _, k := range r.SKUs {
		skus = append(skus, k.SKU)
	}
	// Key order; ORG-11 is not stocked anywhere but is a SKU of the item.
	want := "BLK-10 BLK-11 BLK-8 BLK-9 BLU-10 BLU-11 BLU-8 BLU-9 ORG-10 ORG-11 ORG-8 ORG-9"
	if got := strings.Join(skus, " "); got != want {
		t.Errorf("SKUs %s, want %s", got, want)
	}
	k := r.SKUs[2]
	if k.ItemDescription != `Trail Runner 2, "Storm" edition` || k.SKUDescription != "Black / 8" || k.ItemClass != "FTW" ||
		k.Vendor != "V00003" || k.Status != "A" || k.Color != "BLK" || k.Size != "8" || k.Width != "M" ||
		k.UPC != "019876000205" || k.RetailRef != "30000001" || k.Price == nil || *k.Price != 1299900 {
		t.Errorf("attributes of BLK-8: %+v", k)
	}
}

// Stock is summed over locations; backordered is summed too.
func TestInventoryLocations(t *testing.T) {
	d := demoDB(t)
	exec(t, d, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, backordered, updated_at)
VALUES ('IT0000001', 'BLK-8', 'DC1', 'Z99-99', 10, 4, 2, '2026-01-01T00:00:00Z')`)
	exec(t, d, `UPDATE inventory SET backordered = 5 WHERE item = 'IT0000001' AND sku = 'BLK-8' AND warehouse = 'S01'`)
	r, err := Inventory(context.Background(), d, InventoryQuery{Item: "IT0000001", SKU: "BLK-8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IT0000001/BLK-8 DC1:72/21/51/2 DC2:228/0/228/0 S01:3/0/3/5 =303/21/282/7"}
	if got := stockLines(r); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Deleted SKUs and items (tombstones) are not inquired.
func TestInventoryDeleted(t *testing.T) {
	d := demoDB(t)
	exec(t, d, `UPDATE skus SET deleted_at = '2026-01-01T00:00:00Z' WHERE item = 'IT0000001' AND sku = 'BLK-8'`)
	exec(t, d, `UPDATE items SET deleted_at = '2026-01-01T00:00:00Z' WHERE item = 'IT0000014'`)
	for _, q := range []InventoryQuery{{Item: "IT0000001", SKU: "BLK-8"}, {UPC: "019876000205"}, {RetailRef: "30000001"},
		{Item: "IT0000014"}, {UPC: "062840002842"}} {
		r, err := Inventory(context.Background(), d, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.SKUs) != 0 {
			t.Errorf("%+v: found %q", q, stockLines(r))
		}
	}
	r, err := Inventory(context.Background(), d, InventoryQuery{Item: "IT0000001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.SKUs) != 11 {
		t.Errorf("IT0000001 without BLK-8: %d SKUs, want 11", len(r.SKUs))
	}
}

func TestInventoryBadQueries(t *testing.T) {
	d := demoDB(t)
	for _, tc := range []struct {
		q    InventoryQuery
		want string
	}{
		{InventoryQuery{}, "give one of item, upc or retail_ref"},
		{InventoryQuery{Warehouse: "DC1"}, "give one of item, upc or retail_ref"},
		{InventoryQuery{Item: "IT0000001", UPC: "019876000205"}, "give only one of item, upc or retail_ref, not item and upc"},
		{InventoryQuery{UPC: "1", RetailRef: "2"}, "give only one of item, upc or retail_ref, not upc and retail_ref"},
		{InventoryQuery{SKU: "BLK-8"}, "sku needs item"},
		{InventoryQuery{SKU: "BLK-8", UPC: "019876000205"}, "sku needs item"},
		{InventoryQuery{Item: "IT0000001", Warehouse: "XX"}, `warehouse "XX": no such warehouse`},
	} {
		_, err := Inventory(context.Background(), d, tc.q)
		var qe *QueryError
		if !errors.Is(err, ErrQuery) || !errors.As(err, &qe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an ErrQuery containing %q", tc.q, err, tc.want)
		}
	}
	// The fields at fault are named the way the caller names them.
	err := InventoryQuery{SKU: "BLK-8"}.Validate()
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Fatalf("%v is not a *QueryError", err)
	}
	got := qe.Message(func(f string) string { return "--" + strings.ReplaceAll(f, "_", "-") })
	if !strings.HasPrefix(got, "--sku needs --item") || !reflect.DeepEqual(qe.Fields, []string{"sku", "item"}) {
		t.Errorf("message %q, fields %q", got, qe.Fields)
	}
}

func TestInventoryXML(t *testing.T) {
	d := demoDB(t)
	r, err := Inventory(context.Background(), d, InventoryQuery{Item: "IT0000001", SKU: "BLU-9"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteInventoryXML(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc xmlInventory
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Count != 1 || len(doc.SKUs) != 1 || doc.Item != "IT0000001" || doc.SKU != "BLU-9" || doc.ExcludeNonAllocatable != "N" {
		t.Fatalf("document %+v", doc)
	}
	k := doc.SKUs[0]
	if k.Price != "129.99" || k.Description != `Trail Runner 2, "Storm" edition` || len(k.Warehouses) != 2 ||
		k.Warehouses[1] != (XMLWarehouse{"RET", "Returns Center", "N", XMLStockNumbers{3, 1, 2, 0}}) ||
		k.Total != (XMLStockNumbers{51, 1, 50, 0}) {
		t.Errorf("SKU %+v", k)
	}
}
