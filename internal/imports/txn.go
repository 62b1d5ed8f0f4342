package imports

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/posbridge/posbridge/internal/format"
)

// Effects of transaction codes on stock.
const (
	EffectAdjust   = "A" // on hand changes by the signed quantity
	EffectOverlay  = "O" // on hand is set to the quantity (a stock count)
	EffectTransfer = "T" // from one warehouse/location to another
	EffectItem     = "G" // from one item/SKU to another
	EffectReturn   = "V" // return to vendor: decrease
	EffectNegative = "S" // negative adjustment: decrease
	EffectReceipt  = "R" // receipt: increase
	EffectSale     = "P" // POS sale: decrease
)

// StandardCodes are the codes every file may use; config adds more, each
// mapped to one of these effects.
var StandardCodes = []string{EffectAdjust, EffectOverlay, EffectTransfer, EffectItem, EffectReturn, EffectNegative, EffectReceipt, EffectSale}

// CodeStreamlinedOverlay is Oracle's streamlined overlay (target
// INVTRAN_IMMED): Oracle updates on hand in a faster way when it can and
// falls back to a standard O otherwise, so the stock ends the same either
// way. It is an overlay here.
const CodeStreamlinedOverlay = "OV"

// refusedCodes are the codes of Oracle's inventory transaction code table
// (WITC, DITS) that posbridge cannot apply, with what Oracle uses each for:
// the reject says so instead of "unknown transaction code".
var refusedCodes = map[string]string{
	"C": "C is Oracle's customer return, which OMS writes itself when it processes a return authorization; send returns to import returns",
	"E": "E is Oracle's express bill, which OMS writes for an order billed without the pick and confirmation cycle; posbridge takes orders through import orders",
	"I": "I is Oracle's issue, which OMS writes when it confirms a shipment; a shipment is not an inventory transaction here",
	"M": "M is Oracle's make up finished good, which adds the finished good and takes its components off; posbridge keeps no kit components",
	"P": "P is Oracle's physical inventory, which OMS writes from its physical inventory count; send the counted quantity as O (overlay)",
	"*": "* is Oracle's FIFO cost change, which changes no quantity",
}

// oracleCodes is the code table of the OMS XML upload: the codes of
// Oracle's table mean what Oracle says, so P (Oracle's physical inventory)
// is not posbridge's POS sale there unless the configuration maps P.
func oracleCodes(o *Options) map[string]string {
	m := o.codes()
	for c := range o.Codes {
		if strings.EqualFold(c, EffectSale) {
			return m
		}
	}
	delete(m, EffectSale)
	return m
}

// txnRow is the CSV form of docs/imports.md section 2: the csv tags are the
// column names.
type txnRow struct {
	Code        string `csv:"transaction_code"`
	Item        string `csv:"item"`
	SKU         string `csv:"sku"`
	UPC         string `csv:"upc"`
	RetailRef   string `csv:"retail_ref"`
	Warehouse   string `csv:"warehouse"`
	Location    string `csv:"location"`
	Quantity    string `csv:"quantity"`
	ToItem      string `csv:"to_item"`
	ToSKU       string `csv:"to_sku"`
	ToWarehouse string `csv:"to_warehouse"`
	ToLocation  string `csv:"to_location"`
	Reason      string `csv:"reason"`
	Reference   string `csv:"reference"`
	Date        string `csv:"transaction_date"`
	User        string `csv:"user"`
}

// txnColumns are the CSV columns, required ones first.
var txnColumns = [...]string{"transaction_code", "item", "sku", "upc", "retail_ref", "warehouse", "location", "quantity",
	"to_item", "to_sku", "to_warehouse", "to_location", "reason", "reference", "transaction_date", "user"}

var txnRequired = []string{"transaction_code", "warehouse", "quantity"}

// TransactionColumns returns the CSV columns of the inventory transaction
// upload and those a file must have; it must also have item, upc or
// retail_ref.
func TransactionColumns() (names, required []string) {
	return slices.Clone(txnColumns[:]), slices.Clone(txnRequired)
}

// txn is one transaction after its fields were checked.
type txn struct {
	line   int
	raw    []string // the record as read, for the reject file
	code   string
	effect string
	qty    int64
	row    txnRow
	// from and to are the item/SKU states of the two sides when prefetch
	// found them by item.
	from, to *skuState
}

