package inquiry

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
)

// phoneDigits is a customer's phone without its punctuation. Migration
// 0006 indexes the same expression (customers_phone); the two must stay
// identical, or a phone search scans every customer (plan_test.go checks).
const phoneDigits = `replace(replace(replace(replace(replace(replace(replace(phone, '-', ''), ' ', ''), '(', ''), ')', ''), '.', ''), '+', ''), '/', '')`

// searchFields gives per search field the column that must not be empty
// (the condition of its partial index) and its sort key before the
// customer number: the indexed expressions of migration 0006.
var searchFields = map[string]struct {
	column string
	keys   []string
}{
	ByAltCustomer: {"alt_customer", []string{"lower(alt_customer)"}},
	ByName:        {"last_name", []string{"lower(last_name)", "lower(first_name)"}},
	ByPostalCode:  {"postal_code", []string{"lower(postal_code)"}},
	ByEmail:       {"email", []string{"lower(email)"}},
	ByPhone:       {"phone", []string{phoneDigits}},
	ByCompany:     {"company_name", []string{"lower(company_name)"}},
}

// customerCols are the columns scanCustomer reads.
const customerCols = `customer, alt_customer, customer_class, first_name, last_name, company_name, address1, address2,
  city, state, postal_code, country, email, phone, email_opt_in`

// customerByNumber selects a live customer by number.
const customerByNumber = `SELECT ` + customerCols + ` FROM customers WHERE customer = ? AND deleted_at IS NULL`

func scanCustomer(s db.Scanner, extra ...any) (Customer, error) {
	var c Customer
	err := s.Scan(append([]any{&c.Customer, &c.AltCustomer, &c.CustomerClass, &c.FirstName, &c.LastName, &c.CompanyName,
		&c.Address1, &c.Address2, &c.City, &c.State, &c.PostalCode, &c.Country, &c.Email, &c.Phone, &c.EmailOptIn}, extra...)...)
	return c, err
}

// fold lower-cases A-Z only, as SQLite's lower() does (posbridge's SQLite
// has no ICU): a search folds its value the way the indexes fold the
// fields. Other letters match only in the case they were stored in.
func fold(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Digits keeps the digits of a phone number: what a phone search
// compares.
func Digits(s string) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// prefixEnd is the least string above every string that starts with p
// (bytewise, as SQLite compares text), or "" when there is none: a prefix
// search is the index range p <= key < prefixEnd(p).
func prefixEnd(p string) string {
	b := []byte(p)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return ""
	}
	b[len(b)-1]++
	return string(b)
}

// search is a valid CustomerQuery as the database is asked it.
type search struct {
	q      CustomerQuery
	column string
	keys   []string // sort key expressions before the customer number
	value  string   // folded (phone: its digits)
	first  string   // folded first name, "" for none
	limit  int
	fp     [8]byte
	// after is the key of the last customer of the page before: one
	// value per sort key expression, then the customer number.
	after []string
}

// plan checks q and works out how to ask it.
func (q CustomerQuery) plan() (*search, error) {
	s := &search{q: q, limit: q.Limit}
	if q.Limit == 0 {
		s.limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return nil, queryErr(input("limit"), fmt.Sprintf(" %d: want 1 to %d", q.Limit, MaxLimit))
	}
	f, ok := searchFields[q.Field]
	if !ok && q.Field != ByCustomer {
		fields := []string{ByCustomer}
		for k := range searchFields {
			fields = append(fields, k)
		}
		sort.Strings(fields[1:])
		return nil, queryErr(fmt.Sprintf("search field %q: want one of %s", q.Field, strings.Join(fields, ", ")))
	}
	in := input(searchInput(q.Field))
	if q.Value == "" {
		return nil, queryErr(in, " needs a value")
	}
	if q.FirstName != "" && q.Field != ByName {
		return nil, queryErr(input("first_name"), " needs ", input("last_name"), " (names are searched by last name, then first name)")
	}
	if q.Field == ByCustomer {
		if q.After != "" {
			return nil, cursorErr(input("after"), " belongs to another search: a customer number finds one customer, on one page")
		}
		return s, nil
	}
	s.column, s.keys = f.column, f.keys
	s.value = fold(q.Value)
	if q.Field == ByPhone {
		if s.value = Digits(q.Value); s.value == "" {
			return nil, queryErr(in, fmt.Sprintf(" %q has no digits (phones are compared by their digits)", q.Value))
		}
	}
	s.first = fold(q.FirstName)
	s.fp = fingerprint(q.Field, s.value, s.first, q.Exact)
	if q.After != "" {
		key, err := decodeCursor(q.After, s.fp, len(s.keys)+1)
		if err != nil {
			return nil, err
		}
		// The key must be one this search can return: every segment of
		// the next page then starts inside the search's range.
		ok := s.matches(key[0], s.value)
		if s.first != "" {
			ok = ok && s.matches(key[1], s.first)
		}
		if !ok {
			return nil, cursorErr(input("after"), " does not belong to this search (damaged or made up)")
		}
		s.after = key
	}
	return s, nil
}

// matches says whether the folded field value v matches the folded search
// value want.
func (s *search) matches(v, want string) bool {
	if s.q.Exact {
		return v == want
	}
	return strings.HasPrefix(v, want)
}

// cond is a piece of a WHERE clause and its arguments; fixed is the
// expression it makes constant (expr = ?), if any.
type cond struct {
	sql   string
	args  []any
	fixed string
}

