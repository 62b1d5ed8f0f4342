package inquiry

import (
	"errors"

	"github.com/posbridge/posbridge/internal/format"
)

// ErrQuery marks a query that cannot be asked: no selector, two
// selectors, a value out of range. The CLI maps it to a usage error (exit
// 2); a request file gets an error response.
var ErrQuery = errors.New("bad inquiry")

// ErrCursor marks a paging cursor that is not one this search handed out
// (malformed, or from another search). Exit 2 / an error response.
var ErrCursor = errors.New("bad page cursor")

// InventoryQuery selects the SKUs of an inventory inquiry: exactly one of
// Item (all its SKUs, or one with SKU), UPC or RetailRef.
type InventoryQuery struct {
	Item      string `json:"item,omitempty"`
	SKU       string `json:"sku,omitempty"`
	UPC       string `json:"upc,omitempty"`
	RetailRef string `json:"retail_ref,omitempty"`
	// Warehouse keeps one warehouse.
	Warehouse string `json:"warehouse,omitempty"`
	// ExcludeNonAllocatable leaves out warehouses that are not
	// allocatable (the returns centre).
	ExcludeNonAllocatable bool `json:"exclude_non_allocatable,omitempty"`
}

// Stock is the inventory of one SKU in one warehouse, summed over its
// locations. Available is on hand minus reserved.
type Stock struct {
	Warehouse   string `json:"warehouse"`
	Name        string `json:"name"`
	Allocatable bool   `json:"allocatable"`
	OnHand      int64  `json:"on_hand"`
	Reserved    int64  `json:"reserved"`
	Available   int64  `json:"available"`
	Backordered int64  `json:"backordered"`
}

// SKUStock is one SKU with its attributes and its stock per warehouse
// (warehouse order), and the totals over those warehouses.
type SKUStock struct {
	Item            string `json:"item"`
	SKU             string `json:"sku"`
	ItemDescription string `json:"item_description"`
	SKUDescription  string `json:"sku_description,omitempty"`
	ItemClass       string `json:"item_class,omitempty"`
	Vendor          string `json:"vendor,omitempty"`
	Status          string `json:"status,omitempty"`
	Color           string `json:"color,omitempty"`
	Size            string `json:"size,omitempty"`
	Width           string `json:"width,omitempty"`
	UPC             string `json:"upc,omitempty"`
	RetailRef       string `json:"retail_ref,omitempty"`
	// Price is nil when not loaded.
	Price      *format.Amount `json:"price,omitempty"`
	Warehouses []Stock        `json:"warehouses"`
	// Total sums the warehouses shown (Warehouse and Name empty).
	Total Stock `json:"total"`
}

// InventoryResult is the answer: the SKUs found, in item and SKU order;
// empty (not nil) when nothing matches.
type InventoryResult struct {
	Query InventoryQuery `json:"query"`
	SKUs  []SKUStock     `json:"skus"`
}

// Customer search fields.
const (
	ByCustomer    = "customer"
	ByAltCustomer = "alt_customer"
	ByName        = "name" // last name, then first name
	ByPostalCode  = "postal_code"
	ByEmail       = "email"
	ByPhone       = "phone" // digits only are compared
	ByCompany     = "company"
)

// CustomerQuery is a customer search on one field. Value matches the
// start of the field, without regard to case (phone: its digits), or the
// whole field with Exact; a customer number (ByCustomer) always matches
// exactly. FirstName narrows a ByName search the same way.
type CustomerQuery struct {
	Field     string `json:"field"`
	Value     string `json:"value"`
	FirstName string `json:"first_name,omitempty"`
	Exact     bool   `json:"exact,omitempty"`
	// Limit is the page size, 1 to 1000 (0: 50).
	Limit int `json:"limit,omitempty"`
	// After is the cursor of the page before (CustomerPage.Next).
	After string `json:"after,omitempty"`
}

// Customer is a sold-to customer as inquiries show it.
type Customer struct {
	Customer      string `json:"customer"`
	AltCustomer   string `json:"alt_customer,omitempty"`
	CustomerClass string `json:"customer_class,omitempty"`
	FirstName     string `json:"first_name,omitempty"`
	LastName      string `json:"last_name,omitempty"`
	CompanyName   string `json:"company_name,omitempty"`
	Address1      string `json:"address1,omitempty"`
	Address2      string `json:"address2,omitempty"`
	City          string `json:"city,omitempty"`
	State         string `json:"state,omitempty"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country,omitempty"`
	Email         string `json:"email,omitempty"`
	Phone         string `json:"phone,omitempty"`
	EmailOptIn    bool   `json:"email_opt_in"`
}

// CustomerPage is one page of a search, in ascending order of the search
// field (names: last name, first name), ties by customer number. Next is
// the cursor of the following page, empty on the last one.
type CustomerPage struct {
	Query     CustomerQuery `json:"query"`
	Customers []Customer    `json:"customers"`
	Next      string        `json:"next,omitempty"`
}

// HistoryQuery asks for a customer's orders: the customer by number or
// alternate number (one of them); Orders keeps the newest N orders (0:
// 10), Order one order; Detail adds the lines.
type HistoryQuery struct {
	Customer    string `json:"customer,omitempty"`
	AltCustomer string `json:"alt_customer,omitempty"`
	Orders      int    `json:"orders,omitempty"`
	Order       string `json:"order,omitempty"`
	Detail      bool   `json:"detail,omitempty"`
}

// Totals of an invoice or an order. A credit invoice counts negative in
// the totals of its order.
type Totals struct {
	Merchandise format.Amount `json:"merchandise"`
	Discount    format.Amount `json:"discount"`
	Tax         format.Amount `json:"tax"`
	Freight     format.Amount `json:"freight"`
	Total       format.Amount `json:"total"`
}

// Line is one invoice line.
type Line struct {
	Line      int           `json:"line"`
	Item      string        `json:"item"`
	SKU       string        `json:"sku,omitempty"`
	Quantity  int64         `json:"quantity"`
	UnitPrice format.Amount `json:"unit_price"`
	Extended  format.Amount `json:"extended_price"`
	Discount  format.Amount `json:"discount"`
	Tax       format.Amount `json:"tax"`
}

// Invoice is an invoice (type I) or credit (C) of an order.
type Invoice struct {
	Invoice string `json:"invoice"`
	Type    string `json:"type"`
	Date    string `json:"date"`
	Totals
	Lines []Line `json:"lines,omitempty"`
}

// Order is a customer's order as its invoices show it.
type Order struct {
	Order     string `json:"order"`
	FirstDate string `json:"first_date"`
	LastDate  string `json:"last_date"`
	Totals
	Invoices []Invoice `json:"invoices"`
}

// HistoryResult is the customer (nil when unknown) and its orders,
// newest first (by last invoice date, then order number descending).
type HistoryResult struct {
	Query    HistoryQuery `json:"query"`
	Customer *Customer    `json:"customer"`
	Orders   []Order      `json:"orders"`
}
