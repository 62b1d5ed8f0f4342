package orders

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/inquiry"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Kind is the file ledger kind of order files.
const Kind = "orders"

// The fields of GoFrugal's "Create a sales order" (docs/partners.md, store-pos), spelled
// as its pages spell them and in the order its "Retrieve a sales order"
// response writes them. An order is read by these names in any letter
// case, kept by them as the partner wrote the values, and written back by
// them (export order-status); other keys are ignored.
var orderFields = []string{
	"onlineReferenceNo", "onlineChildReferenceNo", "createdAt", "updatedAt", "status", "orderRemarks", "Channel",
	"courierPartner", "totalQuantity", "totalAmount", "paymentMode", "totalTaxAmount", "totalDiscountAmount",
	"shippingId", "shippingName", "shippingAddress1", "ShippingAddress2", "shippingPlace", "shippingState",
	"shippingCountry", "shippingPincode", "shippingPhone", "shippingMobile", "shippingEmail", "shippingCharge",
	"shippingMethod", "ShipmentPointsUsed", "shipmentItems", "shipmentAbn", "shipmentWeight", "discountCoupon",
	"deliveryDate", "locationId", "userId", itemsField, "customerId", "customerName", "customerType",
	"customerAddressLine1", "customerAddressLine2", "customerAddressLine3", "customerArea", "customerCity",
	"customerState", "customerCountry", "customerPincode", "customerPhone", "customerEmail", "customerMobile",
}

// lineFields are the fields of an order line (orderItems[]), likewise.
var lineFields = []string{"rowNo", "itemId", "itemName", "itemReferenceCode", "salePrice", "quantity", "itemAmount",
	"taxPercentage", "discountPercentage", "itemRemarks", "itemMarketPrice"}

const (
	// wrapperField holds the order in the API's body: {"salesOrder": {…}}.
	wrapperField = "salesOrder"
	// listField holds the orders of the "List all sales orders"
	// response: {"salesOrders": [{…}, …]}.
	listField  = "salesOrders"
	itemsField = "orderItems"
)

// oldNames are keys of posbridge's earlier paraphrase of the order that
// are still read, as the documented field they stood for; the documented
// one wins when both are given.
var oldNames = map[string]string{"shippingcity": "shippingPlace"}

// numberFields are the fields the pages document as numbers: a number
// given as a string ("179.00") is kept as the number, so that it is the
// same content as 179.00 and goes out as a number.
var numberFields = map[string]bool{"totalQuantity": true, "totalAmount": true, "paymentMode": true, "totalTaxAmount": true,
	"totalDiscountAmount": true, "shippingCharge": true, "rowNo": true, "salePrice": true, "quantity": true, "itemAmount": true,
	"taxPercentage": true, "discountPercentage": true, "itemMarketPrice": true,
	// Ids and pincodes the pages show as numbers; a pincode with a leading
	// zero is no JSON number and stays the string it was.
	"locationId": true, "itemId": true, "shippingPincode": true, "customerPincode": true}

var (
	orderIndex = fieldIndex(orderFields)
	lineIndex  = fieldIndex(lineFields)
)

// fieldIndex maps the lower-case spelling of each field to the field.
func fieldIndex(fields []string) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[strings.ToLower(f)] = f
	}
	return m
}

// record is one object of a sales order, its header or a line: the
// documented fields it has, by their documented spelling, each the JSON
// value the partner wrote (compacted).
type record map[string]json.RawMessage

// readRecord keeps the documented fields of object obj; keys match in any
// letter case (imports.Decode has refused an object that gives one twice).
func readRecord(obj map[string]json.RawMessage, index map[string]string) (record, error) {
	r := record{}
	old := record{}
	for k, v := range obj {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return nil, err
		}
		if f, ok := index[strings.ToLower(k)]; ok {
			r[f] = number(f, b.Bytes())
		} else if f, ok := oldNames[strings.ToLower(k)]; ok && index[strings.ToLower(f)] == f {
			old[f] = b.Bytes()
		}
	}
	for f, v := range old {
		if _, ok := r[f]; !ok {
			r[f] = v
		}
	}
	return r, nil
}

// number is the value v of field f, a string holding a number as that
// number when f is documented as a number.
func number(f string, v json.RawMessage) json.RawMessage {
	var s string
	if !numberFields[f] || valueKind(v) != "a string" || json.Unmarshal(v, &s) != nil {
		return v
	}
	n := json.RawMessage(strings.TrimSpace(s))
	if !json.Valid(n) || valueKind(n) != "a number" {
		return v
	}
	return n
}

// valueKind names the kind of a JSON value, for messages.
func valueKind(v json.RawMessage) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == '"':
		return "a string"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	case v[0] == 'n':
		return "null"
	}
	return "a number"
}

