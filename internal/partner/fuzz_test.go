package partner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
)

// FuzzXref feeds cross reference files, CSV or Increff's listing JSON (the
// content decides), to xref load, each on a fresh copy of a state with
// four SKUs (IT1/A, B, C with UPCs 1, 2, 3; IT2 without SKUs). Whatever
// the input: no panic, and a failure is a failed file (ErrFile) that
// stores nothing; every mapping stored was added by the load (a rejected
// row stores nothing) and passes format.CheckText with its limits, its
// tolerance days in their range; no load names more warnings than
// warningsShown of a kind and a summary; and the same file loaded again
// adds, changes and deletes nothing (what is kept is what was read).
//
//	go test ./internal/partner -run '^$' -fuzz '^FuzzXref$' -fuzztime 30s
func FuzzXref(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "xref-*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"item,sku,external_code,serial,barcode,tolerance_days\nIT1,A,X1,S1,B1,7\nIT1,B,X2,,,\nIT2,,X3,,,0\n",
		"\xef\xbb\xbfITEM,Sku,External_Code,colour\r\nIT1,A,X1,red\r\nIT1,A,X2,\r\nIT1,B,X1,\r\n",
		"item,sku,external_code\nIT1,\"A\",\"X\n1\"\nIT9,Z,X4\nIT1,C,\n",
		`{"skuListings":[{"channelSkuCode":"X1","barcode":"1","toleranceDays":3},{"channelSkuCode":"X2","barcode":"2","channelSerialNo":null}],"channelName":"M"}`,
		`{"skuListings":[{"channelSkuCode":7,"barcode":"1"},{"channelSkuCode":"X\u0000","barcode":"2"},{"channelSkuCode":"X3","BARCODE":"3","barcode":"3"}],"x":1}`,
		"{\"skuListings\":[{\"channelSkuCode\":\"X\xff\",\"barcode\":\"1\",\"toleranceDays\":99999999999}]}",
	} {
		f.Add([]byte(s))
	}
	template := filepath.Join(f.TempDir(), "posbridge.db")
	if err := seedXref(template); err != nil {
		f.Fatal(err)
	}
	image, err := os.ReadFile(template)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "posbridge.db")
		if err := os.WriteFile(dbPath, image, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := db.Open(ctx, dbPath, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		path := filepath.Join(dir, "listing")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		o := LoadOptions{MaxFieldLength: 50}
		res, err := Load(ctx, d, "p", path, o)
		var stored []Mapping
		if lerr := List(ctx, d, "p", func(m Mapping) error { stored = append(stored, m); return nil }); lerr != nil {
			t.Fatal(lerr)
		}
		if err != nil {
			if !errors.Is(err, ErrFile) {
				t.Fatalf("load failed, not as a file: %v", err)
			}
			if len(stored) > 0 {
				t.Fatalf("a failed file stored %d mappings", len(stored))
			}
			return
		}
		if int64(len(stored)) != res.Added || res.Added+res.Rejected != res.Read {
			t.Fatalf("%d stored, but %+v", len(stored), res)
		}
		if len(res.Warnings) > 2*(warningsShown+1) {
			t.Fatalf("%d warnings: %q", len(res.Warnings), res.Warnings)
		}
		for _, m := range stored {
			for _, c := range []struct {
				name, v string
				max     int
			}{{"item", m.Item, codeMax["item"]}, {"sku", m.SKU, codeMax["sku"]}, {"external_code", m.ExternalCode, 50},
				{"serial", m.Serial, 50}, {"barcode", m.Barcode, 50}} {
				if err := format.CheckText(c.v, c.max); err != nil || (c.name == "external_code" && c.v == "") {
					t.Fatalf("stored %s %q: %v", c.name, c.v, err)
				}
			}
			if m.ToleranceDays != nil && (*m.ToleranceDays < 0 || *m.ToleranceDays > MaxToleranceDays) {
				t.Fatalf("stored tolerance days %d", *m.ToleranceDays)
			}
		}
		again, err := Load(ctx, d, "p", path, o)
		if err != nil {
			t.Fatalf("the same file again: %v", err)
		}
		if again.Added != 0 || again.Changed != 0 || again.Deleted != 0 || again.Unchanged != res.Added {
			t.Fatalf("the same file again: %+v after %+v: what was kept is not what was read", again, res)
		}
	})
}

// seedXref creates the database at path with the SKUs of FuzzXref.
func seedXref(path string) error {
	ctx := context.Background()
	d, err := db.Open(ctx, path, db.Options{Create: true})
	if err != nil {
		return err
	}
	items := filepath.Join(filepath.Dir(path), "items.csv")
	if err := os.WriteFile(items, []byte("item,sku,description,upc\nIT1,A,x,1\nIT1,B,x,2\nIT1,C,x,3\nIT2,,y,4\n"), 0o600); err != nil {
		return err
	}
	if _, err := catalog.Load(ctx, d, "items", items, catalog.Options{}); err != nil {
		d.Close()
		return fmt.Errorf("load items: %w", err)
	}
	return d.Close()
}
