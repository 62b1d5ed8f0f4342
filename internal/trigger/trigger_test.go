package trigger_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

func openDB(t *testing.T) *db.DB {
	t.Helper()
	return dbtest.Open(t)
}

func exec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// ago is a stored timestamp d before now.
func ago(d time.Duration) string { return time.Now().UTC().Add(-d).Format(db.TimeLayout) }

// seed inserts a trigger and returns its id. processedAt "" stores NULL.
// A processing trigger is stored as a claim stores it: processed, in an
// export file being written.
func seed(t *testing.T, d *db.DB, code, key, sub, capture, status string, at, processedAt string) int64 {
	t.Helper()
	if at == "" {
		at = db.Now()
	}
	var p, file any
	if processedAt != "" {
		p = processedAt
	}
	if status == trigger.StatusProcessing {
		status, p, file = trigger.StatusProcessed, at, newFile(t, d, "writing")
	}
	var id int64
	err := d.QueryRowContext(context.Background(), `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, last_error, attempts, created_at, updated_at, processed_at, file_id)
VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, code, key, sub, capture, status, map[bool]string{true: "partner rejected it"}[status == trigger.StatusError],
		map[bool]int{true: 3}[status == trigger.StatusError], at, at, p, file).Scan(&id)
	if err != nil {
		t.Fatalf("seed trigger: %v", err)
	}
	return id
}

// newFile records an export file in status ("writing", "written",
// "complete") on q and returns its id.
func newFile(t *testing.T, q db.Querier, status string) int64 {
	t.Helper()
	var id int64
	err := q.QueryRowContext(context.Background(), `INSERT INTO files(direction, kind, name, path, sha256, size, status, created_at)
VALUES ('out', 'test', 'f', 'f', '', 0, ?, ?) RETURNING id`, status, db.Now()).Scan(&id)
	if err != nil {
		t.Fatalf("record a file: %v", err)
	}
	return id
}

// row is a trigger as the tests compare it.
type row struct {
	Code, Key, Sub, Capture, Status string
}

func (r row) String() string {
	return fmt.Sprintf("%s %s/%s %s %s", r.Code, r.Key, r.Sub, r.Capture, r.Status)
}

func all(t *testing.T, d *db.DB) []row {
	t.Helper()
	// As trigger list shows it: processing while its file is unfinished.
	rows, err := d.QueryContext(context.Background(), `SELECT t.file_code, t.record_key, t.sub_key, t.capture, `+trigger.StatusColumn+`
FROM triggers t LEFT JOIN files f ON f.id = t.file_id ORDER BY t.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.Code, &r.Key, &r.Sub, &r.Capture, &r.Status); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func wantTriggers(t *testing.T, d *db.DB, want ...row) {
	t.Helper()
	got := all(t, d)
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("triggers:\n  got  %v\n  want %v", got, want)
	}
}

const oneChange = `SELECT ? AS record_key, ? AS sub_key, ? AS capture`