// text is field f as text: a string (trimmed) or a number as written; ""
// when it is absent, null or "". A boolean, object or array is a
// *rejectError naming the field: in the pages' samples every field but
// orderItems is a string or a number.
func (r record) text(f string) (string, error) {
	v, ok := r[f]
	if !ok {
		return "", nil
	}
	switch valueKind(v) {
	case "null":
		return "", nil
	case "a string":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", err
		}
		return strings.TrimSpace(s), nil
	case "a number":
		return string(v), nil
	}
	return "", fieldErr(f, "%s: want a string or a number, got %s", f, valueKind(v))
}

// str is text for a field that check has passed.
func (r record) str(f string) string {
	s, _ := r.text(f)
	return s
}

// check fails for the first field of fields (but orderItems) that is not
// a string or a number.
func (r record) check(fields []string) error {
	for _, f := range fields {
		if f == itemsField {
			continue
		}
		if _, err := r.text(f); err != nil {
			return err
		}
	}
	return nil
}

// amount reads number field f in ten-thousandths; ok is false when the
// field is absent or empty. A number may come as a string ("179.00").
func (r record) amount(f string) (v int64, ok bool, err error) {
	s, err := r.text(f)
	if err != nil || s == "" {
		return 0, false, err
	}
	if v, err = format.ParseAmount(s); err != nil {
		return 0, false, fieldErr(f, "%s %s: want a number: %v", f, r[f], err)
	}
	if err := format.CheckAmount(v); err != nil {
		return 0, false, fieldErr(f, "%s %s: %v", f, r[f], err)
	}
	return v, true, nil
}

// quotedKey finds the first key an imports.CheckKeys error names.
var quotedKey = regexp.MustCompile(`keys? "([^"]*)"`)

// salesOrder is one order as the partner sent it.
type salesOrder struct {
	head  record
	items []record
}

// decodeOrder reads one order of a file: {"salesOrder": {…}} as the
// "Create a sales order" API posts it (and "Retrieve a sales order"
// returns it), or the order object alone. A key given twice, in any
// letter case, at any depth, rejects it (imports.Decode); what could be
// read of it is returned all the same, so that the reject names the order.
func decodeOrder(raw json.RawMessage) (salesOrder, error) {
	var so salesOrder
	if valueKind(raw) != "an object" {
		return so, rejectf("not an order: want an order object or {\"salesOrder\": {…}}, got %s", valueKind(raw))
	}
	var obj map[string]json.RawMessage
	ambiguous := imports.Decode(raw, &obj)
	if ambiguous != nil {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return so, err
		}
		// The message names the key (key "quantity" is given twice…,
		// keys "status" and "Status"…): the first one is the field.
		field := ""
		if m := quotedKey.FindStringSubmatch(ambiguous.Error()); m != nil {
			field = m[1]
		}
		ambiguous = fieldErr(field, "%s", ambiguous)
	}
	for k, v := range obj {
		if !strings.EqualFold(k, wrapperField) {
			continue
		}
		if valueKind(v) != "an object" {
			return so, fieldErr(wrapperField, "%s: want the order object, got %s", wrapperField, valueKind(v))
		}
		obj = nil
		if err := json.Unmarshal(v, &obj); err != nil {
			return so, err
		}
		break
	}
	var err error
	if so.head, err = readRecord(obj, orderIndex); err != nil {
		return so, err
	}
	items, ok := so.head[itemsField]
	if !ok || valueKind(items) == "null" {
		return so, ambiguous
	}
	var list []json.RawMessage
	if valueKind(items) != "an array" || json.Unmarshal(items, &list) != nil {
		return so, fieldErr(itemsField, "%s: want an array of order lines, got %s", itemsField, valueKind(items))
	}
	for i, it := range list {
		var line map[string]json.RawMessage
		if valueKind(it) != "an object" || json.Unmarshal(it, &line) != nil {
			return so, fieldErr(itemsField, "%s[%d]: want an order line object, got %s", itemsField, i, valueKind(it))
		}
		rec, err := readRecord(line, lineIndex)
		if err != nil {
			return so, err
		}
		so.items = append(so.items, rec)
	}
	return so, ambiguous
}

// MarshalJSON writes the order by the documented names in the documented
// order, each value as the partner wrote it: the same content gives the
// same bytes whatever the key spelling, order or spacing of the file.
func (so salesOrder) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	var items func()
	if _, ok := so.head[itemsField]; ok || len(so.items) > 0 {
		items = func() {
			b.WriteByte('[')
			for i, it := range so.items {
				if i > 0 {
					b.WriteByte(',')
				}
				writeRecord(&b, it, lineFields, nil)
			}
			b.WriteByte(']')
		}
	}
	writeRecord(&b, so.head, orderFields, items)
	return b.Bytes(), nil
}

// writeRecord writes the fields of r as a JSON object in the order of
// fields; items writes the value of orderItems.
func writeRecord(b *bytes.Buffer, r record, fields []string, items func()) {
	b.WriteByte('{')
	n := 0
	for _, f := range fields {
		v, ok := r[f]
		if f == itemsField {
			// The lines are written by items, or not at all.
			ok = items != nil
		}
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(f)
		b.Write(k)
		b.WriteByte(':')
		if f == itemsField && items != nil {
			items()
			continue
		}
		b.Write(v)
	}
	b.WriteByte('}')
}

