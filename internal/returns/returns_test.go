package returns

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// oms is an external OMS partner naming SKUs by UPC; its returns go to
// warehouse RET.
var oms = partner.Profile{Name: "oms", Kind: partner.ExternalOMS, SKUCode: partner.SKUCodeUPC, Location: "WH-RET", Warehouse: "RET"}

// template is a seeded SQLite database that seed copies: migrating a new
// database for every test takes a third of a second under -race.
var template string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "returns-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	template = filepath.Join(dir, "posbridge.db")
	err = makeTemplate(template)
	code := 1
	if err == nil {
		code = pgtest.WithServer(m).Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// makeTemplate creates the template file.
func makeTemplate(path string) error {
	ctx := context.Background()
	d, err := db.Open(ctx, path, db.Options{Create: true})
	if err != nil {
		return err
	}
	if err := seedRows(ctx, d); err != nil {
		d.Close()
		return err
	}
	// Closing the last connection checkpoints the WAL into the file.
	return d.Close()
}

// seedRows makes a state with two SKUs of IT1: RED S (UPC 111) with 5 on
// hand in RET location A1, 2 in RET B1 and 9 in store S01; RED M (UPC
// 222) with no stock.
func seedRows(ctx context.Context, d *db.DB) error {
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('RET', 'Returns', ?1, ?1), ('S01', 'Store', ?1, ?1)`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Jacket', ?1, ?1)`,
		`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'RED S', '111', ?1, ?1), ('IT1', 'RED M', '222', ?1, ?1)`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'RET', 'A1', 5, 0, ?1),
  ('IT1', 'RED S', 'RET', 'B1', 2, 0, ?1), ('IT1', 'RED S', 'S01', 'A1', 9, 0, ?1)`,
	} {
		if _, err := d.ExecContext(ctx, q, db.Now()); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// seed opens the seeded state: a copy of the template, or on PostgreSQL
// a new database with the same rows.
func seed(t *testing.T) *db.DB {
	t.Helper()
	if dbtest.Postgres() {
		d := dbtest.Open(t)
		if err := seedRows(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	b, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "posbridge.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// query returns the rows of q as "a|b|c;" lines, for comparing a table.
func query(t *testing.T, d *db.DB, q string, args ...any) string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("NULL")
			case []byte:
				b.Write(v)
			case bool:
				// A comparison is a boolean on PostgreSQL, 0 or 1 on
				// SQLite: shown as SQLite shows it.
				if v {
					b.WriteByte('1')
				} else {
					b.WriteByte('0')
				}
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte(';')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// stock is the stock of IT1 everywhere.
func stock(t *testing.T, d *db.DB) string {
	return query(t, d, `SELECT sku, warehouse, location, on_hand FROM inventory WHERE item = 'IT1' ORDER BY sku, warehouse, location`)
}

const seeded = "RED S|RET|A1|5;RED S|RET|B1|2;RED S|S01|A1|9;"

// items lists the items of return code as code|sku|quantity|reason|received|qc.
func items(t *testing.T, d *db.DB, code string) string {
	return query(t, d, `SELECT i.item_code, i.sku, i.quantity, i.reason, i.received, i.qc_status FROM return_items i
JOIN returns r ON r.id = i.return_id WHERE r.return_code = ? ORDER BY i.item_code`, code)
}

const (
	ret1 = `{"forwardOrderCode":"SO-1","returnOrderCode":"RET-1","orderType":"customer_return","awbNumber":"AWB1","createdAt":"2026-03-01 10:15:00",
 "orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","reason":"too small","quantity":2},{"returnItemCode":"RI-2","channelSkuCode":"222"}]}`
	ret2 = `{"RETURNORDERCODE":"RET-2","locationCode":"WH-RET","OrderType":"SELF_SHIP","orderItems":[{"ReturnItemCode":"RI-1","channelSkuCode":"111","quantity":"3.0"}]}`
)

func TestImportForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name, file string
	}{
		{"object and object", ret1 + "\n" + ret2},
		{"array", "[" + ret1 + ",\n" + ret2 + "]"},
		{"NDJSON with a BOM", "\xef\xbb\xbf" + strings.ReplaceAll(ret1, "\n", "") + "\n" + ret2 + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := seed(t)
			res, st, err := Import(ctx, d, oms, write(t, "r.json", c.file), imports.Options{})
			if err != nil || res.Read != 2 || res.Applied != 2 || res.Rejected != 0 || st != (Stats{Added: 2}) {
				t.Fatalf("import: %+v %+v %v", res, st, err)
			}
			r, err := Get(ctx, d, "", "RET-1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Partner != "oms" || r.ForwardOrderCode != "SO-1" || r.OrderType != "CUSTOMER_RETURN" || r.LocationCode != "WH-RET" ||
				r.Warehouse != "RET" || r.Channel != "oms" || r.AwbNumber != "AWB1" || r.ReturnTime != "2026-03-01T10:15:00Z" ||
				r.Status != StatusExpected || r.Revision != 1 || r.Items != 2 || r.Received != 0 {
				t.Errorf("RET-1: %+v", r)
			}
			if got, want := items(t, d, "RET-1"), "RI-1|RED S|2|too small|0|;RI-2|RED M|1||0|;"; got != want {
				t.Errorf("RET-1 items: %s, want %s", got, want)
			}
			if got, want := items(t, d, "RET-2"), "RI-1|RED S|3||0|;"; got != want {
				t.Errorf("RET-2 items: %s, want %s", got, want)
			}
			if got := stock(t, d); got != seeded {
				t.Errorf("import changed stock: %s", got)
			}
		})
	}
}

// TestImportResend re-sends a return: the same bytes, the same content in
// other bytes, and a changed return after one item was received.
func TestImportResend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := seed(t)
	var warned []string
	o := imports.Options{Warn: func(s string) { warned = append(warned, s) }}
	first := `{"forwardOrderCode":"SO-3","returnOrderCode":"RET-3","orderType":"SELF_SHIP","awbNumber":"AWB300","orderItems":[
 {"returnItemCode":"RI-1","channelSkuCode":"222","reason":"wrong colour"},
 {"returnItemCode":"RI-2","channelSkuCode":"222"},
 {"returnItemCode":"RI-3","channelSkuCode":"222"}]}`
	if res, st, err := Import(ctx, d, oms, write(t, "r.json", first), o); err != nil || res.Applied != 1 || st.Added != 1 {
		t.Fatalf("first import: %+v %+v %v", res, st, err)
	}

	res, st, err := Import(ctx, d, oms, write(t, "again.json", first), o)
	if err != nil || res.SameAs == "" || res.Read != 0 || st != (Stats{}) {
		t.Errorf("same bytes again: %+v %+v %v; want skipped as the same file", res, st, err)
	}
	res, st, err = Import(ctx, d, oms, write(t, "spaced.json", strings.ReplaceAll(first, `":"`, `": "`)), o)
	if err != nil || res.SameAs != "" || res.Applied != 1 || st != (Stats{Unchanged: 1}) {
		t.Errorf("same content in other bytes: %+v %+v %v; want 1 unchanged", res, st, err)
	}
	if r, _ := Get(ctx, d, "oms", "RET-3"); r.Revision != 1 || r.AwbNumber != "AWB300" {
		t.Errorf("after an unchanged re-send: revision %d awb %s, want 1 AWB300", r.Revision, r.AwbNumber)
	}

	// A QC reason goes to the partner: held to the text rules of its fields.
	if _, err := Receive(ctx, d, Receipt{Return: "RET-3", Item: "RI-1", QC: QCFail, Reason: "stained\x1b[2J"}); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "the QC reason contains the control character U+001B") {
		t.Fatalf("receive with an escape in the reason: %v, want refused", err)
	}
	rc, err := Receive(ctx, d, Receipt{Return: "RET-3", Item: "RI-1", QC: QCFail, Reason: "stained"})
	if err != nil || rc.Status != StatusReceived {
		t.Fatalf("receive RI-1: %+v %v", rc, err)
	}
	// RI-1 (received) gets another SKU and reason, which it does not take;
	// RI-2 gets another SKU and a quantity; RI-3 goes; RI-4 is new.
	changed := `{"forwardOrderCode":"SO-3","returnOrderCode":"RET-3","orderType":"SELF_SHIP","awbNumber":"AWB999","transporter":"DHL","orderItems":[
 {"returnItemCode":"RI-1","channelSkuCode":"111","reason":"other"},
 {"returnItemCode":"RI-2","channelSkuCode":"111","quantity":4},
 {"returnItemCode":"RI-4","channelSkuCode":"222","reason":"new"}]}`
	warned = nil
	res, st, err = Import(ctx, d, oms, write(t, "changed.json", changed), o)
	if err != nil || res.Applied != 1 || st != (Stats{Updated: 1}) {
		t.Fatalf("changed re-send: %+v %+v %v; want 1 updated", res, st, err)
	}
	if want := "return RET-3 changed, the later one wins (revision 2); items received or cancelled already keep what they were: RI-1"; len(warned) != 1 || !strings.Contains(warned[0], want) {
		t.Errorf("warnings %q, want one with %q", warned, want)
	}
	r, err := Get(ctx, d, "oms", "RET-3")
	if err != nil || r.Revision != 2 || r.AwbNumber != "AWB999" || r.Transporter != "DHL" || r.Status != StatusReceived || r.Items != 3 || r.Received != 1 {
		t.Errorf("after the changed re-send: %+v %v", r, err)
	}
	if got, want := items(t, d, "RET-3"), "RI-1|RED M|1|wrong colour|1|FAIL;RI-2|RED S|4||0|;RI-4|RED M|1|new|0|;"; got != want {
		t.Errorf("items: %s, want %s", got, want)
	}
	// The update still ready takes the new header.
	var payload string
	if err := d.QueryRowContext(ctx, `SELECT payload FROM order_messages WHERE stream = 'returns' AND status = 'ready'`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(payload, `"awbNumber":"AWB999","transporter":"DHL"`) || !strings.Contains(payload, `"returnItemCode":"RI-1","channelSkuCode":"222"`) {
		t.Errorf("ready update after the re-send: %s", payload)
	}
	// The changed content re-sent in other bytes is unchanged.
	res, st, err = Import(ctx, d, oms, write(t, "changed2.json", "["+changed+"]"), o)
	if err != nil || res.Applied != 1 || st != (Stats{Unchanged: 1}) {
		t.Errorf("changed content again: %+v %+v %v; want 1 unchanged", res, st, err)
	}
}

func TestImportRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := seed(t)
	file := `[
  {"returnOrderCode": "RET-8", "orderType": "CUSTOMER_RETURN",
   "orderItems": [{"returnItemCode": "RI-1", "channelSkuCode": "111"}, {"returnItemCode": "RI-2", "channelSkuCode": "999"}]},
  {"returnOrderCode": "RET-9", "orderType": "CUSTOMER_RETURN", "orderItems": [{"returnItemCode": "RI-1", "channelSkuCode": "222"}]}
]`
	res, st, err := Import(ctx, d, oms, write(t, "bad-sku.json", file), imports.Options{})
	if err != nil || res.Read != 2 || res.Applied != 1 || res.Rejected != 1 || st != (Stats{Added: 1}) {
		t.Fatalf("import: %+v %+v %v", res, st, err)
	}
	b, err := os.ReadFile(res.RejectsFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "line,error,return,returnOrderCode,returnItemCode,channelSkuCode,field" ||
		!strings.HasPrefix(lines[1], `2,"return RET-8 (return 1 of the file), item RI-2: unknown channelSkuCode ""999""`) ||
		!strings.HasSuffix(lines[1], `,1,RET-8,RI-2,999,channelSkuCode`) {
		t.Errorf("rejects file:\n%s", b)
	}
	if _, err := Get(ctx, d, "", "RET-8"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rejected RET-8: %v, want not found", err)
	}
	if got := query(t, d, `SELECT return_code FROM returns`); got != "RET-9;" {
		t.Errorf("returns: %s, want RET-9 only", got)
	}
}