func TestFoldRules(t *testing.T) {
	tests := []struct {
		pending string // capture of the pending (ready) trigger, "" for none
		change  string
		want    string
	}{
		{"", trigger.Added, trigger.Added},
		{"", trigger.Changed, trigger.Changed},
		{"", trigger.Deleted, trigger.Deleted},
		{trigger.Added, trigger.Changed, trigger.Added},     // still never sent: the add carries the new data
		{trigger.Added, trigger.Added, trigger.Added},       // generate over a pending add
		{trigger.Changed, trigger.Changed, trigger.Changed}, // one change message is enough
		{trigger.Changed, trigger.Deleted, trigger.Deleted},
		{trigger.Deleted, trigger.Added, trigger.Changed}, // the partner still has the record
		{trigger.Deleted, trigger.Changed, trigger.Changed},
		{trigger.Deleted, trigger.Deleted, trigger.Deleted},
	}
	for _, tt := range tests {
		name := "none"
		if tt.pending != "" {
			name = tt.pending
		}
		t.Run(name+"+"+tt.change+"="+tt.want, func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t)
			var id int64
			if tt.pending != "" {
				id = seed(t, d, trigger.CodeItem, "IT1", "RED", tt.pending, trigger.StatusReady, ago(time.Hour), "")
			}
			n, err := trigger.Fold(ctx, d, trigger.CodeItem, oneChange, "IT1", "RED", tt.change)
			if err != nil {
				t.Fatalf("Fold: %v", err)
			}
			if n != 1 {
				t.Errorf("Fold reported %d triggers, want 1", n)
			}
			wantTriggers(t, d, row{"SKU", "IT1", "RED", tt.want, "ready"})
			if tt.pending != "" {
				got, err := trigger.Get(ctx, d, id)
				if err != nil {
					t.Fatalf("the pending trigger %d is gone: %v", id, err)
				}
				if got.CreatedAt == got.UpdatedAt {
					t.Errorf("folded trigger keeps updated_at %s, want it moved on", got.UpdatedAt)
				}
			}
		})
	}
}

func TestFoldInto(t *testing.T) {
	tests := []struct {
		name   string
		before []row // seeded in order
		change row   // Status unused
		want   []row
	}{
		{
			name:   "a trigger in error becomes ready again on a new change",
			before: []row{{"CST", "C1", "", "C", "error"}},
			change: row{Code: "CST", Key: "C1", Capture: "C"},
			want:   []row{{"CST", "C1", "", "C", "ready"}},
		},
		{
			name:   "an add in error stays an add and becomes ready",
			before: []row{{"CST", "C1", "", "A", "error"}},
			change: row{Code: "CST", Key: "C1", Capture: "C"},
			want:   []row{{"CST", "C1", "", "A", "ready"}},
		},
		{
			name:   "a trigger being processed is not folded into: a new ready one is created",
			before: []row{{"CST", "C1", "", "A", "processing"}},
			change: row{Code: "CST", Key: "C1", Capture: "C"},
			want:   []row{{"CST", "C1", "", "A", "processing"}, {"CST", "C1", "", "C", "ready"}},
		},
		{
			name:   "a processed trigger is history: a new ready one is created",
			before: []row{{"CST", "C1", "", "A", "processed"}},
			change: row{Code: "CST", Key: "C1", Capture: "D"},
			want:   []row{{"CST", "C1", "", "A", "processed"}, {"CST", "C1", "", "D", "ready"}},
		},
		{
			name:   "processing and pending: the change folds into the pending one",
			before: []row{{"CST", "C1", "", "A", "processing"}, {"CST", "C1", "", "C", "ready"}},
			change: row{Code: "CST", Key: "C1", Capture: "D"},
			want:   []row{{"CST", "C1", "", "A", "processing"}, {"CST", "C1", "", "D", "ready"}},
		},
		{
			name:   "another sub key is another record",
			before: []row{{"SKU", "IT1", "RED", "C", "ready"}},
			change: row{Code: "SKU", Key: "IT1", Sub: "BLUE", Capture: "C"},
			want:   []row{{"SKU", "IT1", "RED", "C", "ready"}, {"SKU", "IT1", "BLUE", "C", "ready"}},
		},
		{
			name:   "another file code is another record",
			before: []row{{"SKU", "IT1", "RED", "A", "ready"}},
			change: row{Code: "ITW", Key: "IT1", Sub: "RED", Capture: "C"},
			want:   []row{{"SKU", "IT1", "RED", "A", "ready"}, {"ITW", "IT1", "RED", "C", "ready"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t)
			for _, b := range tt.before {
				seed(t, d, b.Code, b.Key, b.Sub, b.Capture, b.Status, ago(time.Hour), "")
			}
			if _, err := trigger.Fold(ctx, d, tt.change.Code, oneChange, tt.change.Key, tt.change.Sub, tt.change.Capture); err != nil {
				t.Fatalf("Fold: %v", err)
			}
			wantTriggers(t, d, tt.want...)
			var lastErr string
			d.QueryRowContext(ctx, `SELECT last_error FROM triggers WHERE status='ready'`).Scan(&lastErr)
			if lastErr != "" {
				t.Errorf("ready trigger keeps last_error %q, want it cleared", lastErr)
			}
		})
	}
}