// rejectHeader are the columns of an order's row in the rejects file,
// after line and error.
var rejectHeader = []string{"order", "onlineReferenceNo", "rowNo", "itemReferenceCode", "itemId", "field"}

// timeLayouts are the shapes of timestamps partners send; a time without
// a zone is taken as UTC.
var timeLayouts = []string{
	"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05.000",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04", "02-01-2006T15:04:05", "02-01-2006 15:04:05", "2006/01/02 15:04:05",
	"02/01/2006 15:04:05", "2006-01-02",
}

// ParseTime reads a timestamp in any of the shapes partners send and
// returns it as UTC YYYY-MM-DDThh:mm:ssZ. A space after a colon is
// dropped: GoFrugal's own sample writes "2013-11-22 13: 00: 00".
func ParseTime(s string) (string, error) {
	s = strings.TrimSpace(s)
	t := strings.ReplaceAll(s, ": ", ":")
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, t); err == nil {
			return v.UTC().Format(db.TimeLayout), nil
		}
	}
	return "", fmt.Errorf("%q is not a date and time (want YYYY-MM-DD HH:MM:SS or ISO 8601)", s)
}

// Stats says what became of the orders of a file.
type Stats struct {
	Added, Updated, Unchanged, Short int64
}

// Upload is the order upload of partner p, for imports.Run; stats
// collects what became of the orders.
func Upload(p partner.Profile, stats *Stats) imports.Upload {
	return partner.Upload(Kind, "orders", p, rejectHeader, func(s *imports.Session, f io.ReadSeeker, path string) error {
		im := &importer{s: s, path: path, p: p, stats: stats, st: newStock(s.Ctx, s.Conn, s.Opts.AllowNegative),
			loaded: map[string]bool{}}
		return im.run(f)
	})
}

// Import applies an order file of partner p.
func Import(ctx context.Context, d *db.DB, p partner.Profile, path string, o imports.Options) (*imports.Result, Stats, error) {
	return imports.RunWithStats(ctx, d, Upload, p, path, o)
}

type importer struct {
	s     *imports.Session
	path  string
	p     partner.Profile
	stats *Stats
	st    *stock
	// loaded caches whether a warehouse that a locationId maps to is loaded.
	loaded map[string]bool
}

func (im *importer) run(f io.Reader) error {
	return partner.EachRecord(im.s, im.p, "orders reserve stock there", "orders", f, im.order)
}

// rejectError is why an order is rejected; row is the rowNo of the line
// it is about and field the field, if any.
type rejectError struct {
	row, ref, itemID, field string
	msg                     string
}

func (r *rejectError) Error() string { return r.msg }

func rejectf(format string, args ...any) error {
	return &rejectError{msg: fmt.Sprintf(format, args...)}
}

// fieldErr is a rejectError about field f.
func fieldErr(f, format string, args ...any) error {
	return &rejectError{field: f, msg: fmt.Sprintf(format, args...)}
}

// parsed is an order checked and mapped to our item/SKUs.
type parsed struct {
	salesOrder
	key, orderTime, status, payment string
	// locationID is the order's locationId as given; location the
	// partner's location it stands for (its own location without one);
	// warehouse ours.
	locationID, location, warehouse string
	totals                          [5]int64 // quantity, amount, tax, discount, shipping
	lines                           []Line
	source                          string // the order as kept (salesOrder.MarshalJSON)
	sha                             string
}

// order applies the n-th object of the file, which starts at line: an
// order, or the "List all sales orders" response {"salesOrders": [...]},
// whose orders are numbered n.1, n.2, ... in messages and rejects.
func (im *importer) order(n, line int, raw json.RawMessage) error {
	if list, ok := orderList(raw); ok {
		for i, o := range list {
			if err := im.one(fmt.Sprintf("%d.%d", n, i+1), line, o); err != nil {
				return err
			}
		}
		return nil
	}
	return im.one(fmt.Sprint(n), line, raw)
}

// orderList is the orders of a "List all sales orders" response, ok false
// for anything else. A salesOrders that is not an array is not a list:
// the object is then read as an order and refused as one.
func orderList(raw json.RawMessage) (list []json.RawMessage, ok bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	for k, v := range obj {
		if strings.EqualFold(k, listField) && valueKind(v) == "an array" {
			err := json.Unmarshal(v, &list)
			return list, err == nil
		}
	}
	return nil, false
}