// TestImportRejectReasons: each bad return is rejected whole, with the
// field named in the rejects file; the good one applies.
func TestImportRejectReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := seed(t)
	const item = `"orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111"}]`
	cases := []struct{ ret, item, field, msg string }{
		{`{"orderType":"SELF_SHIP",` + item + `}`, "", "returnOrderCode", "returnOrderCode is required"},
		{`{"returnOrderCode":"B2","orderType":"EXCHANGE",` + item + `}`, "", "orderType", `orderType "EXCHANGE"`},
		{`{"returnOrderCode":"B3","orderType":"SELF_SHIP","locationCode":"ELSEWHERE",` + item + `}`, "", "locationCode", "not the location of partner oms"},
		{`{"returnOrderCode":"B4","orderType":"SELF_SHIP","createdAt":"yesterday",` + item + `}`, "", "createdAt", "createdAt"},
		{`{"returnOrderCode":"B4a","orderType":"SELF_SHIP","returnOrderTime":"04-03-2026 25:99",` + item + `}`, "", "returnOrderTime", "not a date and time"},
		{`{"returnOrderCode":"B4b","orderType":"SELF_SHIP","returnOrderTime":"2026-03-04T18:45:10.000+05:30","createdAt":"2026-03-04",` + item + `}`, "", "createdAt", "give returnOrderTime"},
		{`{"returnOrderCode":"B4c","orderType":"SELF_SHIP","eventType":"RETURN_ORDER_SHIPPED",` + item + `}`, "", "eventType", "want one of RETURN_ORDER_CREATE"},
		{`{"returnOrderCode":"B4d","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":1,"channelSkuCode":"111"}]}`, "", "returnItemCode",
			"orderItems.returnItemCode: a JSON number, want a string"},
		{`{"returnOrderCode":"B4e","ordertype":"SELF_SHIP","orderType":"SELF_SHIP",` + item + `}`, "", "", "ambiguous"},
		{`{"returnOrderCode":"B4f","orderType":"SELF_SHIP","orderItems":{"returnItemCode":"RI-1"}}`, "", "orderItems", "want an array"},
		{`{"returnOrderCode":"B5","orderType":"SELF_SHIP","orderItems":[]}`, "", "orderItems", "orderItems is empty"},
		{`{"returnOrderCode":"B6","orderType":"SELF_SHIP","orderItems":[{"channelSkuCode":"111"}]}`, "#1", "returnItemCode", "returnItemCode is required"},
		{`{"returnOrderCode":"B7","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1"}]}`, "RI-1", "channelSkuCode", "channelSkuCode is required"},
		{`{"returnOrderCode":"B8","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111"},{"returnItemCode":"RI-1","channelSkuCode":"222"}]}`,
			"RI-1", "returnItemCode", "given twice"},
		{`{"returnOrderCode":"B9","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","quantity":0}]}`, "RI-1", "quantity", "above 0"},
		{`{"returnOrderCode":"B10","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","quantity":"1.5"}]}`, "RI-1", "quantity", "above 0"},
		{`{"returnOrderCode":"B11","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","quantity":"two"}]}`, "RI-1", "quantity", "above 0"},
		{`"RET-X"`, "", "", "not a return object"},
	}
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.ret)
	}
	file := "[\n" + strings.Join(lines, ",\n") + ",\n" + `{"returnOrderCode":"OK","orderType":"SELF_SHIP",` + item + "}\n]"
	res, _, err := Import(ctx, d, oms, write(t, "bad.json", file), imports.Options{})
	if err != nil || res.Read != int64(len(cases)+1) || res.Applied != 1 || res.Rejected != int64(len(cases)) {
		t.Fatalf("import: %+v %v", res, err)
	}
	f, err := os.Open(res.RejectsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != len(cases)+1 {
		t.Fatalf("rejects file: %d records, %v", len(recs), err)
	}
	for i, c := range cases {
		r := recs[i+1] // line, error, return, returnOrderCode, returnItemCode, channelSkuCode, field
		if r[0] != fmt.Sprint(i+2) || r[2] != fmt.Sprint(i+1) || r[4] != c.item || r[6] != c.field || !strings.Contains(r[1], c.msg) {
			t.Errorf("reject of %s: %q; want line %d, item %q, field %q, error with %q", c.ret, r, i+2, c.item, c.field, c.msg)
		}
	}
	if got := query(t, d, `SELECT return_code FROM returns`); got != "OK;" {
		t.Errorf("returns: %s, want OK only", got)
	}
}

