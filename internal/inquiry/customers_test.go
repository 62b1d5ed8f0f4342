package inquiry

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// allCustomers reads every live customer.
func allCustomers(t *testing.T, d *db.DB) []Customer {
	t.Helper()
	cs, err := db.QueryAll(context.Background(), d, func(s db.Scanner) (Customer, error) { return scanCustomer(s) },
		`SELECT `+customerCols+` FROM customers WHERE deleted_at IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// expected is the search q worked out in Go over every customer: the
// specification SearchCustomers must meet page by page.
func expected(all []Customer, q CustomerQuery) []string {
	type row struct{ k1, k2, c string }
	var rows []row
	match := func(v, want string) bool {
		if q.Exact {
			return v == want
		}
		return strings.HasPrefix(v, want)
	}
	for _, c := range all {
		var r row
		switch q.Field {
		case ByName:
			r = row{fold(c.LastName), fold(c.FirstName), c.Customer}
		case ByAltCustomer:
			r = row{k1: fold(c.AltCustomer), c: c.Customer}
		case ByPostalCode:
			r = row{k1: fold(c.PostalCode), c: c.Customer}
		case ByEmail:
			r = row{k1: fold(c.Email), c: c.Customer}
		case ByPhone:
			r = row{k1: Digits(c.Phone), c: c.Customer}
		case ByCompany:
			r = row{k1: fold(c.CompanyName), c: c.Customer}
		}
		value := fold(q.Value)
		if q.Field == ByPhone {
			value = Digits(q.Value)
		}
		if r.k1 == "" || !match(r.k1, value) || (q.FirstName != "" && !match(r.k2, fold(q.FirstName))) {
			continue
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.k1 != b.k1 {
			return a.k1 < b.k1
		}
		if a.k2 != b.k2 {
			return a.k2 < b.k2
		}
		return a.c < b.c
	})
	out := []string{}
	for _, r := range rows {
		out = append(out, r.c)
	}
	return out
}

// pages runs q page by page and returns the customer numbers in order and
// the number of pages.
func pages(t *testing.T, d *db.DB, q CustomerQuery) ([]string, int) {
	t.Helper()
	got := []string{}
	n := 0
	for {
		p, err := SearchCustomers(context.Background(), d, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		n++
		limit := q.Limit
		if limit == 0 {
			limit = DefaultLimit
		}
		if len(p.Customers) > limit || (p.Next != "" && len(p.Customers) != limit) {
			t.Fatalf("%+v: page %d has %d customers, next %q", q, n, len(p.Customers), p.Next)
		}
		for _, c := range p.Customers {
			got = append(got, c.Customer)
		}
		if p.Next == "" {
			return got, n
		}
		if n > 1000 {
			t.Fatalf("%+v: endless paging", q)
		}
		q.After = p.Next
	}
}

func TestSearchCustomersAgainstSpec(t *testing.T) {
	d := demoDB(t)
	all := allCustomers(t, d)
	queries := []CustomerQuery{
		{Field: ByName, Value: "r"},
		{Field: ByName, Value: "R"},
		{Field: ByName, Value: "ROSSI"},
		{Field: ByName, Value: "rossi", Exact: true},
		{Field: ByName, Value: "ross", Exact: true},
		{Field: ByName, Value: "rossi", FirstName: "J"},
		{Field: ByName, Value: "rossi", FirstName: "jonah", Exact: true},
		{Field: ByName, Value: "Ø"},
		{Field: ByName, Value: "o'b"},
		{Field: ByName, Value: "m"},
		{Field: ByName, Value: "lee", FirstName: "a"},
		{Field: ByAltCustomer, Value: "s000"},
		{Field: ByAltCustomer, Value: "S0001-001", Exact: true},
		{Field: ByPostalCode, Value: "80"},
		{Field: ByPostalCode, Value: "80384", Exact: true},
		{Field: ByEmail, Value: "J"},
		{Field: ByEmail, Value: "zoe.orsted@example.net", Exact: true},
		{Field: ByPhone, Value: "303"},
		{Field: ByPhone, Value: "(303) 555-85"},
		{Field: ByPhone, Value: "303.555.8518", Exact: true},
		{Field: ByCompany, Value: "s"},
		{Field: ByCompany, Value: "summit trading co.", Exact: true},
		{Field: ByCompany, Value: `"big`},
		{Field: ByName, Value: "zzz"},
	}
	for _, q := range queries {
		want := expected(all, q)
		for _, limit := range []int{1, 2, 7, 0, 1000} {
			q.Limit = limit
			got, n := pages(t, d, q)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v in %d pages:\n got %q\nwant %q", q, n, got, want)
			}
		}
	}
	// The spec is not trivially empty.
	if got := expected(all, CustomerQuery{Field: ByName, Value: "r"}); len(got) != 18 {
		t.Errorf("last names starting with r: %d, want 18 (4 Reyes, 14 Rossi)", len(got))
	}
}