// one applies order n of the file (its number, or n.i in a list).
func (im *importer) one(n string, line int, raw json.RawMessage) error {
	s := im.s
	s.Result.Read++
	so, err := decodeOrder(raw)
	key := so.head.str("onlineReferenceNo")
	var fe *partner.FieldError
	if ferr := partner.CheckFields(raw, s.Opts.MaxFieldLength, fieldLimit); errors.As(ferr, &fe) {
		err = fieldErr(fe.Key, "%v", fe)
		if strings.EqualFold(fe.Key, "onlineReferenceNo") {
			key = "" // the bad field itself, named by the message
		}
	} else if ferr != nil {
		err = rejectf("%v", ferr)
	}
	if err == nil {
		var pr *parsed
		if pr, err = im.check(so); err == nil {
			err = im.apply(pr)
		}
	}
	var rj *rejectError
	if errors.As(err, &rj) {
		who := fmt.Sprintf("order %s of the file", n)
		if key != "" {
			who = fmt.Sprintf("order %s (%s)", key, who)
		}
		where := ""
		if rj.row != "" {
			where = ", rowNo " + rj.row
		}
		msg := fmt.Sprintf("%s%s: %s", who, where, rj.msg)
		s.Opts.Warn(fmt.Sprintf("%s: line %d: %s: the order is rejected", im.path, line, msg))
		return s.Reject(line, msg, []string{n, key, rj.row, rj.ref, rj.itemID, rj.field})
	}
	if err != nil {
		return db.Classify(err)
	}
	s.Result.Applied++
	return nil
}

// check validates an order and maps its lines to our item/SKUs and its
// locationId to our warehouse.
func (im *importer) check(so salesOrder) (*parsed, error) {
	h := so.head
	if err := h.check(orderFields); err != nil {
		return nil, err
	}
	pr := &parsed{salesOrder: so, key: h.str("onlineReferenceNo")}
	if pr.key == "" {
		return nil, fieldErr("onlineReferenceNo", "onlineReferenceNo is required (the order's unique key)")
	}
	if h.str("createdAt") == "" {
		return nil, fieldErr("createdAt", "createdAt is required")
	}
	for _, f := range []string{"createdAt", "updatedAt", "deliveryDate"} {
		if v := h.str(f); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				return nil, fieldErr(f, "%s: %v", f, err)
			}
			if f == "createdAt" {
				pr.orderTime = t
			}
		}
	}
	switch strings.ToLower(h.str("status")) {
	case "", "pending":
		pr.status = StatusOpen
	case "cancel", "cancelled", "canceled":
		pr.status = StatusCancelled
	case "delivered":
		pr.status = StatusCompleted
	default:
		return nil, fieldErr("status", "status %s: want pending, delivered or cancelled", h["status"])
	}
	switch strings.ToUpper(h.str("paymentMode")) {
	case "":
	case "1", "COD":
		pr.payment = "COD"
	case "2", "CARD", "NCOD":
		pr.payment = "NCOD"
	default:
		return nil, fieldErr("paymentMode", "paymentMode %s: want 1 (COD) or 2 (card)", h["paymentMode"])
	}
	for i, f := range []string{"totalAmount", "totalTaxAmount", "totalDiscountAmount", "shippingCharge"} {
		v, _, err := h.amount(f)
		if err != nil {
			return nil, err
		}
		pr.totals[i+1] = v
	}
	if q := h.str("totalQuantity"); q != "" {
		n, err := partner.Quantity(q)
		if err != nil {
			return nil, fieldErr("totalQuantity", "totalQuantity %s: %v", h["totalQuantity"], err)
		}
		pr.totals[0] = n
	}
	if a2 := address2(h); utf8.RuneCountInString(a2) > customerMax["address2"] {
		return nil, fieldErr("customerAddressLine2", "customerAddressLine2, customerAddressLine3 and customerArea make our customer's address2 %q, "+
			"%d characters long, at most %d allowed (docs/schemas/customers.xsd)", a2, utf8.RuneCountInString(a2), customerMax["address2"])
	}
	if err := im.place(pr); err != nil {
		return nil, err
	}
	if len(so.items) == 0 {
		return nil, fieldErr(itemsField, "orderItems is empty: an order needs at least one line")
	}
	seen := map[int64]bool{}
	var qty int64
	for i, it := range so.items {
		l, err := im.line(i, it, seen)
		if err != nil {
			var rj *rejectError
			if errors.As(err, &rj) && rj.row == "" {
				rj.row, rj.ref, rj.itemID = it.str("rowNo"), it.str("itemReferenceCode"), it.str("itemId")
			}
			return nil, err
		}
		if qty, err = format.AddQuantity(qty, l.Ordered); err != nil {
			return nil, fieldErr(itemsField, "orderItems: the quantities add up to more than %d units", format.MaxQuantity)
		}
		pr.lines = append(pr.lines, l)
	}
	if h.str("totalQuantity") == "" {
		pr.totals[0] = qty
	}
	b, err := so.MarshalJSON()
	if err != nil {
		return nil, err
	}
	pr.source = string(b)
	sum := sha256.Sum256(b)
	pr.sha = hex.EncodeToString(sum[:])
	return pr, nil
}

