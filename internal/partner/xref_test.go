package partner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

func fixture(t *testing.T) (*db.DB, string) {
	t.Helper()
	dir := t.TempDir()
	d := dbtest.Open(t)
	items := filepath.Join(dir, "items.csv")
	os.WriteFile(items, []byte("item,sku,description\nIT1,A,x\nIT1,B,x\nIT1,C,x\nIT2,,y\n"), 0o600)
	if _, err := catalog.Load(context.Background(), d, "items", items, catalog.Options{}); err != nil {
		t.Fatal(err)
	}
	return d, dir
}

func load(t *testing.T, d *db.DB, dir, mode, content string) (*LoadResult, string) {
	t.Helper()
	path := filepath.Join(dir, "x.csv")
	os.WriteFile(path, []byte(content), 0o600)
	res, err := Load(context.Background(), d, "p", path, LoadOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	rej, _ := os.ReadFile(path + ".rejects.csv")
	return res, string(rej)
}

func mappings(t *testing.T, d *db.DB) string {
	var b strings.Builder
	List(context.Background(), d, "p", func(m Mapping) error {
		b.WriteString(m.Item + "/" + m.SKU + "=" + m.ExternalCode + " ")
		return nil
	})
	return b.String()
}

func TestLoadRules(t *testing.T) {
	d, dir := fixture(t)
	for _, step := range []struct {
		name, mode, file string
		rejected         int64
		rejectHas        string
		want             string
	}{
		{"first", ModeDelta, "item,sku,external_code\nIT1,A,X1\nIT1,B,X2\nIT2,,X3\n", 0, "", "IT1/A=X1 IT1/B=X2 IT2/=X3 "},
		{"code of a SKU that keeps it", ModeDelta, "item,sku,external_code\nIT1,C,X1\n", 1, "already the code of item/SKU", "IT1/A=X1 IT1/B=X2 IT2/=X3 "},
		{"swap in one file", ModeDelta, "item,sku,external_code\nIT1,A,X2\nIT1,B,X1\n", 0, "", "IT1/A=X2 IT1/B=X1 IT2/=X3 "},
		// B's row is rejected, so B keeps X1, and C cannot take it.
		{"rejection frees nothing", ModeDelta, "item,sku,external_code\nIT1,B,X3\nIT1,C,X1\n", 2, "already the code", "IT1/A=X2 IT1/B=X1 IT2/=X3 "},
		{"two codes for a SKU", ModeDelta, "item,sku,external_code\nIT1,C,X4\nIT1,C,X5\n", 1, "given a code on line 2 already", "IT1/A=X2 IT1/B=X1 IT1/C=X4 IT2/=X3 "},
		{"unknown SKU", ModeDelta, "item,sku,external_code\nIT1,Z,X9\n", 1, `""IT1""/""Z"": unknown`, "IT1/A=X2 IT1/B=X1 IT1/C=X4 IT2/=X3 "},
		{"full", ModeFull, "item,sku,external_code\nIT2,,X1\n", 0, "", "IT2/=X1 "},
	} {
		res, rej := load(t, d, dir, step.mode, step.file)
		if res.Rejected != step.rejected || !strings.Contains(rej, step.rejectHas) {
			t.Errorf("%s: %d rejected, want %d; rejects:\n%s", step.name, res.Rejected, step.rejected, rej)
		}
		if got := mappings(t, d); got != step.want {
			t.Errorf("%s: mappings %q, want %q", step.name, got, step.want)
		}
	}
}

// TestLoadListing reads Increff's listing JSON: SKUs by barcode (UPC),
// the serial and the tolerance kept, each bad listing rejected with its
// line and field, a wrong wrapper refusing the file.
func TestLoadListing(t *testing.T) {
	ctx := context.Background()
	d, dir := fixture(t)
	items := filepath.Join(dir, "upc.csv")
	os.WriteFile(items, []byte("item,sku,description,upc\nIT1,A,x,0111\nIT1,B,x,0222\nIT1,C,x,0333\nIT2,,y,0333\n"), 0o600)
	if _, err := catalog.Load(ctx, d, "items", items, catalog.Options{}); err != nil {
		t.Fatal(err)
	}
	listing := `{"skuListings": [
  {"channelSkuCode": "X1", "channelSerialNo": "S1", "barcode": "0111", "toleranceDays": 2},
  {"channelSkuCode": "X2", "channelSerialNo": "S2", "barcode": "0222", "toleranceDays": null},
  {"channelSkuCode": "X3", "barcode": "0333"},
  {"channelSkuCode": "X4", "barcode": "0999"},
  {"channelSkuCode": "X5", "barcode": 222},
  {"channelSerialNo": "S6", "barcode": "0222"},
  {"channelSkuCode": "X7", "barcode": "0222", "toleranceDays": "3"},
  {"channelSkuCode": "X8", "barcode": "0222", "toleranceDays": -1},
  {"channelSkuCode": "X9", "barcode": "0222", "Barcode": "0111"},
  {"channelSkuCode": "X1", "barcode": "0222"}
]}`
	res, rej := loadFile(t, d, dir, "l.json", listing)
	if res.Read != 10 || res.Added != 2 || res.Rejected != 8 {
		t.Errorf("load: %+v", res)
	}
	want := `line,error,listing,channelSkuCode,channelSerialNo,barcode,toleranceDays
4,"field barcode ""0333"": more than one live SKU has that UPC",3,X3,,0333,
5,"field barcode ""0999"": no live SKU has that UPC",4,X4,,0999,
6,field barcode 222: not a string (the page documents String),5,X5,,222,
7,field channelSkuCode: required,6,,S6,0222,
8,"field toleranceDays ""3"": a string, want a whole number of days (Integer) or null",7,X7,,0222,3
9,field toleranceDays -1: not a whole number of days (0 or more),8,X8,,0222,-1
10,"keys ""barcode"" and ""Barcode"" in the record are one field in two spellings: ambiguous, give it once",9,,,,
11,"field barcode ""0222"": item/SKU ""IT1""/""B"": given a code on line 3 already (one code per SKU)",10,X1,,0222,
`
	if rej != want {
		t.Errorf("rejects:\n%s\nwant\n%s", rej, want)
	}
	var got []string
	List(ctx, d, "p", func(m Mapping) error {
		days := "null"
		if m.ToleranceDays != nil {
			days = strconv.FormatInt(*m.ToleranceDays, 10)
		}
		got = append(got, strings.Join([]string{m.Item, m.SKU, m.ExternalCode, m.Serial, m.Barcode, days}, "|"))
		return nil
	})
	if g := strings.Join(got, ";"); g != "IT1|A|X1|S1|0111|2;IT1|B|X2|S2|0222|null" {
		t.Errorf("mappings: %s", g)
	}

	for _, c := range []struct{ name, file, want string }{
		{"array", `[{"channelSkuCode": "X1", "barcode": "0111"}]`, `line 1: a JSON array: want the listing object {"skuListings":[…]}`},
		{"other wrapper", `{"listings": []}`, `no "skuListings"`},
		{"not an array", `{"skuListings": {"channelSkuCode": "X1"}}`, `"skuListings" is not an array`},
		{"wrapper twice", `{"skuListings": [], "SKULISTINGS": []}`, `keys "skuListings" and "SKULISTINGS"`},
		{"syntax", "{\"skuListings\": [\n{\"channelSkuCode\": \"X1\" \"barcode\": \"0111\"}]}", "invalid JSON at line 2"},
		{"ends early", `{"skuListings": [{"channelSkuCode": "X1"`, "ends in the middle"},
	} {
		path := filepath.Join(dir, c.name+".json")
		os.WriteFile(path, []byte(c.file), 0o600)
		if _, err := Load(ctx, d, "p", path, LoadOptions{}); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrFile with %q", c.name, err, c.want)
		}
	}
}

