package inquiry

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// sqlitePlans skips a test of query plans on PostgreSQL: the plans checked
// are SQLite's (EXPLAIN QUERY PLAN and its index names), and PostgreSQL's
// planner picks by table statistics rather than by the statement alone.
func sqlitePlans(t *testing.T) {
	if dbtest.Postgres() {
		t.Skip("query plans are checked on SQLite")
	}
}

// plan returns the lines of EXPLAIN QUERY PLAN of query.
func plan(t *testing.T, d *db.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return lines
}

// scan matches a full scan of a table, named or by its alias (SCAN v).
var scan = regexp.MustCompile(`^SCAN (?:[a-z_]+)(?: |$)`)

// checkPlan fails when a table is scanned instead of searched, when an
// expected index is not used, or (sorted false) when rows are sorted
// instead of read in index order.
func checkPlan(t *testing.T, name string, lines []string, sorted bool, indexes ...string) {
	t.Helper()
	all := strings.Join(lines, "\n")
	for _, l := range lines {
		if scan.MatchString(l) {
			t.Errorf("%s: full scan: %s\nplan:\n%s", name, l, all)
		}
		if !sorted && strings.Contains(l, "TEMP B-TREE") {
			t.Errorf("%s: sorts instead of reading in index order\nplan:\n%s", name, all)
		}
	}
	for _, ix := range indexes {
		if !strings.Contains(all, " "+ix+" ") && !strings.HasSuffix(all, " "+ix) {
			t.Errorf("%s: does not use %s\nplan:\n%s", name, ix, all)
		}
	}
}

// Every search reads through an index: no full scan of customers or
// skus, whatever the field, exactness, first name or cursor, and pages are
// read in index order (no sort).
func TestSearchPlansUseIndexes(t *testing.T) {
	sqlitePlans(t)
	d := demoDB(t)
	index := map[string]string{ByName: "customers_name", ByAltCustomer: "customers_alt", ByPostalCode: "customers_postal_code",
		ByEmail: "customers_email", ByPhone: "customers_phone", ByCompany: "customers_company"}
	cursorKey := map[string][]string{ByName: {"rossi", "jonah", "100119"}}
	for field, ix := range index {
		for _, exact := range []bool{false, true} {
			for _, first := range []string{"", "jo"} {
				if first != "" && field != ByName {
					continue
				}
				for _, withCursor := range []bool{false, true} {
					q := CustomerQuery{Field: field, Value: "ro", FirstName: first, Exact: exact}
					if field == ByPhone {
						q.Value = "303"
					}
					s, err := q.plan()
					if err != nil {
						t.Fatal(err)
					}
					if withCursor {
						key := cursorKey[field]
						if key == nil {
							key = []string{s.value + "x", "100050"}
						}
						if exact {
							key[0] = s.value
						}
						if first != "" {
							key[1] = s.first
							if !exact {
								key[1] += "nah"
							}
						}
						s.after = key
					}
					name := field
					if exact {
						name += " exact"
					}
					if first != "" {
						name += " with first name"
					}
					if withCursor {
						name += " after a cursor"
					}
					for i, seg := range s.segments() {
						query, args := s.sql(seg, 51)
						checkPlan(t, name+", segment "+string(rune('1'+i)), plan(t, d, query, args...), false, ix)
					}
				}
			}
		}
	}
	checkPlan(t, "customer number", plan(t, d, customerByNumber, "100001"), false, "sqlite_autoindex_customers_1")
}

func TestInventoryAndHistoryPlansUseIndexes(t *testing.T) {
	sqlitePlans(t)
	d := demoDB(t)
	for _, tc := range []struct {
		name    string
		q       InventoryQuery
		indexes []string
	}{
		{"item", InventoryQuery{Item: "IT0000001"}, nil},
		{"item and sku", InventoryQuery{Item: "IT0000001", SKU: "BLK-8"}, nil},
		{"upc", InventoryQuery{UPC: "019876000205"}, []string{"skus_upc"}},
		{"retail ref", InventoryQuery{RetailRef: "30000001"}, []string{"skus_retail_ref"}},
	} {
		query, args := skuQuery(tc.q)
		checkPlan(t, "skus by "+tc.name, plan(t, d, query, args...), false, tc.indexes...)
	}
	for _, q := range []InventoryQuery{{}, {Warehouse: "DC1"}, {ExcludeNonAllocatable: true}, {Warehouse: "RET", ExcludeNonAllocatable: true}} {
		args := []any{"IT0000001", "BLK-8"}
		if q.Warehouse != "" {
			args = append(args, q.Warehouse)
		}
		checkPlan(t, "stock", plan(t, d, stockQuery(q), args...), false)
	}
	query, args := ordersQuery("100010", "", 10)
	// The customer's orders are sorted by date: a handful of rows.
	checkPlan(t, "orders", plan(t, d, query, args...), true, "invoices_customer")
	query, args = ordersQuery("100010", "20012", 10)
	checkPlan(t, "one order", plan(t, d, query, args...), true, "invoices_customer")
	query, args = invoicesQuery("100010", []string{"20012", "20013"})
	checkPlan(t, "invoices", plan(t, d, query, args...), true, "invoices_customer")
	query, args = customerQuery(HistoryQuery{AltCustomer: "S0001-001"})
	checkPlan(t, "customer by alternate number", plan(t, d, query, args...), false, "customers_alt")
}