// place finds our warehouse for the order's locationId
// (partner.Profile.WarehouseFor): the partner's warehouse without one, a
// mapped warehouse that is loaded, else the order is rejected.
func (im *importer) place(pr *parsed) error {
	pr.locationID = pr.head.str("locationId")
	w, ok := im.p.WarehouseFor(pr.locationID)
	if !ok {
		return fieldErr("locationId", "locationId %s is not a location of partner %s: map it to one of our warehouses in partners.%s.locations",
			pr.head["locationId"], im.p.Name, im.p.Name)
	}
	pr.warehouse, pr.location = w, pr.locationID
	if pr.location == "" {
		pr.location = im.p.Location
	}
	loaded, seen := im.loaded[w]
	if !seen {
		if err := im.s.Conn.QueryRowContext(im.s.Ctx, `SELECT EXISTS (SELECT 1 FROM warehouses WHERE warehouse = ?)`, w).Scan(&loaded); err != nil {
			return err
		}
		im.loaded[w] = loaded
	}
	if !loaded {
		return fieldErr("locationId", "locationId %s is our warehouse %s (partners.%s.locations), which is not loaded", pr.head["locationId"], w, im.p.Name)
	}
	return nil
}

// line checks the i-th line of an order (orderItems[i]) and maps it to our
// item/SKU; seen holds the rowNos before it.
func (im *importer) line(i int, it record, seen map[int64]bool) (Line, error) {
	var l Line
	if err := it.check(lineFields); err != nil {
		return l, err
	}
	row := it.str("rowNo")
	if row == "" {
		row = fmt.Sprint(i + 1)
	}
	fail := func(field, format string, args ...any) error {
		return &rejectError{row: row, ref: it.str("itemReferenceCode"), itemID: it.str("itemId"), field: field, msg: fmt.Sprintf(format, args...)}
	}
	no, err := format.ParseQuantity(row)
	if err != nil || no <= 0 {
		return l, fail("rowNo", "rowNo %s: want a whole number above 0", it["rowNo"])
	}
	if no >= lineIDs {
		return l, fail("rowNo", "rowNo %d: at most %d (a line's omsSubOrderItemId in the sales posting is the order's id × %d + rowNo)", no, lineIDs-1, lineIDs)
	}
	if seen[no] {
		return l, fail("rowNo", "rowNo %d is given twice", no)
	}
	seen[no] = true
	l.No, l.RefCode = no, it.str("itemReferenceCode")
	q := it.str("quantity")
	switch l.Ordered, err = partner.Quantity(q); {
	case q == "":
		return l, fail("quantity", "quantity is required")
	case err != nil:
		return l, fail("quantity", "quantity %s: %v", it["quantity"], err)
	case l.Ordered <= 0:
		return l, fail("quantity", "quantity %s: want a whole number above 0", it["quantity"])
	}
	for _, a := range []struct {
		name string
		to   *int64
	}{{"salePrice", &l.SalePrice}, {"itemAmount", &l.ItemAmount}, {"taxPercentage", &l.TaxPercent},
		{"discountPercentage", &l.DiscountPercent}, {"itemMarketPrice", nil}} {
		v, _, err := it.amount(a.name)
		if err != nil {
			return l, fail(a.name, "%v", err)
		}
		if (a.name == "taxPercentage" || a.name == "discountPercentage") && (v < 0 || v > 100*format.AmountScale) {
			return l, fail(a.name, "%s %s: a percentage from 0 to 100", a.name, it[a.name])
		}
		if a.to != nil {
			*a.to = v
		}
	}
	if l.Item, l.SKU, err = im.resolve(it.str("itemReferenceCode"), it.str("itemId")); err != nil {
		var rj *rejectError
		if errors.As(err, &rj) {
			return l, fail(rj.field, "%s", rj.msg)
		}
		return l, err
	}
	return l, nil
}

// resolve finds the item/SKU a line names: itemReferenceCode through the
// partner's SKU code source, or, without one, itemId as our item without
// SKUs. A line it cannot resolve is a *rejectError.
func (im *importer) resolve(ref, itemID string) (item, sku string, err error) {
	s := im.s
	p, code, field := im.p, ref, "itemReferenceCode"
	switch {
	case ref == "" && itemID == "":
		return "", "", fieldErr("itemReferenceCode", "itemReferenceCode (or, for an item without SKUs, itemId) is required")
	case ref == "":
		// itemId alone: our item without SKUs.
		p, code, field = partner.Profile{SKUCode: partner.SKUCodeItem}, itemID, "itemId"
	case p.SKUCode == partner.SKUCodeItem:
		if itemID == "" {
			return "", "", fieldErr("itemId", "itemId is required with itemReferenceCode %q (partners.%s.sku_code is item: itemId is our item, itemReferenceCode our SKU)", ref, im.p.Name)
		}
		code = itemID + "/" + ref
	}
	item, sku, err = partner.Resolve(s.Ctx, s.Conn, p, code)
	var ce *partner.CodeError
	switch {
	case !errors.As(err, &ce):
		return item, sku, err
	case ce.Ambiguous:
		return "", "", fieldErr(field, "%s %q names more than one SKU", field, code)
	case field == "itemId":
		return "", "", fieldErr(field, "itemId %q without itemReferenceCode: no item without SKUs has that number", itemID)
	}
	return "", "", fieldErr(field, "unknown %s %q: %s", field, ref, ce.Reason)
}