// match is the condition "expr matches want": equal with Exact, else in
// the index range of the prefix.
func (s *search) match(expr, want string) []cond {
	if s.q.Exact {
		return []cond{{expr + " = ?", []any{want}, expr}}
	}
	c := []cond{{sql: expr + " >= ?", args: []any{want}}}
	if end := prefixEnd(want); end != "" {
		c = append(c, cond{sql: expr + " < ?", args: []any{end}})
	}
	return c
}

// below is the upper end of expr's range: "" when none is needed (exact
// searches are bounded by the equality of an earlier segment).
func (s *search) below(expr, want string) []cond {
	if end := prefixEnd(want); !s.q.Exact && end != "" {
		return []cond{{sql: expr + " < ?", args: []any{end}}}
	}
	return nil
}

// segments are the conditions of the queries that together read a page,
// each an index range in key order; read one after the other they give
// the rows after the cursor in key order. Without a cursor there is one.
// With one, a row after the key (a1, a2, c) either ties on a1 and a2 and
// has a greater customer number, or ties on a1 and has a greater a2, or
// has a greater a1; as one row-value comparison, SQLite would seek the
// index by the first term of the range only and filter the ties of the
// whole range before the cursor, which on a common last name is most of
// a million rows.
func (s *search) segments() [][]cond {
	k1 := s.keys[0]
	var firstMatch []cond
	if s.first != "" {
		firstMatch = s.match(s.keys[1], s.first)
	}
	if s.after == nil {
		return [][]cond{append(s.match(k1, s.value), firstMatch...)}
	}
	a := s.after
	eq := func(e, v string) cond { return cond{e + " = ?", []any{v}, e} }
	gt := func(e, v string) cond { return cond{sql: e + " > ?", args: []any{v}} }
	c := a[len(a)-1]
	var segs [][]cond
	if len(s.keys) == 2 {
		k2 := s.keys[1]
		segs = append(segs, []cond{eq(k1, a[0]), eq(k2, a[1]), gt("customer", c)})
		if !(s.first != "" && s.q.Exact) {
			segs = append(segs, append([]cond{eq(k1, a[0]), gt(k2, a[1])}, s.below(k2, s.first)...))
		}
	} else {
		segs = append(segs, []cond{eq(k1, a[0]), gt("customer", c)})
	}
	if !s.q.Exact {
		segs = append(segs, append(append([]cond{gt(k1, a[0])}, s.below(k1, s.value)...), firstMatch...))
	}
	return segs
}

// sql is the query of one segment. Its ORDER BY leaves out the key
// expressions the segment makes constant: SQLite (3.40 at least) sorts
// when an ORDER BY names an indexed expression that an equality fixes,
// though the index already gives the order.
func (s *search) sql(seg []cond, limit int) (string, []any) {
	where := []string{s.column + " <> ''", "deleted_at IS NULL"}
	var args []any
	fixed := map[string]bool{}
	for _, c := range seg {
		where = append(where, c.sql)
		args = append(args, c.args...)
		fixed[c.fixed] = true
	}
	var order []string
	for _, k := range append(s.keys[:len(s.keys):len(s.keys)], "customer") {
		if !fixed[k] {
			order = append(order, k)
		}
	}
	return `SELECT ` + customerCols + `, ` + strings.Join(s.keys, ", ") + ` FROM customers WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ?`, append(args, limit)
}

// PageSQL returns the statement that reads (the first part of) the page q
// asks for, as SearchCustomers runs it, and its arguments: for EXPLAIN
// QUERY PLAN, and for the benchmark's reference, the sqlite3 shell
// running the same statement. A customer number search has none.
func (q CustomerQuery) PageSQL() (string, []any, error) {
	s, err := q.plan()
	if err != nil || q.Field == ByCustomer {
		return "", nil, err
	}
	query, args := s.sql(s.segments()[0], s.limit+1)
	return query, args, nil
}

// SearchCustomers returns one page of the live sold-to customers that
// match q, in ascending order of the search field (names: last name, then
// first name) and then of customer number, and the cursor of the next
// page. A query that cannot be asked is an error wrapping ErrQuery or
// ErrCursor (a *QueryError). Every page is read through an index: a
// constant number of seeks whatever the page.
func SearchCustomers(ctx context.Context, d *db.DB, q CustomerQuery) (*CustomerPage, error) {
	s, err := q.plan()
	if err != nil {
		return nil, err
	}
	page := &CustomerPage{Query: q, Customers: []Customer{}}
	if q.Field == ByCustomer {
		c, err := scanCustomer(d.QueryRowContext(ctx, customerByNumber, q.Value))
		if err == nil {
			page.Customers = append(page.Customers, c)
		} else if !isNoRows(err) {
			return nil, fmt.Errorf("customer search: %w", db.Classify(err))
		}
		return page, nil
	}
	want := s.limit + 1 // one more tells whether there is a next page
	var last []string
	for _, seg := range s.segments() {
		query, args := s.sql(seg, want-len(page.Customers))
		rows, err := d.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("customer search: %w", db.Classify(err))
		}
		for rows.Next() {
			key := make([]string, len(s.keys))
			ptrs := make([]any, len(key))
			for i := range key {
				ptrs[i] = &key[i]
			}
			c, err := scanCustomer(rows, ptrs...)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("customer search: %w", err)
			}
			if len(page.Customers) == s.limit {
				page.Next = encodeCursor(s.fp, last)
				break
			}
			page.Customers = append(page.Customers, c)
			last = append(key, c.Customer)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("customer search: %w", db.Classify(err))
		}
		if page.Next != "" {
			break
		}
	}
	return page, nil
}