// Fold takes a whole SELECT of changes at once, as a load does.
func TestFoldManyRecords(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	seed(t, d, "VND", "V1", "", "A", "ready", "", "")
	seed(t, d, "VND", "V2", "", "D", "ready", "", "")
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE changes (record_key TEXT, sub_key TEXT, capture TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO changes VALUES ('V1','','C'), ('V2','','A'), ('V3','','A'), ('V4','','C')`); err != nil {
		t.Fatal(err)
	}
	n, err := trigger.Fold(ctx, conn, trigger.CodeVendor, `SELECT record_key, sub_key, capture FROM changes WHERE capture <> ?`, "X")
	if err != nil {
		t.Fatalf("Fold: %v", err)
	}
	if n != 4 {
		t.Errorf("Fold reported %d, want 4", n)
	}
	wantTriggers(t, d,
		row{"VND", "V1", "", "A", "ready"},
		row{"VND", "V2", "", "C", "ready"},
		row{"VND", "V3", "", "A", "ready"},
		row{"VND", "V4", "", "C", "ready"},
	)
}

func TestCancelAdds(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	seed(t, d, "SKU", "IT1", "RED", "A", "ready", "", "")   // cancelled
	seed(t, d, "SKU", "IT1", "BLUE", "A", "error", "", "")  // cancelled: in error, still not sent
	seed(t, d, "SKU", "IT2", "", "C", "ready", "", "")      // a change: the partner has it, keep
	seed(t, d, "SKU", "IT3", "", "A", "processed", "", "")  // sent: keep
	seed(t, d, "SKU", "IT5", "", "A", "processing", "", "") // being sent: keep
	seed(t, d, "SKU", "IT4", "", "A", "ready", "", "")      // not among the keys
	seed(t, d, "ITW", "IT1", "RED", "A", "ready", "", "")   // another file code

	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`CREATE TEMP TABLE gone (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
		`CREATE TEMP TABLE cancelled (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
		`INSERT INTO gone VALUES ('IT1','RED'), ('IT1','BLUE'), ('IT2',''), ('IT3',''), ('IT5','')`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := trigger.CancelAdds(ctx, conn, trigger.CodeItem, `SELECT record_key, sub_key FROM gone`, "cancelled")
	if err != nil {
		t.Fatalf("CancelAdds: %v", err)
	}
	if n != 2 {
		t.Errorf("CancelAdds removed %d triggers, want 2", n)
	}
	wantTriggers(t, d,
		row{"SKU", "IT2", "", "C", "ready"},
		row{"SKU", "IT3", "", "A", "processed"},
		row{"SKU", "IT5", "", "A", "processing"},
		row{"SKU", "IT4", "", "A", "ready"},
		row{"ITW", "IT1", "RED", "A", "ready"},
	)
	rows, err := conn.QueryContext(ctx, `SELECT record_key || '/' || sub_key FROM cancelled ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		got = append(got, k)
	}
	if want := []string{"IT1/BLUE", "IT1/RED"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("cancelled keys %q, want %q", got, want)
	}
}

// seedRecords inserts live records and tombstones of every kind.
func seedRecords(t *testing.T, d *db.DB) {
	t.Helper()
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO items(item, description, item_class, created_at, updated_at) VALUES
  ('IT1','Shirt','APP',?1,?1), ('IT2','Shoe','SHOE',?1,?1), ('IT4','Hat','APP',?1,?1)`,
		`INSERT INTO items(item, description, item_class, deleted_at, created_at, updated_at) VALUES ('IT3','Gone','APP',?1,?1,?1)`,
		`INSERT INTO skus(item, sku, created_at, updated_at) VALUES
  ('IT1','RED',?1,?1), ('IT1','BLUE',?1,?1), ('IT2','',?1,?1), ('IT3','',?1,?1), ('IT4','',?1,?1)`,
		`INSERT INTO skus(item, sku, deleted_at, created_at, updated_at) VALUES ('IT4','OLD',?1,?1,?1)`,
		`INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V1','One',?1,?1), ('V2','Two',?1,?1)`,
		`INSERT INTO vendors(vendor, name, deleted_at, created_at, updated_at) VALUES ('V3','Three',?1,?1,?1)`,
		`INSERT INTO customers(customer, customer_class, last_name, created_at, updated_at) VALUES
  ('C1','VIP','Smith',?1,?1), ('C2','REG','Jones',?1,?1), ('C3','VIP','Brown',?1,?1)`,
		`INSERT INTO customers(customer, customer_class, last_name, deleted_at, created_at, updated_at) VALUES ('C4','VIP','Gone',?1,?1,?1)`,
		`INSERT INTO invoices(invoice, order_no, customer, invoice_date, created_at, updated_at) VALUES ('INV1','O1','C1','2024-01-05',?1,?1)`,
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('WH1','Main',?1,?1), ('WH2','Store',?1,?1)`,
		`INSERT INTO inventory(item, sku, warehouse, on_hand, updated_at) VALUES
  ('IT1','RED','WH1',5,?1), ('IT1','RED','WH2',3,?1), ('IT2','','WH1',1,?1),
  ('IT3','','WH1',4,?1), ('IT4','OLD','WH1',2,?1)`, // stock left of a deleted item and a deleted SKU
	} {
		exec(t, d, q, now)
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name    string
		opts    trigger.GenerateOptions
		pending []row // seeded before
		want    trigger.GenerateResult
		created []string // keys of the new A triggers, in id order
	}{
		{
			name: "items: one per live SKU, tombstones left out",
			opts: trigger.GenerateOptions{Kind: "item"},
			want: trigger.GenerateResult{FileCode: "SKU", Selected: 4, Created: 4},
			// IT1/RED, IT1/BLUE, IT2/, IT4/ in some order: checked as a set below.
			created: []string{"IT1/BLUE", "IT1/RED", "IT2/", "IT4/"},
		},
		{
			name:    "items with a pending trigger are skipped",
			opts:    trigger.GenerateOptions{Kind: "item"},
			pending: []row{{"SKU", "IT1", "RED", "C", "ready"}, {"SKU", "IT2", "", "D", "error"}},
			want:    trigger.GenerateResult{FileCode: "SKU", Selected: 4, Created: 2, Skipped: 2},
			created: []string{"IT1/BLUE", "IT4/"},
		},
		{
			name:    "a trigger already processed or being processed does not count as pending",
			opts:    trigger.GenerateOptions{Kind: "item"},
			pending: []row{{"SKU", "IT1", "RED", "A", "processed"}, {"SKU", "IT2", "", "A", "processing"}},
			want:    trigger.GenerateResult{FileCode: "SKU", Selected: 4, Created: 4},
			created: []string{"IT1/BLUE", "IT1/RED", "IT2/", "IT4/"},
		},
		{
			name:    "items of one class",
			opts:    trigger.GenerateOptions{Kind: "item", Class: "APP"},
			pending: []row{{"SKU", "IT4", "", "C", "ready"}},
			want:    trigger.GenerateResult{FileCode: "SKU", Selected: 3, Created: 2, Skipped: 1},
			created: []string{"IT1/BLUE", "IT1/RED"},
		},
		{
			name:    "a class nobody has",
			opts:    trigger.GenerateOptions{Kind: "item", Class: "NONE"},
			want:    trigger.GenerateResult{FileCode: "SKU"},
			created: nil,
		},
		{
			name:    "vendors",
			opts:    trigger.GenerateOptions{Kind: "vendor"},
			want:    trigger.GenerateResult{FileCode: "VND", Selected: 2, Created: 2},
			created: []string{"V1/", "V2/"},
		},
		{
			name:    "customers of one class, tombstones left out",
			opts:    trigger.GenerateOptions{Kind: "customer", Class: "VIP"},
			pending: []row{{"CST", "C3", "", "A", "ready"}},
			want:    trigger.GenerateResult{FileCode: "CST", Selected: 2, Created: 1, Skipped: 1},
			created: []string{"C1/"},
		},
		{
			name:    "invoices",
			opts:    trigger.GenerateOptions{Kind: "invoice"},
			want:    trigger.GenerateResult{FileCode: "IHD", Selected: 1, Created: 1},
			created: []string{"INV1/"},
		},
		{
			name:    "inventory: one per live item/SKU with stock rows, whatever the warehouses",
			opts:    trigger.GenerateOptions{Kind: "inventory"},
			want:    trigger.GenerateResult{FileCode: "ITW", Selected: 2, Created: 2},
			created: []string{"IT1/RED", "IT2/"},
		},
		{
			name:    "inventory of one item class",
			opts:    trigger.GenerateOptions{Kind: "inventory", Class: "SHOE"},
			want:    trigger.GenerateResult{FileCode: "ITW", Selected: 1, Created: 1},
			created: []string{"IT2/"},
		},
		{
			name:    "dry run counts but creates nothing",
			opts:    trigger.GenerateOptions{Kind: "item", DryRun: true},
			pending: []row{{"SKU", "IT1", "RED", "C", "ready"}},
			want:    trigger.GenerateResult{FileCode: "SKU", Selected: 4, Created: 3, Skipped: 1},
			created: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t)
			seedRecords(t, d)
			for _, p := range tt.pending {
				seed(t, d, p.Code, p.Key, p.Sub, p.Capture, p.Status, "", "")
			}
			got, err := trigger.Generate(ctx, d, tt.opts)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got != tt.want {
				t.Errorf("Generate = %+v, want %+v", got, tt.want)
			}
			var created []string
			rows := all(t, d)
			if len(rows) < len(tt.pending) {
				t.Fatalf("Generate removed triggers: %v", rows)
			}
			for i, p := range tt.pending {
				if rows[i] != p {
					t.Errorf("pending trigger changed: %v, was %v", rows[i], p)
				}
			}
			for _, r := range rows[len(tt.pending):] {
				if r.Code != tt.want.FileCode || r.Capture != "A" || r.Status != "ready" {
					t.Errorf("generated %v, want a ready %s A trigger", r, tt.want.FileCode)
				}
				created = append(created, r.Key+"/"+r.Sub)
			}
			sortStrings(created)
			if !reflect.DeepEqual(created, tt.created) {
				t.Errorf("created triggers for %q, want %q", created, tt.created)
			}
		})
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		opts    trigger.GenerateOptions
		noClass bool
		wantErr string
	}{
		{name: "vendors have no class", opts: trigger.GenerateOptions{Kind: "vendor", Class: "X"}, noClass: true, wantErr: "vendor"},
		{name: "invoices have no class", opts: trigger.GenerateOptions{Kind: "invoice", Class: "X"}, noClass: true, wantErr: "invoice"},
		{name: "unknown type", opts: trigger.GenerateOptions{Kind: "store"}, wantErr: `unknown type "store"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDB(t)
			seedRecords(t, d)
			_, err := trigger.Generate(context.Background(), d, tt.opts)
			if err == nil {
				t.Fatal("Generate succeeded, want an error")
			}
			if errors.Is(err, trigger.ErrNoClass) != tt.noClass {
				t.Errorf("error %v: errors.Is(err, ErrNoClass) = %v, want %v", err, !tt.noClass, tt.noClass)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			wantTriggers(t, d)
		})
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	e1 := seed(t, d, "SKU", "IT1", "", "C", "error", "", "")
	e2 := seed(t, d, "VND", "V1", "", "A", "error", "", "")
	r1 := seed(t, d, "CST", "C1", "", "C", "ready", "", "")
	p1 := seed(t, d, "CST", "C2", "", "C", "processed", "", ago(time.Hour))

	// All or nothing: a missing id or one not in error changes nothing.
	for _, ids := range [][]int64{{e1, 999}, {e1, r1}, {e1, p1}} {
		changed, err := trigger.Retry(ctx, d, ids, false)
		if err == nil || changed != 0 {
			t.Fatalf("Retry %v = %d, %v; want an error and nothing changed", ids, changed, err)
		}
		if got, _ := trigger.Get(ctx, d, e1); got.Status != "error" {
			t.Fatalf("after the failed Retry %v trigger %d is %s, want still error", ids, e1, got.Status)
		}
	}
	if _, err := trigger.Retry(ctx, d, []int64{999}, false); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("Retry of a missing id: %v, want ErrNotFound", err)
	}
	if _, err := trigger.Retry(ctx, d, []int64{r1}, false); !errors.Is(err, trigger.ErrNotInError) {
		t.Errorf("Retry of a ready trigger: %v, want ErrNotInError", err)
	}
	changed, err := trigger.Retry(ctx, d, []int64{e1}, false)
	if err != nil || changed != 1 {
		t.Fatalf("Retry = %d, %v; want 1 changed", changed, err)
	}
	got, _ := trigger.Get(ctx, d, e1)
	if got.Status != "ready" || got.LastError != "" {
		t.Errorf("retried trigger is %s with last_error %q, want ready without error", got.Status, got.LastError)
	}
	if got, _ := trigger.Get(ctx, d, e2); got.Status != "error" {
		t.Errorf("trigger %d not asked for is %s, want still error", e2, got.Status)
	}

	changed, err = trigger.Retry(ctx, d, nil, true)
	if err != nil || changed != 1 {
		t.Fatalf("Retry --all-errors = %d, %v; want 1 changed", changed, err)
	}
	wantTriggers(t, d,
		row{"SKU", "IT1", "", "C", "ready"},
		row{"VND", "V1", "", "A", "ready"},
		row{"CST", "C1", "", "C", "ready"},
		row{"CST", "C2", "", "C", "processed"},
	)
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	ready := seed(t, d, "SKU", "IT1", "", "C", "ready", "", "")
	errored := seed(t, d, "SKU", "IT2", "", "C", "error", "", "")
	done := seed(t, d, "SKU", "IT3", "", "C", "processed", "", ago(time.Hour))
	busy := seed(t, d, "SKU", "IT4", "", "C", "processing", "", "")

	// All or nothing: a missing id deletes nothing.
	deleted, err := trigger.Delete(ctx, d, []int64{ready, errored, done, 999})
	if !errors.Is(err, trigger.ErrNotFound) || deleted != 0 {
		t.Fatalf("Delete with a missing id = %d, %v; want ErrNotFound and 0", deleted, err)
	}
	deleted, err = trigger.Delete(ctx, d, []int64{ready, errored, done})
	if err != nil || deleted != 3 {
		t.Fatalf("Delete = %d, %v; want 3 deleted", deleted, err)
	}
	wantTriggers(t, d, row{"SKU", "IT4", "", "C", "processing"})

	// A trigger being processed is refused, and nothing of that call is deleted.
	other := seed(t, d, "SKU", "IT5", "", "C", "ready", "", "")
	_, err = trigger.Delete(ctx, d, []int64{other, busy})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(busy)) || !strings.Contains(err.Error(), "processed") {
		t.Fatalf("Delete of a processing trigger: %v, want an error naming trigger %d", err, busy)
	}
	wantTriggers(t, d, row{"SKU", "IT4", "", "C", "processing"}, row{"SKU", "IT5", "", "C", "ready"})
}