// apply adds or updates the order. A unique violation means that another
// import added the same order (or its new customer) after this one looked:
// on PostgreSQL writers run at once. The savepoint undid the attempt, and
// the second one finds what the other added and updates it, as a later
// file would.
func (im *importer) apply(pr *parsed) error {
	err := im.attempt(pr)
	if db.IsUniqueViolation(err) {
		err = im.attempt(pr)
	}
	return err
}

// attempt adds or updates the order, in a savepoint of its own: a failure
// in the middle leaves nothing of it.
func (im *importer) attempt(pr *parsed) (err error) {
	s := im.s
	if _, err := s.Conn.ExecContext(s.Ctx, `SAVEPOINT ord`); err != nil {
		return err
	}
	trig, seq := im.st.trig, im.st.seq
	defer func() {
		if err != nil {
			// The change sequence number may have been taken inside.
			s.Conn.ExecContext(context.Background(), `ROLLBACK TO ord`)
			im.st.trig, im.st.seq = trig, seq
		}
		s.Conn.ExecContext(context.Background(), `RELEASE ord`)
	}()
	var id int64
	var sha, status string
	// Locked on PostgreSQL (lockOrder): what update does depends on the
	// status read here.
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT id, content_sha, status FROM orders WHERE partner = ? AND external_key = ?`+im.st.lock,
		im.p.Name, pr.key).Scan(&id, &sha, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = im.add(pr)
	case err != nil:
		return err
	case sha == pr.sha:
		im.stats.Unchanged++
		return nil
	default:
		err = im.update(pr, id, status)
	}
	if err != nil {
		return err
	}
	s.Result.Triggers = im.st.trig
	return nil
}

func (im *importer) add(pr *parsed) error {
	s := im.s
	customer, err := im.customer(pr)
	if err != nil {
		return err
	}
	seq, err := db.NextSequence(s.Ctx, s.Conn, "orders")
	if err != nil {
		return err
	}
	now := db.Now()
	var id int64
	err = s.Conn.QueryRowContext(s.Ctx, `INSERT INTO orders(order_code, partner, external_key, warehouse, status, content_sha, file_id,
  order_time, created_at, updated_at) VALUES (?, ?, ?, ?, 'open', '', ?, '', ?, ?) RETURNING id`,
		fmt.Sprintf("SO%07d", seq), im.p.Name, pr.key, pr.warehouse, s.FileID, now, now).Scan(&id)
	if err != nil {
		return err
	}
	if err := im.header(pr, id, customer); err != nil {
		return err
	}
	if err := im.reserveLines(id, pr.warehouse, pr.lines, nil); err != nil {
		return err
	}
	o, err := load(s.Ctx, s.Conn, id)
	if err != nil {
		return err
	}
	if err := addEvent(s.Ctx, s.Conn, o, EventCreate, nil); err != nil {
		return err
	}
	if err := queueStatus(s.Ctx, s.Conn, &o); err != nil {
		return err
	}
	im.stats.Added++
	// A short order that arrives cancelled or delivered is not short:
	// the transition below releases or ships it.
	if o.Short > 0 && pr.status == StatusOpen {
		im.stats.Short++
		s.Opts.Warn(fmt.Sprintf("%s: order %s (%s): %d units short in warehouse %s: accepted, see orders list --short",
			im.path, pr.key, o.Code, o.Short, o.Warehouse))
	}
	return im.transition(id, pr.status)
}

// header writes the header fields of the order from the file, its
// warehouse and the order as kept (source).
func (im *importer) header(pr *parsed, id int64, customer string) error {
	h := pr.head
	channel := h.str("Channel")
	if channel == "" {
		channel = im.p.Name
	}
	_, err := im.s.Conn.ExecContext(im.s.Ctx, `UPDATE orders SET channel = ?, warehouse = ?, location_code = ?, location_id = ?,
  customer = ?, payment_method = ?, order_time = ?, customer_name = ?, customer_mobile = ?, customer_email = ?, ship_name = ?,
  ship_address1 = ?, ship_address2 = ?, ship_city = ?, ship_state = ?, ship_country = ?, ship_zip = ?, ship_phone = ?,
  ship_email = ?, total_quantity = ?, total_amount = ?, total_tax = ?, total_discount = ?, shipping_charge = ?, content_sha = ?,
  source = ?, updated_at = ? WHERE id = ?`,
		channel, pr.warehouse, pr.location, pr.locationID, customer, pr.payment, pr.orderTime, h.str("customerName"),
		firstOf(h, "customerMobile", "customerPhone"), h.str("customerEmail"), h.str("shippingName"), h.str("shippingAddress1"),
		h.str("ShippingAddress2"), h.str("shippingPlace"), h.str("shippingState"), h.str("shippingCountry"),
		h.str("shippingPincode"), firstOf(h, "shippingMobile", "shippingPhone"), h.str("shippingEmail"),
		pr.totals[0], pr.totals[1], pr.totals[2], pr.totals[3], pr.totals[4], pr.sha, pr.source, db.Now(), id)
	return err
}

// firstOf is the first of the fields that is not empty.
func firstOf(r record, fields ...string) string {
	for _, f := range fields {
		if v := r.str(f); v != "" {
			return v
		}
	}
	return ""
}

// reserveLines writes the lines and reserves their open quantities in
// warehouse; cancelled keeps what was cancelled of a line number before an
// update.
func (im *importer) reserveLines(id int64, warehouse string, lines []Line, cancelled map[int64]int64) error {
	s := im.s
	for _, l := range lines {
		l.Cancelled = min(cancelled[l.No], l.Ordered)
		var err error
		if open := l.Open(); open > 0 {
			if l.Location, l.Short, err = im.st.reserve(l.Item, l.SKU, warehouse, open); errors.Is(err, ErrRefused) {
				return &rejectError{row: fmt.Sprint(l.No), ref: l.RefCode, field: "quantity",
					msg: fmt.Sprintf("quantity %d: %s", open, strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))}
			} else if err != nil {
				return err
			}
		}
		_, err = s.Conn.ExecContext(s.Ctx, `INSERT INTO order_lines(order_id, line_no, item, sku, ref_code, location, ordered, cancelled,
  short, sale_price, item_amount, tax_percent, discount_percent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, l.No, l.Item, l.SKU, l.RefCode, l.Location, l.Ordered, l.Cancelled, l.Short, l.SalePrice, l.ItemAmount, l.TaxPercent, l.DiscountPercent)
		if err != nil {
			return err
		}
	}
	return nil
}

