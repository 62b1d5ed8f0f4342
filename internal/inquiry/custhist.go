package inquiry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
)

// custHistIn is Oracle's customer history request, the CWCustHistIn
// message of the page "Generic Customer History API", read by Oracle's
// attribute names and answered as a history inquiry.
type custHistIn struct {
	company              string
	query                HistoryQuery
	lastName, postalCode string
}

// custHistReads are the attributes of CWCustHistIn that posbridge answers,
// and the history query input each gives.
var custHistReads = map[string]string{
	"customer_number":      "customer",
	"alternate_sold_to_id": "alt_customer",
	"direct_order_number":  "order",
	"send_detail":          "detail",
	"last_name":            "last_name",
	"postal_code":          "postal_code",
	"company":              "company",
}

// custHistCannot are attributes of CWCustHistIn that posbridge cannot
// answer, with why: a request that gives one is an error, not an answer
// that silently ignores it.
var custHistCannot = map[string]string{
	"alternate_order_number": "posbridge keeps no alternate order numbers; give direct_order_number",
	"ship_to_number":         "posbridge's order history has no ship-to customers; leave it out for the whole order",
}

// custHistName is the CWCustHistIn attribute of a history query input.
func custHistName(in string) string {
	for attr, i := range custHistReads {
		if i == in {
			return attr
		}
	}
	return attrName(in)
}

// custHistKind reads the one request element of a CWCustHistIn message
// (its name is not checked: Oracle's page names its attributes) by
// Oracle's attribute names. An attribute posbridge does not read is an
// error when it has a value; empty ones are ignored, as Oracle's messages
// often carry every attribute.
func (r *request) custHistKind() (string, error) {
	if r.Inventory != nil || r.Search != nil || r.History != nil || len(r.Others) != 1 {
		return TypeHistory, fmt.Errorf("a %s message holds one request element with Oracle's attribute names (customer_number, alternate_sold_to_id, direct_order_number, ...)", TypeCustHistIn)
	}
	c := &custHistIn{}
	for _, a := range r.Others[0].Attrs {
		name, v := a.Name.Local, strings.TrimSpace(a.Value)
		if v == "" {
			continue
		}
		if why, ok := custHistCannot[name]; ok {
			return TypeHistory, &fieldError{name, why}
		}
		in, ok := custHistReads[name]
		if !ok {
			return TypeHistory, &fieldError{name, fmt.Sprintf("not an attribute of %s that posbridge answers", TypeCustHistIn)}
		}
		switch in {
		case "customer":
			c.query.Customer = v
		case "alt_customer":
			c.query.AltCustomer = v
		case "order":
			c.query.Order = v
		case "detail":
			d, err := flagAttr(name, v)
			if err != nil {
				return TypeHistory, err
			}
			c.query.Detail = d
		case "last_name":
			c.lastName = v
		case "postal_code":
			c.postalCode = v
		case "company":
			c.company = v
		}
	}
	r.custHist = c
	return TypeHistory, nil
}

// answer runs the request. Without a customer, the order's customer is
// looked up, and last_name or postal_code must then confirm it (as
// Oracle's "Require Last Name/Postal Code in Customer History Request"
// does): the response holds customer data. A last_name or postal_code that
// does not match the customer gives the empty (not found) response.
func (c *custHistIn) answer(ctx context.Context, d *db.DB, company int) (any, int, error) {
	if c.company != "" {
		if n, err := strconv.Atoi(c.company); err != nil || n != company {
			return nil, 0, &fieldError{"company", fmt.Sprintf("%q: posbridge answers for company %d", c.company, company)}
		}
	}
	q := c.query
	empty := historyResponse(&HistoryResult{Query: q, Orders: []Order{}})
	if q.Customer == "" && q.AltCustomer == "" {
		if q.Order == "" || (c.lastName == "" && c.postalCode == "") {
			return nil, 0, queryErr("give ", input("customer"), " or ", input("alt_customer"), ", or ", input("order"),
				" with ", input("last_name"), " or ", input("postal_code"))
		}
		customer, err := orderCustomer(ctx, d, q.Order)
		if err != nil || customer == "" {
			return empty, 0, err
		}
		q.Customer = customer
	}
	res, err := History(ctx, d, q)
	if err != nil {
		return nil, 0, err
	}
	if res.Customer == nil || !sameText(c.lastName, res.Customer.LastName) || !sameText(c.postalCode, res.Customer.PostalCode) {
		return empty, 0, nil
	}
	return historyResponse(res), len(res.Orders), nil
}

// sameText says whether a value given to confirm a customer matches (an
// empty one confirms nothing and matches): case and spaces aside.
func sameText(given, have string) bool {
	if given == "" {
		return true
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "") }
	return norm(given) == norm(have)
}

// orderCustomer is the customer of an order by its live invoices, or ""
// when there is none.
func orderCustomer(ctx context.Context, d *db.DB, order string) (string, error) {
	found, err := db.QueryAll(ctx, d, func(s db.Scanner) (string, error) {
		var c string
		return c, s.Scan(&c)
	}, `SELECT DISTINCT customer FROM invoices WHERE order_no = ? AND deleted_at IS NULL LIMIT 2`, order)
	switch {
	case err != nil:
		return "", fmt.Errorf("order history: %w", err)
	case len(found) > 1:
		return "", &fieldError{"direct_order_number", fmt.Sprintf("order %s has invoices of more than one customer: give customer_number", order)}
	case len(found) == 0:
		return "", nil
	}
	return found[0], nil
}