// check validates the fields of a row that need no state, and returns the
// transaction or every problem found.
func check(line int, raw []string, r txnRow, codes map[string]string, maxLen int) (txn, error) {
	t := txn{line: line, raw: raw, row: trimRow(r)}
	r = t.row
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i, v := range r.values() {
		if err := format.CheckText(v, maxLen); err != nil {
			bad("field %s %v", txnColumns[i], err)
		}
	}
	t.code = strings.ToUpper(r.Code)
	switch {
	case t.code == "":
		bad("field transaction_code is required")
	default:
		eff, ok := codes[t.code]
		switch why, refused := refusedCodes[t.code]; {
		case ok:
		case refused:
			bad("field transaction_code %q: %s", r.Code, why)
		default:
			bad("field transaction_code %q: unknown transaction code", r.Code)
		}
		t.effect = eff
	}
	if r.Warehouse == "" {
		bad("field warehouse is required")
	}
	if r.Item == "" && r.UPC == "" && r.RetailRef == "" {
		bad("no item: give item (and sku), upc or retail_ref")
	}
	if r.Quantity == "" {
		bad("field quantity is required")
	} else if q, err := format.ParseInt(r.Quantity); err != nil {
		bad("field quantity %q: %v", r.Quantity, err)
	} else if err := format.CheckQuantity(q); err != nil {
		bad("field quantity %q: %v", r.Quantity, err)
	} else {
		t.qty = q
		switch t.effect {
		case EffectAdjust:
			if q == 0 {
				bad("field quantity: an adjustment of 0 changes nothing")
			}
		case EffectOverlay:
			if q < 0 {
				bad("field quantity %q: a stock count cannot be negative", r.Quantity)
			}
		case EffectTransfer, EffectItem, EffectReturn, EffectNegative, EffectReceipt, EffectSale:
			if q <= 0 {
				bad("field quantity %q: must be positive for transaction code %s", r.Quantity, t.code)
			}
		}
	}
	switch t.effect {
	case EffectTransfer:
		if (r.ToItem != "" && r.ToItem != r.Item) || (r.ToSKU != "" && r.ToSKU != r.SKU) {
			bad("a transfer moves one item/SKU between warehouses or locations: to_item and to_sku must be empty or the same (use G for an item transfer)")
		}
		if r.ToWarehouse == "" && r.ToLocation == "" {
			bad("a transfer needs to_warehouse or to_location")
		} else if to := or(r.ToWarehouse, r.Warehouse); to == r.Warehouse && r.ToLocation == r.Location {
			bad("a transfer to the same warehouse and location changes nothing")
		}
	case EffectItem:
		if r.ToItem == "" {
			bad("an item transfer needs to_item (and to_sku)")
		} else if r.ToItem == r.Item && r.ToSKU == r.SKU {
			bad("an item transfer to the same item/SKU changes nothing")
		}
	}
	if r.Date != "" {
		if _, err := format.ParseDate(r.Date); err != nil {
			bad("field transaction_date %q: %v", r.Date, err)
		}
	}
	if len(problems) > 0 {
		return t, errors.New(strings.Join(problems, "; "))
	}
	return t, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// values returns the fields in the order of txnColumns.
func (r txnRow) values() []string {
	return []string{r.Code, r.Item, r.SKU, r.UPC, r.RetailRef, r.Warehouse, r.Location, r.Quantity,
		r.ToItem, r.ToSKU, r.ToWarehouse, r.ToLocation, r.Reason, r.Reference, r.Date, r.User}
}

// fields points at the fields in the order of txnColumns.
func (r *txnRow) fields() [len(txnColumns)]*string {
	return [...]*string{&r.Code, &r.Item, &r.SKU, &r.UPC, &r.RetailRef, &r.Warehouse, &r.Location, &r.Quantity,
		&r.ToItem, &r.ToSKU, &r.ToWarehouse, &r.ToLocation, &r.Reason, &r.Reference, &r.Date, &r.User}
}

func trimRow(r txnRow) txnRow {
	for _, p := range r.fields() {
		*p = strings.TrimSpace(*p)
	}
	return r
}