func TestGetNotFound(t *testing.T) {
	d := openDB(t)
	if _, err := trigger.Get(context.Background(), d, 42); !errors.Is(err, trigger.ErrNotFound) {
		t.Fatalf("Get of a missing trigger: %v, want ErrNotFound", err)
	}
}

func TestPurge(t *testing.T) {
	const week = 7 * 24 * time.Hour
	for _, dryRun := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry run %v", dryRun), func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t)
			now := db.Now()
			// Tombstones: V1's delete was sent long ago, V2's is still waiting,
			// V3's was sent yesterday; V4 is live. IT9/'' was sent, so IT9 goes
			// too; IT8/'' still waits.
			exec(t, d, `INSERT INTO vendors(vendor, name, deleted_at, created_at, updated_at) VALUES
  ('V1','a',?1,?1,?1), ('V2','b',?1,?1,?1), ('V3','c',?1,?1,?1)`, now)
			exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V4','d',?1,?1)`, now)
			exec(t, d, `INSERT INTO items(item, description, deleted_at, created_at, updated_at) VALUES ('IT9','x',?1,?1,?1), ('IT8','y',?1,?1,?1)`, now)
			exec(t, d, `INSERT INTO skus(item, sku, deleted_at, created_at, updated_at) VALUES ('IT9','',?1,?1,?1), ('IT8','',?1,?1,?1)`, now)

			seed(t, d, "VND", "V1", "", "D", "processed", ago(30*24*time.Hour), ago(10*24*time.Hour)) // purged
			seed(t, d, "VND", "V2", "", "D", "ready", ago(30*24*time.Hour), "")                       // kept: not sent
			seed(t, d, "VND", "V3", "", "D", "processed", ago(2*24*time.Hour), ago(24*time.Hour))     // kept: recent
			seed(t, d, "SKU", "IT9", "", "D", "processed", ago(20*24*time.Hour), ago(8*24*time.Hour)) // purged
			seed(t, d, "SKU", "IT8", "", "D", "error", ago(20*24*time.Hour), "")                      // kept
			seed(t, d, "CST", "C1", "", "C", "processing", ago(20*24*time.Hour), "")                  // kept
			before := all(t, d)

			n, err := trigger.Purge(ctx, d, week, dryRun)
			if err != nil {
				t.Fatalf("Purge: %v", err)
			}
			if n != 2 {
				t.Errorf("Purge = %d, want 2", n)
			}
			if dryRun {
				if got := all(t, d); !reflect.DeepEqual(got, before) {
					t.Fatalf("dry run changed the triggers: %v", got)
				}
				var v, i int
				d.QueryRowContext(ctx, `SELECT count(*) FROM vendors`).Scan(&v)
				d.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&i)
				if v != 4 || i != 2 {
					t.Fatalf("dry run removed records: %d vendors, %d items", v, i)
				}
				return
			}
			wantTriggers(t, d,
				row{"VND", "V2", "", "D", "ready"},
				row{"VND", "V3", "", "D", "processed"},
				row{"SKU", "IT8", "", "D", "error"},
				row{"CST", "C1", "", "C", "processing"},
			)
			wantKeys(t, d, `SELECT vendor FROM vendors ORDER BY 1`, "V2", "V4")
			wantKeys(t, d, `SELECT item FROM items ORDER BY 1`, "IT8")
			wantKeys(t, d, `SELECT item || '/' || sku FROM skus ORDER BY 1`, "IT8/")
		})
	}
}