func TestSearchCustomerNumber(t *testing.T) {
	d := demoDB(t)
	p, err := SearchCustomers(context.Background(), d, CustomerQuery{Field: ByCustomer, Value: "100002"})
	if err != nil {
		t.Fatal(err)
	}
	want := Customer{Customer: "100002", AltCustomer: "S0001-001", CustomerClass: "RT", FirstName: "Zoë", LastName: "Ørsted",
		Address1: "3587 Juniper Ct", City: "Boulder", State: "CO", PostalCode: "80384", Country: "US",
		Email: "zoe.orsted@example.net", Phone: "303-555-8518", EmailOptIn: true}
	if len(p.Customers) != 1 || p.Customers[0] != want || p.Next != "" {
		t.Errorf("got %+v", p)
	}
	// A customer number matches exactly: no prefix.
	p, err = SearchCustomers(context.Background(), d, CustomerQuery{Field: ByCustomer, Value: "10000"})
	if err != nil || p.Customers == nil || len(p.Customers) != 0 {
		t.Errorf("prefix of a customer number: %+v, %v", p, err)
	}
}

// Deleted customers (tombstones) are never found.
func TestSearchCustomersDeleted(t *testing.T) {
	d := demoDB(t)
	exec(t, d, `UPDATE customers SET deleted_at = '2026-01-01T00:00:00Z' WHERE customer IN ('100002', '100164')`)
	for _, q := range []CustomerQuery{
		{Field: ByCustomer, Value: "100002"}, {Field: ByName, Value: "ørsted"}, {Field: ByName, Value: "Ørsted"},
		{Field: ByAltCustomer, Value: "S0001-001"}, {Field: ByEmail, Value: "zoe.orsted@"}, {Field: ByPhone, Value: "3035558518"},
	} {
		p, err := SearchCustomers(context.Background(), d, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Customers) != 0 {
			t.Errorf("%+v found %+v", q, p.Customers)
		}
	}
	got, _ := pages(t, d, CustomerQuery{Field: ByName, Value: "rossi", Limit: 3})
	if len(got) != 13 || strings.Contains(strings.Join(got, " "), "100164") {
		t.Errorf("Rossis without 100164: %q", got)
	}
}

// A page cursor holds the last row's key, so a page continues where the
// last one ended although customers were added before and after it.
func TestSearchCustomersCursorIsStable(t *testing.T) {
	d := demoDB(t)
	q := CustomerQuery{Field: ByName, Value: "rossi", Limit: 5}
	first, err := SearchCustomers(context.Background(), d, q)
	if err != nil {
		t.Fatal(err)
	}
	loadCSV(t, d, "customers", "customer,first_name,last_name\n900001,Aaron,Rossi\n900002,Zed,Rossi\n")
	q.After = first.Next
	rest, _ := pages(t, d, q)
	seen := map[string]bool{}
	for _, c := range first.Customers {
		seen[c.Customer] = true
	}
	for _, c := range rest {
		if seen[c] {
			t.Errorf("customer %s on two pages", c)
		}
		seen[c] = true
	}
	if seen["900001"] || !seen["900002"] || len(seen) != 15 {
		t.Errorf("after adding Aaron (before the cursor) and Zed (after it): %d customers seen: %v", len(seen), seen)
	}
}

