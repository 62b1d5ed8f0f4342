package inquiry

import (
	"fmt"
	"strings"
)

// Page and history sizes.
const (
	DefaultLimit  = 50   // customers per page when CustomerQuery.Limit is 0
	MaxLimit      = 1000 // the largest page
	DefaultOrders = 10   // orders of a history when HistoryQuery.Orders is 0
	MaxOrders     = 1000 // the most orders one history shows
)

// QueryError is a query that cannot be asked. It wraps ErrQuery, or
// ErrCursor for a page cursor. Its message names the query's inputs at
// fault (Fields: item, sku, upc, retail_ref, warehouse, customer,
// alt_customer, last_name, first_name, postal_code, email, phone,
// company, exact, limit, after, orders, order), so that each front end
// names them its own way: the command line as flags (--retail-ref), a
// request file as its elements.
type QueryError struct {
	Fields []string
	parts  []any // string: text; input: an input's name
	kind   error
}

// input is the name of a query input inside a QueryError's message.
type input string

func queryErr(parts ...any) *QueryError { return newQueryErr(ErrQuery, parts...) }

func cursorErr(parts ...any) *QueryError { return newQueryErr(ErrCursor, parts...) }

func newQueryErr(kind error, parts ...any) *QueryError {
	e := &QueryError{parts: parts, kind: kind}
	for _, p := range parts {
		if f, ok := p.(input); ok {
			e.Fields = append(e.Fields, string(f))
		}
	}
	return e
}

// Message is the error's text with every input named by name(input).
func (e *QueryError) Message(name func(input string) string) string {
	var b strings.Builder
	for _, p := range e.parts {
		switch p := p.(type) {
		case input:
			b.WriteString(name(string(p)))
		default:
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}

// Error names the inputs as they are: item, retail_ref, last_name.
func (e *QueryError) Error() string { return e.Message(func(s string) string { return s }) }

// Unwrap returns ErrQuery or ErrCursor.
func (e *QueryError) Unwrap() error { return e.kind }

// oneOf is the list "a, b or c" of inputs, for messages.
func oneOf(names []string) []any {
	var parts []any
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			parts = append(parts, " or ")
		default:
			parts = append(parts, ", ")
		}
		parts = append(parts, input(n))
	}
	return parts
}

// only returns the one given input among names (value non-empty), or an
// error when none or several are.
func only(given map[string]string, names ...string) (string, error) {
	var set []string
	for _, n := range names {
		if given[n] != "" {
			set = append(set, n)
		}
	}
	switch len(set) {
	case 1:
		return set[0], nil
	case 0:
		return "", queryErr(append([]any{"give one of "}, oneOf(names)...)...)
	default:
		return "", queryErr(append(append([]any{"give only one of "}, oneOf(names)...), ", not ", input(set[0]), " and ", input(set[1]))...)
	}
}

// Validate checks that q can be asked: exactly one of item, upc and
// retail_ref; sku only with item.
func (q InventoryQuery) Validate() error {
	if q.SKU != "" && q.Item == "" {
		return queryErr(input("sku"), " needs ", input("item"), " (a SKU code is unique within its item only)")
	}
	_, err := only(map[string]string{"item": q.Item, "upc": q.UPC, "retail_ref": q.RetailRef}, "item", "upc", "retail_ref")
	return err
}

// SearchInputs are the inputs of a customer search, one per search
// field, in the order front ends list them.
var SearchInputs = []string{"customer", "alt_customer", "last_name", "postal_code", "email", "phone", "company"}

// searchInput is the input that gives the value of a search field.
func searchInput(field string) string {
	if field == ByName {
		return "last_name"
	}
	return field
}

// NewCustomerQuery builds a customer search from inputs as a command line
// or a form gives them: given maps each input of SearchInputs, and
// first_name, to its value (empty: not given). Exactly one search input
// must be given, and first_name only with last_name. Exact, Limit and After
// are left for the caller to set.
func NewCustomerQuery(given map[string]string) (CustomerQuery, error) {
	if given["first_name"] != "" && given["last_name"] == "" {
		return CustomerQuery{}, queryErr(input("first_name"), " needs ", input("last_name"), " (names are searched by last name, then first name)")
	}
	in, err := only(given, SearchInputs...)
	if err != nil {
		return CustomerQuery{}, err
	}
	field := in
	if in == "last_name" {
		field = ByName
	}
	return CustomerQuery{Field: field, Value: given[in], FirstName: given["first_name"]}, nil
}

// Validate checks that q can be asked: a known field with a value (a
// phone with digits), first_name only with a name search, a limit from 1
// to MaxLimit (0: DefaultLimit), and a cursor that this search handed out.
func (q CustomerQuery) Validate() error {
	_, err := q.plan()
	return err
}

// Validate checks that q can be asked: exactly one of customer and
// alt_customer; orders (1 to MaxOrders, 0: DefaultOrders) or order, not
// both.
func (q HistoryQuery) Validate() error {
	if _, err := only(map[string]string{"customer": q.Customer, "alt_customer": q.AltCustomer}, "customer", "alt_customer"); err != nil {
		return err
	}
	if q.Orders != 0 && q.Order != "" {
		return queryErr("give ", input("orders"), " or ", input("order"), ", not both")
	}
	if q.Orders < 0 || q.Orders > MaxOrders {
		return queryErr(input("orders"), fmt.Sprintf(" %d: want 1 to %d", q.Orders, MaxOrders))
	}
	return nil
}
