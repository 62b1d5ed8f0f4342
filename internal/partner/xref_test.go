package partner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

func fixture(t *testing.T) (*db.DB, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := db.Open(context.Background(), filepath.Join(dir, "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
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
	res, err := Load(context.Background(), d, "p", path, mode)
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
