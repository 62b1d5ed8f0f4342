package export

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/posbridge/posbridge/internal/trigger"
)

// The check for records removed without a tombstone runs only when a
// file's records do not find all its triggers; what a run leaves must be
// what the check run before every claim left: the same triggers in error
// (same reason, attempts untouched), the same files with the same
// numbers and contents.
func TestMissingRecordsAsIfCheckedFirst(t *testing.T) {
	for _, c := range []struct {
		name string
		per  int
		gone []string // SQL run behind posbridge's back
	}{
		{"none gone", 3, nil},
		{"a SKU, an item's SKUs, a whole item", 3, []string{
			`DELETE FROM skus WHERE item = 'IT00001' AND sku = 'S2'`,
			`DELETE FROM skus WHERE item = 'IT00004'`,
			`DELETE FROM skus WHERE item = 'IT00007'`, `DELETE FROM items WHERE item = 'IT00007'`,
		}},
		{"the first file's records all gone", 2, []string{
			`DELETE FROM skus WHERE item IN ('IT00000', 'IT00001')`,
			`DELETE FROM skus WHERE item = 'IT00005' AND sku = 'S0'`,
		}},
		{"a later file's item gone", 3, []string{`DELETE FROM skus WHERE item = 'IT00007'`}},
		{"one file", 0, []string{`DELETE FROM skus WHERE item = 'IT00003' AND sku = 'S4'`}},
		{"everything gone", 3, []string{`DELETE FROM skus`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := func(checkFirst bool) (missing int64, s [][]string) {
				f := newFixture(t)
				f.load("items", "delta", itemsCSV(10, "1.00"))
				for _, q := range c.gone {
					if _, err := f.d.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				ctx := context.Background()
				if checkFirst {
					n, err := trigger.MarkMissing(ctx, f.d, trigger.CodeItem)
					if err != nil {
						t.Fatal(err)
					}
					missing += n
				}
				o := f.opts()
				o.Format, o.MaxRecords = "csv", c.per
				res, err := Run(ctx, f.d, "items", o)
				if err != nil {
					t.Fatal(err)
				}
				missing += res.Missing
				var contents []string
				for _, name := range f.outboxFiles() {
					b, err := os.ReadFile(filepath.Join(f.outbox(), name))
					if err != nil {
						t.Fatal(err)
					}
					// The name without its time: the sequence number and the extension.
					contents = append(contents, name[len(name)-10:], string(b))
				}
				return missing, [][]string{
					f.rows(`SELECT id, record_key, sub_key, capture, status, attempts, last_error, coalesce(run_id, 0), coalesce(file_id, 0),
  CASE WHEN processed_at IS NULL THEN 0 ELSE 1 END FROM triggers ORDER BY id`),
					f.rows(`SELECT id, kind, sequence, status, records, sha256, size FROM files ORDER BY id`),
					f.rows(`SELECT kind, last FROM sequences ORDER BY kind`),
					contents,
				}
			}
			wantMissing, want := state(true)
			gotMissing, got := state(false)
			if gotMissing != wantMissing {
				t.Errorf("%d triggers put in error, want %d", gotMissing, wantMissing)
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("state %d:\n got  %q\n want %q", i, got[i], want[i])
				}
			}
			if len(c.gone) > 0 && wantMissing == 0 {
				t.Error("nothing was missing: the case tests nothing")
			}
		})
	}
}