func wantKeys(t *testing.T, d *db.DB, q string, want ...string) {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", q, got, want)
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	seed(t, d, "SKU", "IT1", "RED", "A", "ready", "", "")
	seed(t, d, "SKU", "IT1", "BLUE", "C", "error", "", "")
	seed(t, d, "VND", "IT1", "", "C", "ready", "", "")
	seed(t, d, "SKU", "IT2", "", "A", "processed", "", db.Now())

	tests := []struct {
		name   string
		filter trigger.Filter
		want   []string
	}{
		{"everything", trigger.Filter{}, []string{"IT1/RED", "IT1/BLUE", "IT1", "IT2"}},
		{"by code", trigger.Filter{Code: "SKU"}, []string{"IT1/RED", "IT1/BLUE", "IT2"}},
		{"by status", trigger.Filter{Status: "ready"}, []string{"IT1/RED", "IT1"}},
		{"by key", trigger.Filter{Key: "IT1"}, []string{"IT1/RED", "IT1/BLUE", "IT1"}},
		{"by key and sub key", trigger.Filter{Key: "IT1/BLUE"}, []string{"IT1/BLUE"}},
		{"limit", trigger.Filter{Limit: 2}, []string{"IT1/RED", "IT1/BLUE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := trigger.List(ctx, d, tt.filter, func(tr trigger.Trigger) error {
				got = append(got, tr.DisplayKey())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("List(%+v) = %q, want %q", tt.filter, got, tt.want)
			}
		})
	}
}