// TestAmbiguousCode: two partners with the same return code need the
// partner to receive.
func TestAmbiguousCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := seed(t)
	file := `{"returnOrderCode":"RET-1","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"222"}]}`
	// The same bytes from two partners: each is applied for its own partner
	// (the file ledger's "same content" is per partner).
	for _, name := range []string{"oms", "oms2"} {
		p := oms
		p.Name = name
		if res, _, err := Import(ctx, d, p, write(t, name+".json", file), imports.Options{}); err != nil || res.Applied != 1 {
			t.Fatalf("import for %s: %+v %v", name, res, err)
		}
	}
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "oms and oms2") {
		t.Errorf("receive without a partner: %v, want refused naming both", err)
	}
	if _, err := Get(ctx, d, "", "RET-1"); !errors.Is(err, ErrRefused) {
		t.Errorf("Get without a partner: %v, want refused", err)
	}
	rc, err := Receive(ctx, d, Receipt{Partner: "oms2", Return: "RET-1", Item: "RI-1", QC: QCPass})
	if err != nil || rc.Return.Partner != "oms2" || rc.Status != StatusClosed {
		t.Fatalf("receive for oms2: %+v %v", rc, err)
	}
	if got := query(t, d, `SELECT partner, status FROM returns ORDER BY partner`); got != "oms|expected;oms2|closed;" {
		t.Errorf("returns: %s", got)
	}
}

func TestImportInvalidJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := `{"returnOrderCode": "RET-1", "orderType": "SELF_SHIP", "orderItems": [{"returnItemCode": "RI-1", "channelSkuCode": "111"}]}`
	for _, c := range []struct{ name, file, want string }{
		{"syntax error after a good return", "[\n" + good + ",\n" + `{"returnOrderCode": "RET-2" "orderType": "SELF_SHIP"}` + "\n]", "invalid JSON at line 3"},
		{"ends early", "[\n" + good + ",\n" + `{"returnOrderCode": "RET-2"`, "ends in the middle"},
		{"NDJSON then garbage", good + "\nnot json\n", "invalid JSON at line 2"},
		{"empty", "", "no returns"},
		{"top level number", "42", "invalid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := seed(t)
			res, _, err := Import(ctx, d, oms, write(t, "bad.json", c.file), imports.Options{})
			if !errors.Is(err, imports.ErrFile) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("import: %+v %v; want ErrFile with %q", res, err, c.want)
			}
			if got := query(t, d, `SELECT (SELECT count(*) FROM returns), (SELECT count(*) FROM return_items)`); got != "0|0;" {
				t.Errorf("returns, items: %s, want none", got)
			}
		})
	}
}

// receiveSetup imports RET-1 with RI-1 (RED S, 2), RI-2 (RED M) and RI-3
// (RED M).
func receiveSetup(t *testing.T) *db.DB {
	t.Helper()
	d := seed(t)
	file := `{"returnOrderCode":"RET-1","orderType":"CUSTOMER_RETURN","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","quantity":2},
 {"returnItemCode":"RI-2","channelSkuCode":"222","reason":"damaged"},{"returnItemCode":"RI-3","channelSkuCode":"222"}]}`
	if res, _, err := Import(context.Background(), d, oms, write(t, "r.json", file), imports.Options{}); err != nil || res.Applied != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	return d
}