func TestSearchCustomersBadQueries(t *testing.T) {
	d := demoDB(t)
	ctx := context.Background()
	page, err := SearchCustomers(ctx, d, CustomerQuery{Field: ByName, Value: "r", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	cursor := page.Next
	other, err := SearchCustomers(ctx, d, CustomerQuery{Field: ByEmail, Value: "j", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	damaged := []byte(cursor)
	damaged[len(damaged)/2] ^= 1
	for _, tc := range []struct {
		q    CustomerQuery
		kind error
		want string
	}{
		{CustomerQuery{}, ErrQuery, `search field ""`},
		{CustomerQuery{Field: "city", Value: "x"}, ErrQuery, `search field "city": want one of customer, alt_customer, company, email, name, phone, postal_code`},
		{CustomerQuery{Field: ByName}, ErrQuery, "last_name needs a value"},
		{CustomerQuery{Field: ByCompany}, ErrQuery, "company needs a value"},
		{CustomerQuery{Field: ByPhone, Value: "(---)"}, ErrQuery, `phone "(---)" has no digits`},
		{CustomerQuery{Field: ByEmail, Value: "a", FirstName: "b"}, ErrQuery, "first_name needs last_name"},
		{CustomerQuery{Field: ByName, Value: "r", Limit: -1}, ErrQuery, "limit -1: want 1 to 1000"},
		{CustomerQuery{Field: ByName, Value: "r", Limit: 1001}, ErrQuery, "limit 1001: want 1 to 1000"},
		{CustomerQuery{Field: ByName, Value: "r", After: "not a cursor!"}, ErrCursor, "not a page cursor of posbridge"},
		{CustomerQuery{Field: ByName, Value: "r", After: "AAAA"}, ErrCursor, "not a page cursor of posbridge"},
		{CustomerQuery{Field: ByName, Value: "r", After: string(damaged)}, ErrCursor, "not a page cursor of posbridge"},
		{CustomerQuery{Field: ByName, Value: "r", After: cursor[:len(cursor)-2]}, ErrCursor, "not a page cursor of posbridge"},
		{CustomerQuery{Field: ByName, Value: "ro", After: cursor}, ErrCursor, "belongs to another search"},
		{CustomerQuery{Field: ByName, Value: "r", Exact: true, After: cursor}, ErrCursor, "belongs to another search"},
		{CustomerQuery{Field: ByName, Value: "r", FirstName: "a", After: cursor}, ErrCursor, "belongs to another search"},
		{CustomerQuery{Field: ByName, Value: "r", After: other.Next}, ErrCursor, "belongs to another search"},
		{CustomerQuery{Field: ByCustomer, Value: "100001", After: cursor}, ErrCursor, "belongs to another search"},
	} {
		_, err := SearchCustomers(ctx, d, tc.q)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %v containing %q", tc.q, err, tc.kind, tc.want)
		}
	}
	// The same search in another case continues: it is the same search.
	if _, err := SearchCustomers(ctx, d, CustomerQuery{Field: ByName, Value: "R", Limit: 9, After: cursor}); err != nil {
		t.Errorf("the cursor of r with R: %v", err)
	}
}

// A cursor whose key the search cannot return (made with the right
// checksum, but outside the search's range) is refused.
func TestSearchCustomersForeignKey(t *testing.T) {
	d := demoDB(t)
	fp := fingerprint(ByName, "r", "", false)
	c := encodeCursor(fp, []string{"aaa", "b", "100001"})
	_, err := SearchCustomers(context.Background(), d, CustomerQuery{Field: ByName, Value: "r", After: c})
	if !errors.Is(err, ErrCursor) {
		t.Errorf("got %v, want ErrCursor", err)
	}
}

func TestNewCustomerQuery(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want CustomerQuery
		err  string
	}{
		{map[string]string{"last_name": "smith", "first_name": "j"}, CustomerQuery{Field: ByName, Value: "smith", FirstName: "j"}, ""},
		{map[string]string{"phone": "303", "email": ""}, CustomerQuery{Field: ByPhone, Value: "303"}, ""},
		{map[string]string{"company": "x"}, CustomerQuery{Field: ByCompany, Value: "x"}, ""},
		{map[string]string{}, CustomerQuery{}, "give one of customer, alt_customer, last_name, postal_code, email, phone or company"},
		{map[string]string{"email": "a", "phone": "1"}, CustomerQuery{}, "give only one of customer, alt_customer, last_name, postal_code, email, phone or company, not email and phone"},
		{map[string]string{"first_name": "j"}, CustomerQuery{}, "first_name needs last_name"},
		{map[string]string{"first_name": "j", "email": "a"}, CustomerQuery{}, "first_name needs last_name"},
	} {
		q, err := NewCustomerQuery(tc.in)
		switch {
		case tc.err == "" && (err != nil || q != tc.want):
			t.Errorf("%v: %+v, %v; want %+v", tc.in, q, err, tc.want)
		case tc.err != "" && (!errors.Is(err, ErrQuery) || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%v: %v, want %q", tc.in, err, tc.err)
		}
	}
}

// fold must fold exactly as the database's lower() does (SQLite's, or
// PostgreSQL's under the C collation: ASCII only), or searches would miss
// (the indexes hold lower()).
func TestFoldIsSQLiteLower(t *testing.T) {
	d := demoDB(t)
	for _, s := range []string{"Smith", "ÀBC Ørsted Zoë", "O'BRIEN", "ŁUCJA", "İstanbul", "MAßE", "a\x00B", "@[`{"} {
		if strings.Contains(s, "\x00") && d.Dialect == db.Postgres {
			continue // PostgreSQL text holds no NUL
		}
		var lower string
		if err := d.QueryRow(`SELECT lower(?)`, s).Scan(&lower); err != nil {
			t.Fatal(err)
		}
		if got := fold(s); got != lower {
			t.Errorf("fold(%q) = %q, SQLite lower() = %q", s, got, lower)
		}
	}
	var got string
	if err := d.QueryRow(`SELECT `+strings.ReplaceAll(phoneDigits, "phone", "?"), "+1 (303) 555.0101/2-3").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "130355501012"+"3" {
		t.Errorf("phone digits in SQL: %q", got)
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"a": "b", "sm": "sn", "a\xff": "b", "\xff\xff": "", "Ø": "Ù"} {
		if got := prefixEnd(in); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}