// TestGenerateAnalyzesOnPostgres: on PostgreSQL trigger generate, which
// writes a trigger per record in one run, has the statistics of the
// triggers table brought up to date after its commit, so that the exports
// sending them are planned for them; a dry run changes nothing and
// analyzes nothing.
func TestGenerateAnalyzesOnPostgres(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at)
SELECT 'V' || lpad(CAST(n AS TEXT), 5, '0'), 'Vendor', ?1, ?1 FROM generate_series(1, 1200) AS n`, db.Now())
	lastAnalyze := func() string {
		t.Helper()
		var at string
		if err := d.QueryRowContext(ctx, `SELECT coalesce(CAST(last_analyze AS TEXT), '') FROM pg_stat_user_tables WHERE relname = 'triggers'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	if _, err := trigger.Generate(ctx, d, trigger.GenerateOptions{Kind: "vendor", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if at := lastAnalyze(); at != "" {
		t.Fatalf("triggers analyzed after a dry run, at %s", at)
	}
	res, err := trigger.Generate(ctx, d, trigger.GenerateOptions{Kind: "vendor"})
	if err != nil || res.Created != 1200 {
		t.Fatalf("generate: %+v %v", res, err)
	}
	if lastAnalyze() == "" {
		t.Error("triggers not analyzed after 1200 triggers were generated")
	}
}

// TestGenerateAnalyzeFailureWarns: when the statistics cannot be brought up
// to date after the triggers were committed (here ANALYZE waits for a lock
// past the command's deadline), Generate reports it as a warning, not as
// an error: the triggers are there, and an error would have the operator
// run the command again for nothing.
func TestGenerateAnalyzeFailureWarns(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at)
SELECT 'V' || lpad(CAST(n AS TEXT), 5, '0'), 'Vendor', ?1, ?1 FROM generate_series(1, 1200) AS n`, db.Now())
	// SHARE UPDATE EXCLUSIVE lets the INSERT through and holds ANALYZE.
	locker := dbtest.OpenAgain(t, d)
	conn, err := locker.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	if _, err := conn.ExecContext(ctx, `LOCK TABLE triggers IN SHARE UPDATE EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := trigger.Generate(short, d, trigger.GenerateOptions{Kind: "vendor", Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil || res.Created != 1200 {
		t.Fatalf("generate: %+v %v, want 1200 created and no error", res, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "generated 1200 vendor triggers (committed), then: analyze") {
		t.Errorf("warnings %q, want one about the analyze after the commit", warnings)
	}
	var n int64
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM triggers WHERE file_code = 'VND'`).Scan(&n); err != nil || n != 1200 {
		t.Errorf("%d triggers committed (%v), want 1200", n, err)
	}
}