func loadFile(t *testing.T, d *db.DB, dir, name, content string) (*LoadResult, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	os.WriteFile(path, []byte(content), 0o600)
	res, err := Load(context.Background(), d, "p", path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rej, _ := os.ReadFile(path + ".rejects.csv")
	return res, string(rej)
}

// TestLoadWideHeader: a header of a million unknown columns names 20 of
// them and counts the rest in one warning, not a million.
func TestLoadWideHeader(t *testing.T) {
	d, dir := fixture(t)
	var b strings.Builder
	b.WriteString("item,sku,external_code")
	for i := range 1_000_000 {
		b.WriteString(",x")
		b.WriteString(strconv.Itoa(i))
	}
	b.WriteString("\nIT1,A,P-1")
	b.WriteString(strings.Repeat(",", 1_000_000))
	b.WriteString("\n")
	res, _ := load(t, d, dir, ModeDelta, b.String())
	if res.Added != 1 {
		t.Fatalf("%+v, want the row added", res)
	}
	if len(res.Warnings) != warningsShown+1 || res.Warnings[warningsShown] != "ignoring 999980 more unknown columns" {
		t.Fatalf("%d warnings, the last %q", len(res.Warnings), res.Warnings[len(res.Warnings)-1])
	}
}

// TestCodeMax holds the lengths of our codes in a cross reference to the
// item export's schema, where they go.
func TestCodeMax(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schemas", "items.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	for col, attr := range map[string]string{"item": "item_number", "sku": "sku_code", "barcode": "upc"} {
		if want := fmt.Sprintf(`<xs:attribute name="%s" type="Text%d"`, attr, codeMax[col]); !strings.Contains(string(b), want) {
			t.Errorf("%s: %d here, items.xsd has no %s", col, codeMax[col], want)
		}
	}
}