func status(t *testing.T, d *db.DB) string {
	t.Helper()
	r, err := Get(context.Background(), d, "oms", "RET-1")
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

func TestReceive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := receiveSetup(t)
	if s := status(t, d); s != StatusExpected {
		t.Fatalf("status %s, want expected", s)
	}

	// PASS: +2 in RET, in the SKU's biggest stock row there (A1).
	rc, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: "pass"})
	if err != nil || rc.Status != StatusReceived || rc.Item.QCStatus != QCPass || rc.Item.Location != "A1" || !rc.Item.Received || rc.Message == 0 {
		t.Fatalf("receive RI-1 PASS: %+v %v", rc, err)
	}
	if got, want := stock(t, d), "RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock after PASS: %s, want %s", got, want)
	}
	if got, want := query(t, d, `SELECT file_id, line, code, effect, item, sku, warehouse, location, quantity, before_on_hand, after_on_hand,
  reference, reason, "user" FROM inventory_txns ORDER BY id`),
		"NULL|0|R|R|IT1|RED S|RET|A1|2|5|7|RET-1|return RET-1 item RI-1 passed QC|returns receive;"; got != want {
		t.Errorf("inventory_txns: %s, want %s", got, want)
	}
	if got := query(t, d, `SELECT change_seq > 0 FROM inventory WHERE warehouse = 'RET' AND location = 'A1'`); got != "1;" {
		t.Errorf("the stock row has no change stamp: %s", got)
	}

	// FAIL: the result only.
	rc, err = Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-2", QC: QCFail, Reason: "torn sole"})
	if err != nil || rc.Status != StatusReceived || rc.Item.QCStatus != QCFail || rc.Item.QCReason != "torn sole" || rc.Item.Location != "" {
		t.Fatalf("receive RI-2 FAIL: %+v %v", rc, err)
	}
	if got, want := stock(t, d), "RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock after FAIL: %s, want %s", got, want)
	}
	if got := query(t, d, `SELECT count(*) FROM inventory_txns`); got != "1;" {
		t.Errorf("inventory_txns after FAIL: %s rows, want 1", got)
	}

	// Refused: nothing changes, not the stock, the items, the updates.
	state := func() string {
		return stock(t, d) + query(t, d, `SELECT count(*) FROM inventory_txns`) +
			query(t, d, `SELECT item_code, qc_status, qc_reason, received, received_at, location, message_id FROM return_items ORDER BY item_code`) +
			query(t, d, `SELECT id, status, payload FROM order_messages ORDER BY id`) + query(t, d, `SELECT status, updated_at FROM returns`)
	}
	before := state()
	for _, c := range []struct {
		rc   Receipt
		want error
	}{
		{Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass}, ErrRefused},
		{Receipt{Return: "RET-1", Item: "RI-2", QC: QCPass}, ErrRefused},
		{Receipt{Return: "RET-9", Item: "RI-1", QC: QCPass}, ErrNotFound},
		{Receipt{Partner: "other", Return: "RET-1", Item: "RI-3", QC: QCPass}, ErrNotFound},
		{Receipt{Return: "RET-1", Item: "RI-9", QC: QCPass}, ErrNoItem},
		{Receipt{Return: "RET-1", Item: "RI-3", QC: "MAYBE"}, ErrRefused},
	} {
		if _, err := Receive(ctx, d, c.rc); !errors.Is(err, c.want) {
			t.Errorf("Receive(%+v): %v, want %v", c.rc, err, c.want)
		}
	}
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCFail}); err == nil ||
		!strings.Contains(err.Error(), "return RET-1 item RI-1 was received already at ") || !strings.Contains(err.Error(), "(QC PASS)") {
		t.Errorf("second receipt of RI-1: %v", err)
	}
	if after := state(); after != before {
		t.Errorf("a refused receipt changed the state:\n%s\nwant\n%s", after, before)
	}

	// PASS of a SKU with no stock in the warehouse: a new row, no location.
	rc, err = Receive(ctx, d, Receipt{Partner: "oms", Return: "RET-1", Item: "RI-3", QC: QCPass})
	if err != nil || rc.Status != StatusClosed || rc.Item.Location != "" {
		t.Fatalf("receive RI-3 PASS: %+v %v", rc, err)
	}
	if got, want := stock(t, d), "RED M|RET||1;RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock after the last PASS: %s, want %s", got, want)
	}
	if r, _ := Get(ctx, d, "", "RET-1"); r.Status != StatusClosed || r.Received != 3 || r.Passed != 2 {
		t.Errorf("return at the end: %+v", r)
	}
}

func TestReceiveLocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := receiveSetup(t)
	if rc, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass, Location: "B1"}); err != nil || rc.Item.Location != "B1" {
		t.Fatalf("receive into B1: %+v %v", rc, err)
	}
	if got, want := stock(t, d), "RED S|RET|A1|5;RED S|RET|B1|4;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock: %s, want %s", got, want)
	}
	if got := query(t, d, `SELECT location FROM return_items WHERE item_code = 'RI-1'`); got != "B1;" {
		t.Errorf("item location: %s", got)
	}
}

// TestReturnUpdates: each result goes into the return's ready update; once
// that is claimed by an export, the next result starts a new one.
func TestReturnUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := receiveSetup(t)
	messages := func() string {
		return query(t, d, `SELECT m.id, m.stream, m.partner, r.return_code, m.event_type, m.status FROM order_messages m
JOIN returns r ON r.id = m.return_id ORDER BY m.id`)
	}
	if got := messages(); got != "" {
		t.Fatalf("updates before any result: %s", got)
	}
	// In code order: the items of an update are in the order received,
	// which db.Now tells only to the second.
	rc1, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass})
	if err != nil {
		t.Fatal(err)
	}
	rc2, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-2", QC: QCFail, Reason: "torn sole"})
	if err != nil {
		t.Fatal(err)
	}
	if rc1.Message == 0 || rc2.Message != rc1.Message {
		t.Errorf("messages %d and %d: want one update for both", rc1.Message, rc2.Message)
	}
	if got, want := messages(), fmt.Sprint(rc1.Message)+"|returns|oms|RET-1|RETURN_ORDER_PROCESSED|ready;"; got != want {
		t.Errorf("order_messages: %s, want %s", got, want)
	}
	if got := query(t, d, `SELECT item_code, message_id FROM return_items ORDER BY item_code`); got != "RI-1|"+fmt.Sprint(rc1.Message)+";RI-2|"+fmt.Sprint(rc1.Message)+";RI-3|NULL;" {
		t.Errorf("return_items message ids: %s", got)
	}
	var payload string
	if err := d.QueryRowContext(ctx, `SELECT payload FROM order_messages WHERE id = ?`, rc1.Message).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var u Update
	if err := json.Unmarshal([]byte(payload), &u); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	torn := "torn sole"
	want := Update{ReturnOrderCode: "RET-1", LocationCode: "WH-RET", ChannelName: "oms",
		OrderItems: []UpdateItem{{ReturnItemCode: "RI-1", ChannelSkuCode: "111", QCStatus: QCPass},
			{ReturnItemCode: "RI-2", ChannelSkuCode: "222", QCStatus: QCFail, QCReason: &torn}}}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("update:\n%+v\nwant\n%+v", u, want)
	}
	// The keys of Increff's "Return Order Processing Update" page, no more.
	if want := `{"returnOrderCode":"RET-1","forwardOrderCode":"","locationCode":"WH-RET","channelName":"oms","awbNumber":"","transporter":"",` +
		`"orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111","qcStatus":"PASS","qcReason":null},` +
		`{"returnItemCode":"RI-2","channelSkuCode":"222","qcStatus":"FAIL","qcReason":"torn sole"}]}`; payload != want {
		t.Errorf("payload:\n%s\nwant\n%s", payload, want)
	}

	// An export claims the update; the next result starts a new one.
	if n, err := orders.Claim(ctx, d, orders.StreamReturns, "oms", 1, 0, 0); err != nil || n != 1 {
		t.Fatalf("claim: %d %v", n, err)
	}
	rc3, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-3", QC: QCPass})
	if err != nil || rc3.Message == rc1.Message {
		t.Fatalf("receive after the claim: %+v %v", rc3, err)
	}
	msgs, err := db.QueryAll(ctx, d, func(s db.Scanner) (string, error) {
		var id int64
		var status string
		var u Update
		var payload []byte
		if err := s.Scan(&id, &status, &payload); err != nil {
			return "", err
		}
		err := json.Unmarshal(payload, &u)
		return fmt.Sprintf("%d|%s|%d;", id, status, len(u.OrderItems)), err
	}, `SELECT id, status, payload FROM order_messages ORDER BY id`)
	if got, want := strings.Join(msgs, ""), fmt.Sprint(rc1.Message)+"|processing|2;"+fmt.Sprint(rc3.Message)+"|ready|1;"; err != nil || got != want {
		t.Errorf("order_messages after the claim: %s %v, want %s", got, err, want)
	}
}