// transition brings an order to the status the file gives it.
func (im *importer) transition(id int64, status string) error {
	var err error
	switch status {
	case StatusCancelled:
		_, err = cancel(im.s.Ctx, im.s.Conn, im.st, id, 0, 0)
	case StatusCompleted:
		_, err = complete(im.s.Ctx, im.s.Conn, im.st, id)
	}
	if errors.Is(err, ErrRefused) {
		return rejectf("%v", err)
	}
	return err
}

// update applies a changed re-send of an order: the later one wins.
func (im *importer) update(pr *parsed, id int64, status string) error {
	s := im.s
	old, err := load(s.Ctx, s.Conn, id)
	if err != nil {
		return err
	}
	if status != StatusOpen && pr.status != status {
		return fieldErr("status", "order %s is %s here; a change to %s is not applied", old.Code, status, OnlineStatus(pr.status))
	}
	if status != StatusOpen && pr.warehouse != old.Warehouse {
		// Its stock was released or shipped there.
		return fieldErr("locationId", "order %s is %s here, in warehouse %s; a move to locationId %s (warehouse %s) is not applied",
			old.Code, status, old.Warehouse, pr.head["locationId"], pr.warehouse)
	}
	customer, err := im.customer(pr)
	if err != nil {
		return err
	}
	if err := im.header(pr, id, customer); err != nil {
		return err
	}
	if _, err := s.Conn.ExecContext(s.Ctx, `UPDATE orders SET revision = revision + 1 WHERE id = ?`, id); err != nil {
		return err
	}
	im.stats.Updated++
	if status != StatusOpen {
		s.Opts.Warn(fmt.Sprintf("%s: order %s (%s) changed; it is %s here, so only its header is updated", im.path, pr.key, old.Code, status))
		return nil
	}
	cancelled := map[int64]int64{}
	for _, l := range old.Lines {
		cancelled[l.No] = l.Cancelled
		if err := im.st.change(l.Item, l.SKU, old.Warehouse, l.Location, -l.Open(), 0); err != nil {
			return err
		}
	}
	if _, err := s.Conn.ExecContext(s.Ctx, `DELETE FROM order_lines WHERE order_id = ?`, id); err != nil {
		return err
	}
	if err := im.reserveLines(id, pr.warehouse, pr.lines, cancelled); err != nil {
		return err
	}
	o, err := load(s.Ctx, s.Conn, id)
	if err != nil {
		return err
	}
	refreshed, err := refreshCreate(s.Ctx, s.Conn, o)
	if err != nil {
		return err
	}
	sent := "the ready SUBORDER_CREATE event carries the new content"
	if !refreshed {
		sent = "its SUBORDER_CREATE event was exported already and is not sent again"
	}
	s.Opts.Warn(fmt.Sprintf("%s: order %s (%s) changed, the later one wins (revision %d); %s", im.path, pr.key, o.Code, o.Revision, sent))
	if o.Short > 0 && pr.status == StatusOpen {
		im.stats.Short++
	}
	return im.transition(id, pr.status)
}

