package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/partner"
)

// partnerRun runs the partner inventory export and returns the file's
// content ("" without a file) and the result.
func (f *fixture) partnerRun(p partner.Profile, full bool) (string, *PartnerResult) {
	f.t.Helper()
	res, err := PartnerInventory(context.Background(), f.d, p, full, Options{Outbox: filepath.Join(f.dir, "outbox"), LockDir: f.dir})
	if err != nil {
		f.t.Fatalf("PartnerInventory: %v", err)
	}
	if len(res.Files) == 0 {
		return "", res
	}
	b, err := os.ReadFile(res.Files[0].Path)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b), res
}

func (f *fixture) xref(partnerName, content string) {
	f.t.Helper()
	f.n++
	path := filepath.Join(f.dir, "xref"+string(rune('a'+f.n))+".csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	res, err := partner.Load(context.Background(), f.d, partnerName, path, partner.LoadOptions{})
	if err != nil || res.Rejected > 0 {
		f.t.Fatalf("xref load: %v, %+v", err, res)
	}
}

func TestPartnerInventoryExternalOMS(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nW1,One\nW2,Two\n")
	f.load("items", catalog.ModeDelta, "item,sku,description,upc,price\nIT1,S1,Mug,111,10.00\nIT1,S2,Mug,,10.00\nIT2,,Tape,222,3.50\n")
	// IT1/S1: 5 - 2 reserved + 4 in a second location; IT1/S2 oversold: 0;
	// W2 is not the partner's.
	f.load("inventory", catalog.ModeDelta, "item,sku,warehouse,location,on_hand,reserved\nIT1,S1,W1,A,5,2\nIT1,S1,W1,B,4,0\nIT1,S2,W1,A,1,3\nIT2,,W2,A,9,0\n")
	f.xref("p", "item,sku,external_code\nIT1,S1,X1\nIT2,,X2\n")
	p := partner.Profile{Name: "p", Kind: partner.ExternalOMS, SKUCode: "xref", Location: "L", Warehouse: "W1"}
	got, res := f.partnerRun(p, false)
	if want := `{"locationCode":"L","products":[{"channelSkuCode":"X1","quantity":7},{"channelSkuCode":"X2","quantity":0}]}` + "\n"; got != want {
		t.Errorf("first export:\n%s\nwant\n%s", got, want)
	}
	if res.Unmapped != 1 || res.UnmappedSample[0] != "IT1/S2: no external code for this partner (xref load)" {
		t.Errorf("unmapped: %d %v", res.Unmapped, res.UnmappedSample)
	}
	if got, _ := f.partnerRun(p, false); got != "" {
		t.Errorf("nothing changed, got %q", got)
	}
	// A change in W2 is not the partner's; a late mapping is.
	f.load("inventory", catalog.ModeDelta, "item,sku,warehouse,location,on_hand\nIT2,,W2,A,1\n")
	f.xref("p", "item,sku,external_code\nIT1,S2,X3\n")
	if got, _ := f.partnerRun(p, false); got != `{"locationCode":"L","products":[{"channelSkuCode":"X3","quantity":0}]}`+"\n" {
		t.Errorf("late mapping: %q", got)
	}
	// item and upc codes.
	for sku, want := range map[string]string{"item": `"IT1/S1"`, "upc": `"111"`} {
		q := p
		q.Name, q.SKUCode = "p"+sku, sku
		got, _ := f.partnerRun(q, true)
		if !strings.Contains(got, `{"channelSkuCode":`+want+`,"quantity":7}`) {
			t.Errorf("sku_code %s: %s", sku, got)
		}
	}
}

func TestPartnerBatches(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nW1,One\n")
	var items strings.Builder
	items.WriteString("item,sku,description\n")
	for i := 0; i < 2*PartnerBatch+1; i++ {
		fmt.Fprintf(&items, "IT1,S%04d,T\n", i)
	}
	f.load("items", catalog.ModeDelta, items.String())
	got, res := f.partnerRun(partner.Profile{Name: "b", Kind: partner.ExternalOMS, SKUCode: "item", Location: "L", Warehouse: "W1"}, false)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 3 || strings.Count(lines[0], "channelSkuCode") != PartnerBatch || strings.Count(lines[2], "channelSkuCode") != 1 {
		t.Errorf("%d lines for %d products", len(lines), res.Files[0].Records)
	}
}

func TestPartnerStorePOS(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nS1,Store\n")
	f.load("items", catalog.ModeDelta, "item,sku,description,sku_description,price\nIT1,S1,Mug,Red,10.00\nIT1,S2,Mug,Blue,\n")
	f.load("inventory", catalog.ModeDelta, "item,sku,warehouse,location,on_hand\nIT1,S1,S1,,3\n")
	f.xref("s", "item,sku,external_code\nIT1,S1,R1\nIT1,S2,R2\n")
	got, res := f.partnerRun(partner.Profile{Name: "s", Kind: partner.StorePOS, SKUCode: "xref", Location: "101", Warehouse: "S1"}, false)
	if !strings.HasPrefix(got, `[`+"\n"+`  {"itemId":"IT1","itemName":"Mug - Red","locationId":"101","stock":3,"mrp":10.00,"salePrice":10.00,"itemReferenceCode":"R1","taxPercentage":0,"discountPercentage":0,"itemTimeStamp":"`) ||
		!strings.HasSuffix(got, "Z\"}\n]\n") {
		t.Errorf("store list:\n%s", got)
	}
	if res.Unmapped != 1 || res.UnmappedSample[0] != "IT1/S2: no price" {
		t.Errorf("unmapped: %v", res.UnmappedSample)
	}
}

func TestPartnerWMS(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nS1,Store\n")
	f.load("items", catalog.ModeDelta, "item,sku,description,upc\nIT1,S1,Mug,111\nIT1,S2,Mug,222\n")
	// IT1/S1: 5 on hand over two locations, 2 reserved; IT1/S2 oversold:
	// sellable goes negative as Ongoing's does, available for sale not.
	f.load("inventory", catalog.ModeDelta, "item,sku,warehouse,location,on_hand,reserved\nIT1,S1,S1,A,3,2\nIT1,S1,S1,B,2,0\nIT1,S2,S1,A,1,3\n")
	got, _ := f.partnerRun(partner.Profile{Name: "w", Kind: partner.WMS, SKUCode: "upc", Warehouse: "S1", WarehouseID: 7}, false)
	want := "[\n" +
		`  {"articleNumber":"111","inventoryPerWarehouse":[{"warehouseId":7,"numberOfItems":5.0,"numberOfLockedItems":0.0,"sellableNumberOfItems":3.0,"availableForSaleNumberOfItems":3.0}]},` + "\n" +
		`  {"articleNumber":"222","inventoryPerWarehouse":[{"warehouseId":7,"numberOfItems":1.0,"numberOfLockedItems":0.0,"sellableNumberOfItems":-2.0,"availableForSaleNumberOfItems":0.0}]}` + "\n]\n"
	if got != want {
		t.Errorf("inventory per warehouse:\n%s\nwant\n%s", got, want)
	}
}

// TestPartnerDroppedCodes: a code the cross reference loses (deleted, or
// the SKU given another code) goes out once more with a zero, in the
// partner's shape, so that the partner stops selling what it was sent
// under it; then never again. A WMS partner gets 0.0 items.
func TestPartnerDroppedCodes(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nS1,Store\n")
	f.load("items", catalog.ModeDelta, "item,sku,description,upc\nIT1,S1,Mug,111\nIT1,S2,Mug,222\n")
	f.load("inventory", catalog.ModeDelta, "item,sku,warehouse,location,on_hand\nIT1,S1,S1,A,3\nIT1,S2,S1,A,4\n")
	f.xref("w", "item,sku,external_code\nIT1,S1,A-1\nIT1,S2,A-2\n")
	p := partner.Profile{Name: "w", Kind: partner.WMS, SKUCode: "xref", Warehouse: "S1", WarehouseID: 7}
	if got, _ := f.partnerRun(p, false); !strings.Contains(got, `"articleNumber":"A-1"`) {
		t.Fatalf("first export: %s", got)
	}
	if _, err := partner.Delete(context.Background(), f.d, "w", "IT1", "S1", ""); err != nil {
		t.Fatal(err)
	}
	f.xref("w", "item,sku,external_code\nIT1,S2,A-3\n")
	got, res := f.partnerRun(p, false)
	want := "[\n" +
		`  {"articleNumber":"A-3","inventoryPerWarehouse":[{"warehouseId":7,"numberOfItems":4.0,"numberOfLockedItems":0.0,"sellableNumberOfItems":4.0,"availableForSaleNumberOfItems":4.0}]},` + "\n" +
		`  {"articleNumber":"A-1","inventoryPerWarehouse":[{"warehouseId":7,"numberOfItems":0.0,"numberOfLockedItems":0.0,"sellableNumberOfItems":0.0,"availableForSaleNumberOfItems":0.0}]},` + "\n" +
		`  {"articleNumber":"A-2","inventoryPerWarehouse":[{"warehouseId":7,"numberOfItems":0.0,"numberOfLockedItems":0.0,"sellableNumberOfItems":0.0,"availableForSaleNumberOfItems":0.0}]}` + "\n]\n"
	if got != want || res.Files[0].Records != 3 {
		t.Errorf("after a delete and a new code (%d records):\n%s\nwant\n%s", res.Files[0].Records, got, want)
	}
	if got, _ := f.partnerRun(p, false); got != "" {
		t.Errorf("the zeros went out again: %s", got)
	}
}

// A partner that cannot have an inventory export is an invalid
// configuration, named by its key, before anything is written.
func TestCheckPartner(t *testing.T) {
	f := newFixture(t)
	f.load("warehouses", catalog.ModeDelta, "warehouse,name\nW1,One\n")
	for _, c := range []struct {
		p    partner.Profile
		want string
	}{
		{partner.Profile{Name: "o", Kind: partner.OMS, Location: "L", Warehouse: "W1"}, `partner o: profile "oms" has no inventory export`},
		{partner.Profile{Name: "e", Kind: partner.ExternalOMS, Warehouse: "W1"}, "partners.e.location: an inventory export needs it"},
		{partner.Profile{Name: "w", Kind: partner.WMS, Warehouse: "W1"}, "partners.w.warehouse_id is not set"},
		{partner.Profile{Name: "s", Kind: partner.StorePOS, Location: "101"}, "partners.s.warehouse is not set: an inventory export needs it"},
		{partner.Profile{Name: "s", Kind: partner.StorePOS, Location: "101", Warehouse: "W9"}, "warehouse W9 of partners.s is not loaded"},
	} {
		err := CheckPartner(context.Background(), f.d, c.p)
		if !errors.Is(err, partner.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want partner.ErrInvalid saying %q", c.p, err, c.want)
		}
		if _, err := PartnerInventory(context.Background(), f.d, c.p, false, Options{Outbox: filepath.Join(f.dir, "outbox"), LockDir: f.dir}); !errors.Is(err, partner.ErrInvalid) {
			t.Errorf("PartnerInventory %+v: %v, want the check's error", c.p, err)
		}
	}
	if err := CheckPartner(context.Background(), f.d, partner.Profile{Name: "w", Kind: partner.WMS, Warehouse: "W1", WarehouseID: 7}); err != nil {
		t.Errorf("a ready partner: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "outbox")); !os.IsNotExist(err) {
		t.Errorf("the outbox was made: %v", err)
	}
}