// TestCancel: the return events RETURN_ORDER_CANCEL and
// RETURN_ORDER_PARTIAL_CANCEL cancel items not received; a cancelled item
// or return is never received; a received item is never cancelled.
func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := receiveSetup(t)
	var warned []string
	o := imports.Options{Warn: func(s string) { warned = append(warned, s) }}
	n := 0
	apply := func(file string) (*imports.Result, Stats, string) {
		t.Helper()
		n++
		res, st, err := Import(ctx, d, oms, write(t, fmt.Sprintf("c%d.json", n), file), o)
		if err != nil {
			t.Fatalf("import %s: %v", file, err)
		}
		rej := ""
		if res.RejectsFile != "" {
			b, _ := os.ReadFile(res.RejectsFile)
			rej = string(b)
		}
		return res, st, rej
	}
	itemState := func(code string) string {
		return query(t, d, `SELECT i.item_code, i.received, i.cancelled_at IS NOT NULL FROM return_items i JOIN returns r ON r.id = i.return_id
WHERE r.return_code = ? ORDER BY i.item_code`, code)
	}

	// A cancel of a return that does not exist.
	res, _, rej := apply(`{"returnOrderCode":"RET-9","eventType":"RETURN_ORDER_CANCEL","status":"CANCELLED","orderItems":[]}`)
	if res.Rejected != 1 || !strings.Contains(rej, "return RET-9 does not exist for partner oms: nothing to cancel") || !strings.Contains(rej, ",returnOrderCode\n") {
		t.Errorf("cancel of a return that does not exist: %+v\n%s", res, rej)
	}

	// A partial cancel of RI-3; RI-3 can no longer be received.
	_, st, rej := apply(`{"returnOrderCode":"RET-1","eventType":"RETURN_ORDER_PARTIAL_CANCEL","orderItems":[
 {"returnItemCode":"RI-2","channelSkuCode":"222","status":"CREATED"},{"returnItemCode":"RI-3","channelSkuCode":"222","status":"CANCELLED"}]}`)
	if st != (Stats{Cancelled: 1}) || rej != "" {
		t.Fatalf("partial cancel: %+v %s", st, rej)
	}
	if got := itemState("RET-1"); got != "RI-1|0|0;RI-2|0|0;RI-3|0|1;" {
		t.Errorf("items after the partial cancel: %s", got)
	}
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-3", QC: QCPass}); !errors.Is(err, ErrCancelled) {
		t.Errorf("receive of a cancelled item: %v, want ErrCancelled", err)
	}
	if got := stock(t, d); got != seeded {
		t.Errorf("stock after the refused receipt: %s", got)
	}

	// RI-1 is received: a full cancel is refused whole.
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCFail}); err != nil {
		t.Fatal(err)
	}
	res, _, rej = apply(`{"returnOrderCode":"RET-1","eventType":"RETURN_ORDER_CANCEL","status":"CANCELLED","orderItems":[]}`)
	if res.Rejected != 1 || !strings.Contains(rej, "item RI-1 was received at ") || !strings.Contains(rej, "a received item cannot be cancelled") {
		t.Errorf("cancel of a return with a received item: %+v\n%s", res, rej)
	}
	if got := itemState("RET-1"); got != "RI-1|1|0;RI-2|0|0;RI-3|0|1;" {
		t.Errorf("items after the refused cancel: %s", got)
	}

	// RET-2 is cancelled whole (Increff's sample gives an item twice).
	cancel2 := `{"returnOrderCode":"RET-2","eventType":"RETURN_ORDER_CANCEL","status":"CANCELLED","orderType":"CUSTOMER_RETURN","orderItems":[
 {"returnItemCode":"RI-1","channelSkuCode":"111","status":"CANCELLED","isBundled":null},{"returnItemCode":"RI-1","channelSkuCode":"111","status":"CANCELLED","isBundled":null}]}`
	apply(`{"returnOrderCode":"RET-2","eventType":"RETURN_ORDER_CREATE","orderType":"CUSTOMER_RETURN","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111"},{"returnItemCode":"RI-2","channelSkuCode":"111"}]}`)
	if _, st, rej := apply(cancel2); st != (Stats{Cancelled: 1}) || rej != "" {
		t.Fatalf("cancel: %+v %s", st, rej)
	}
	r, err := Get(ctx, d, "oms", "RET-2")
	if err != nil || r.Status != StatusCancelled || r.CancelledAt == "" || r.EventType != EventCancel {
		t.Errorf("RET-2 after the cancel: %+v %v", r, err)
	}
	if _, err := Receive(ctx, d, Receipt{Return: "RET-2", Item: "RI-2", QC: QCPass}); !errors.Is(err, ErrCancelled) ||
		!strings.Contains(err.Error(), "return RET-2 was cancelled by the partner at ") {
		t.Errorf("receive of a cancelled return: %v", err)
	}
	// The same cancel again: nothing.
	warned = nil
	if _, st, rej := apply(cancel2 + "\n"); st != (Stats{Unchanged: 1}) || rej != "" || !strings.Contains(strings.Join(warned, "\n"), "cancelled before: nothing done") {
		t.Errorf("the same cancel again: %+v %s %q", st, rej, warned)
	}
	// A changed create after the cancel: refused.
	res, _, rej = apply(`{"returnOrderCode":"RET-2","eventType":"RETURN_ORDER_UPDATE","orderType":"CUSTOMER_RETURN","awbNumber":"NEW","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111"}]}`)
	if res.Rejected != 1 || !strings.Contains(rej, "a cancelled return does not take a later RETURN_ORDER_UPDATE") {
		t.Errorf("update after the cancel: %+v %s", res, rej)
	}
	// A cancel whose status says otherwise.
	res, _, rej = apply(`{"returnOrderCode":"RET-1","eventType":"RETURN_ORDER_CANCEL","status":"CREATED","orderItems":[]}`)
	if res.Rejected != 1 || !strings.Contains(rej, `a RETURN_ORDER_CANCEL has status CANCELLED`) {
		t.Errorf("cancel with status CREATED: %+v %s", res, rej)
	}
	if got := query(t, d, `SELECT return_code, status, cancelled_at IS NOT NULL FROM returns ORDER BY return_code`); got != "RET-1|received|0;RET-2|expected|1;" {
		t.Errorf("returns: %s", got)
	}
	if got := stock(t, d); got != seeded {
		t.Errorf("stock at the end: %s", got)
	}
}