// customer finds the customer of the order's mobile number
// (customerMobile, else customerPhone), or creates one with the next
// number of the online customer sequence (W0000001, ...) and the order's
// customer name, email and address. A customer found is left as it is:
// the order does not change our customer records.
func (im *importer) customer(pr *parsed) (string, error) {
	s := im.s
	h := pr.head
	phone := firstOf(h, "customerMobile", "customerPhone")
	mobile := inquiry.Digits(phone)
	if mobile == "" {
		return "", nil
	}
	var c string
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT customer FROM customers WHERE deleted_at IS NULL AND `+digitsSQL("phone")+` = ?
ORDER BY customer LIMIT 1`, mobile).Scan(&c)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return c, err
	}
	seq, err := im.st.changeSeq()
	if err != nil {
		return "", err
	}
	first, last := splitName(h.str("customerName"))
	now := db.Now()
	for {
		n, err := db.NextSequence(s.Ctx, s.Conn, "online_customers")
		if err != nil {
			return "", err
		}
		c = fmt.Sprintf("W%07d", n)
		res, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO customers(customer, first_name, last_name, address1, address2, city, state,
  postal_code, country, email, phone, change_seq, added_seq, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(customer) DO NOTHING`,
			c, first, last, h.str("customerAddressLine1"), address2(h), h.str("customerCity"), h.str("customerState"),
			h.str("customerPincode"), h.str("customerCountry"), h.str("customerEmail"), phone, seq, seq, now, now)
		if err != nil {
			return "", err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			break
		}
	}
	if _, err := trigger.Fold(s.Ctx, s.Conn, trigger.CodeCustomer, `SELECT ? AS record_key, '' AS sub_key, 'A' AS capture`, c); err != nil {
		return "", err
	}
	s.Opts.Warn(fmt.Sprintf("%s: order %s: new customer %s for mobile %s", im.path, pr.key, c, phone))
	return c, nil
}

// customerColumns are the columns of our customer record that the
// order's fields fill when it creates a customer (customer), and
// customerMax their lengths in the customer export's schema
// (docs/schemas/customers.xsd): an order is held to them, so that a
// customer it creates passes that schema.
var (
	customerColumns = map[string]string{"customername": "first_name", "customeraddressline1": "address1",
		"customeraddressline2": "address2", "customeraddressline3": "address2", "customerarea": "address2", "customercity": "city",
		"customerstate": "state", "customerpincode": "postal_code", "customercountry": "country", "customeremail": "email",
		"customermobile": "phone", "customerphone": "phone"}
	customerMax = map[string]int{"first_name": 60, "last_name": 60, "address1": 60, "address2": 60, "city": 40, "state": 20,
		"postal_code": 20, "country": 3, "email": 120, "phone": 30}
)

// customerLimit is the length limit of an order field (lower case) that
// fills a customer column; 0 for the others.
func customerLimit(key string) int { return customerMax[customerColumns[key]] }

// fieldLimit is the length limit of the values of key (lower case) for
// partner.CheckFields: a customer's column (customerLimit), the default
// for every other field the order keeps (its source), and none for keys
// it does not keep.
func fieldLimit(key string) int {
	if _, ok := orderIndex[key]; ok {
		return customerLimit(key)
	}
	if _, ok := lineIndex[key]; ok {
		return 0
	}
	if _, ok := oldNames[key]; ok {
		return 0
	}
	return -1
}

// address2 is our customer's second address line of an order: the
// second and third lines and the area (the locality within the city).
func address2(h record) string {
	var line2 []string
	for _, f := range []string{"customerAddressLine2", "customerAddressLine3", "customerArea"} {
		if v := h.str(f); v != "" {
			line2 = append(line2, v)
		}
	}
	return strings.Join(line2, ", ")
}

// digitsSQL keeps the digits of a phone column, for the usual separators.
func digitsSQL(col string) string {
	for _, sep := range []string{"-", " ", "(", ")", "+", "."} {
		col = "replace(" + col + ", '" + sep + "', '')"
	}
	return col
}

// splitName makes first and last name of "First Middle Last": the last
// word is the last name.
func splitName(s string) (first, last string) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "", "(online customer)"
	}
	return strings.Join(f[:len(f)-1], " "), f[len(f)-1]
}

// retrievedOrder is the body of GoFrugal's "Retrieve a sales order"
// response for an order: the order as the partner last sent it (source),
// with status and updatedAt (YYYY-MM-DD HH:MM:SS, UTC) as they are here.
// An order kept before sources were (source "") is its key alone.
func retrievedOrder(source, key, status, updated string) (json.RawMessage, error) {
	so := salesOrder{head: record{}}
	if source != "" {
		var err error
		if so, err = decodeOrder(json.RawMessage(source)); err != nil {
			return nil, fmt.Errorf("the order as kept: %w", err)
		}
	} else {
		so.head["onlineReferenceNo"], _ = json.Marshal(key)
	}
	so.head["status"], _ = json.Marshal(WireStatus(status))
	if t, err := time.Parse(db.TimeLayout, updated); err == nil {
		so.head["updatedAt"], _ = json.Marshal(t.Format("2006-01-02 15:04:05"))
	}
	return so.MarshalJSON()
}

// WireStatus is an order's status as the online store's API writes it:
// pending, delivered or cancelled ("Retrieve a sales order" shows
// "pending" in lower case; OnlineStatus is the same word capitalised).
func WireStatus(status string) string { return strings.ToLower(OnlineStatus(status)) }
