package orders

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/inquiry"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Kind is the file ledger kind of order files.
const Kind = "orders"

// flex is a JSON value read as text (imports.Flex).
type flex = imports.Flex

// posOrder is a sales order of the store POS's online store. Keys match
// in any letter case (encoding/json does that).
type posOrder struct {
	OnlineReferenceNo   flex      `json:"onlineReferenceNo"`
	CreatedAt           flex      `json:"createdAt"`
	Status              flex      `json:"status"`
	Channel             flex      `json:"channel"`
	TotalQuantity       flex      `json:"totalQuantity"`
	TotalAmount         flex      `json:"totalAmount"`
	PaymentMode         flex      `json:"paymentMode"`
	TotalTaxAmount      flex      `json:"totalTaxAmount"`
	TotalDiscountAmount flex      `json:"totalDiscountAmount"`
	ShippingCharge      flex      `json:"shippingCharge"`
	ShippingName        flex      `json:"shippingName"`
	ShippingAddress1    flex      `json:"shippingAddress1"`
	ShippingAddress2    flex      `json:"shippingAddress2"`
	ShippingCity        flex      `json:"shippingCity"`
	ShippingState       flex      `json:"shippingState"`
	ShippingCountry     flex      `json:"shippingCountry"`
	ShippingPincode     flex      `json:"shippingPincode"`
	ShippingMobile      flex      `json:"shippingMobile"`
	ShippingEmail       flex      `json:"shippingEmail"`
	CustomerName        flex      `json:"customerName"`
	CustomerMobile      flex      `json:"customerMobile"`
	CustomerEmail       flex      `json:"customerEmail"`
	OrderItems          []posItem `json:"orderItems"`
}

type posItem struct {
	RowNo              flex `json:"rowNo"`
	ItemID             flex `json:"itemId"`
	ItemReferenceCode  flex `json:"itemReferenceCode"`
	SalePrice          flex `json:"salePrice"`
	Quantity           flex `json:"quantity"`
	ItemAmount         flex `json:"itemAmount"`
	TaxPercentage      flex `json:"taxPercentage"`
	DiscountPercentage flex `json:"discountPercentage"`
}

// rejectHeader are the columns of an order's row in the rejects file,
// after line and error.
var rejectHeader = []string{"order", "onlineReferenceNo", "rowNo", "itemReferenceCode", "itemId"}

// timeLayouts are the shapes of timestamps partners send; a time without
// a zone is taken as UTC.
var timeLayouts = []string{
	"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05.000",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04", "02-01-2006T15:04:05", "02-01-2006 15:04:05", "2006/01/02 15:04:05",
	"02/01/2006 15:04:05", "2006-01-02",
}

// ParseTime reads a timestamp in any of the shapes partners send and
// returns it as UTC YYYY-MM-DDThh:mm:ssZ.
func ParseTime(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Format(db.TimeLayout), nil
		}
	}
	return "", fmt.Errorf("%q is not a date and time (want YYYY-MM-DD HH:MM:SS or ISO 8601)", s)
}

// Stats says what became of the orders of a file.
type Stats struct {
	Added, Updated, Unchanged, Short int64
}

// Upload is the order upload of partner name, for imports.Run; stats
// collects what became of the orders.
func Upload(name string, p config.Partner, stats *Stats) imports.Upload {
	return imports.Upload{Kind: Kind, What: "orders", Partner: name, Open: func(f *os.File, path string, o *imports.Options) ([]string, func(*imports.Session) error, error) {
		return rejectHeader, func(s *imports.Session) error {
			im := &importer{s: s, path: path, partner: name, p: p, stats: stats, st: &stock{ctx: s.Ctx, q: s.Conn}}
			return im.run(f)
		}, nil
	}}
}

// Import applies an order file of partner name.
func Import(ctx context.Context, d *db.DB, name string, p config.Partner, path string, o imports.Options) (*imports.Result, Stats, error) {
	var st Stats
	res, err := imports.Run(ctx, d, Upload(name, p, &st), path, o)
	return res, st, err
}

type importer struct {
	s       *imports.Session
	path    string
	partner string
	p       config.Partner
	stats   *Stats
	st      *stock
}

func (im *importer) run(f io.Reader) error {
	return partner.EachRecord(im.s, im.partner, im.p, "orders reserve stock there", "orders", f, im.order)
}

// rejectError is why an order is rejected; row is the rowNo of the line
// it is about, if any.
type rejectError struct {
	row, ref, itemID string
	msg              string
}

func (r *rejectError) Error() string { return r.msg }

func rejectf(format string, args ...any) error {
	return &rejectError{msg: fmt.Sprintf(format, args...)}
}

// parsed is an order checked and mapped to our item/SKUs.
type parsed struct {
	posOrder
	key, orderTime, status, payment string
	totals                          [5]int64 // quantity, amount, tax, discount, shipping
	lines                           []Line
	sha                             string
}

// order applies the n-th order of the file, which starts at line.
func (im *importer) order(n, line int, raw json.RawMessage) error {
	s := im.s
	s.Result.Read++
	var po posOrder
	key := ""
	err := json.Unmarshal(raw, &po)
	var pr *parsed
	if err == nil {
		key = string(po.OnlineReferenceNo)
		if pr, err = im.check(po); err == nil {
			err = im.apply(pr)
		}
	} else {
		err = rejectf("not an order: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	var rj *rejectError
	if errors.As(err, &rj) {
		who := fmt.Sprintf("order %d of the file", n)
		if key != "" {
			who = fmt.Sprintf("order %s (%s)", key, who)
		}
		where := ""
		if rj.row != "" {
			where = ", rowNo " + rj.row
		}
		msg := fmt.Sprintf("%s%s: %s", who, where, rj.msg)
		s.Opts.Warn(fmt.Sprintf("%s: line %d: %s: the order is rejected", im.path, line, msg))
		return s.Reject(line, msg, []string{fmt.Sprint(n), key, rj.row, rj.ref, rj.itemID})
	}
	if err != nil {
		return db.Classify(err)
	}
	s.Result.Applied++
	return nil
}

// check validates an order and maps its lines to our item/SKUs.
func (im *importer) check(po posOrder) (*parsed, error) {
	pr := &parsed{posOrder: po, key: string(po.OnlineReferenceNo)}
	if pr.key == "" {
		return nil, rejectf("onlineReferenceNo is required (the order's unique key)")
	}
	if po.CreatedAt == "" {
		return nil, rejectf("createdAt is required")
	}
	var err error
	if pr.orderTime, err = ParseTime(string(po.CreatedAt)); err != nil {
		return nil, rejectf("createdAt: %v", err)
	}
	switch strings.ToLower(string(po.Status)) {
	case "", "pending":
		pr.status = StatusOpen
	case "cancel", "cancelled", "canceled":
		pr.status = StatusCancelled
	case "delivered":
		pr.status = StatusCompleted
	default:
		return nil, rejectf("status %q: want Pending, Cancel or Delivered", po.Status)
	}
	switch strings.ToUpper(string(po.PaymentMode)) {
	case "":
	case "1", "COD":
		pr.payment = "COD"
	case "2", "CARD", "NCOD":
		pr.payment = "NCOD"
	default:
		return nil, rejectf("paymentMode %q: want 1 (COD) or 2 (card)", po.PaymentMode)
	}
	for i, a := range []struct {
		name string
		v    flex
	}{{"totalQuantity", po.TotalQuantity}, {"totalAmount", po.TotalAmount}, {"totalTaxAmount", po.TotalTaxAmount},
		{"totalDiscountAmount", po.TotalDiscountAmount}, {"shippingCharge", po.ShippingCharge}} {
		if a.v == "" {
			continue
		}
		v, err := format.ParseAmount(string(a.v))
		if err != nil {
			return nil, rejectf("%s %q: %v", a.name, a.v, err)
		}
		pr.totals[i] = v
	}
	if len(po.OrderItems) == 0 {
		return nil, rejectf("orderItems is empty: an order needs at least one line")
	}
	seen := map[int64]bool{}
	var qty int64
	for i, it := range po.OrderItems {
		row := string(it.RowNo)
		if row == "" {
			row = fmt.Sprint(i + 1)
		}
		fail := func(format string, args ...any) error {
			return &rejectError{row: row, ref: string(it.ItemReferenceCode), itemID: string(it.ItemID), msg: fmt.Sprintf(format, args...)}
		}
		no, err := format.ParseInt(row)
		if err != nil || no <= 0 {
			return nil, fail("rowNo %q: want a whole number above 0", row)
		}
		if seen[no] {
			return nil, fail("rowNo %d is given twice", no)
		}
		seen[no] = true
		l := Line{No: no, RefCode: string(it.ItemReferenceCode)}
		if l.Ordered, err = wholeNumber(string(it.Quantity)); err != nil || l.Ordered <= 0 {
			return nil, fail("quantity %q: want a whole number above 0", it.Quantity)
		}
		for _, a := range []struct {
			name string
			v    flex
			to   *int64
		}{{"salePrice", it.SalePrice, &l.SalePrice}, {"itemAmount", it.ItemAmount, &l.ItemAmount},
			{"taxPercentage", it.TaxPercentage, &l.TaxPercent}, {"discountPercentage", it.DiscountPercentage, &l.DiscountPercent}} {
			if a.v == "" {
				continue
			}
			if *a.to, err = format.ParseAmount(string(a.v)); err != nil {
				return nil, fail("%s %q: %v", a.name, a.v, err)
			}
		}
		if l.Item, l.SKU, err = im.resolve(string(it.ItemReferenceCode), string(it.ItemID)); err != nil {
			var rj *rejectError
			if errors.As(err, &rj) {
				return nil, fail("%s", rj.msg)
			}
			return nil, err
		}
		qty += l.Ordered
		pr.lines = append(pr.lines, l)
	}
	if po.TotalQuantity == "" {
		pr.totals[0] = qty * format.AmountScale
	}
	if pr.totals[0]%format.AmountScale != 0 {
		return nil, rejectf("totalQuantity %q: want a whole number", po.TotalQuantity)
	}
	pr.totals[0] /= format.AmountScale
	b, err := json.Marshal(po)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	pr.sha = hex.EncodeToString(sum[:])
	return pr, nil
}

func wholeNumber(s string) (int64, error) {
	v, err := format.ParseAmount(s)
	if err != nil {
		return 0, err
	}
	if v%format.AmountScale != 0 {
		return 0, errors.New("not a whole number")
	}
	return v / format.AmountScale, nil
}

// resolve finds the item/SKU a line names: itemReferenceCode through the
// partner's SKU code source, or, without one, itemId as our item without
// SKUs. A line it cannot resolve is a *rejectError.
func (im *importer) resolve(ref, itemID string) (item, sku string, err error) {
	s := im.s
	p, code, field := im.p, ref, "itemReferenceCode"
	switch {
	case ref == "" && itemID == "":
		return "", "", rejectf("itemReferenceCode (or, for an item without SKUs, itemId) is required")
	case ref == "":
		// itemId alone: our item without SKUs.
		p, code, field = config.Partner{SKUCode: config.SKUCodeItem}, itemID, "itemId"
	case p.SKUCode == config.SKUCodeItem:
		if itemID == "" {
			return "", "", rejectf("itemId is required with itemReferenceCode %q (partners.%s.sku_code is item: itemId is our item, itemReferenceCode our SKU)", ref, im.partner)
		}
		code = itemID + "/" + ref
	}
	item, sku, err = partner.Resolve(s.Ctx, s.Conn, im.partner, p, code)
	var ce *partner.CodeError
	switch {
	case !errors.As(err, &ce):
		return item, sku, err
	case ce.Ambiguous:
		return "", "", rejectf("%s %q names more than one SKU", field, code)
	case field == "itemId":
		return "", "", rejectf("itemId %q without itemReferenceCode: no item without SKUs has that number", itemID)
	}
	return "", "", rejectf("unknown %s %q: %s", field, ref, ce.Reason)
}

// apply adds or updates the order, in a savepoint of its own: a failure
// in the middle leaves nothing of it.
func (im *importer) apply(pr *parsed) (err error) {
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
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT id, content_sha, status FROM orders WHERE partner = ? AND external_key = ?`,
		im.partner, pr.key).Scan(&id, &sha, &status)
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
	var seq int64
	err = s.Conn.QueryRowContext(s.Ctx, `INSERT INTO sequences(kind, last) VALUES ('orders', 1)
ON CONFLICT(kind) DO UPDATE SET last = last + 1 RETURNING last`).Scan(&seq)
	if err != nil {
		return err
	}
	now := db.Now()
	res, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO orders(order_code, partner, external_key, warehouse, status, content_sha, file_id,
  order_time, created_at, updated_at) VALUES (?, ?, ?, ?, 'open', '', ?, '', ?, ?)`,
		fmt.Sprintf("SO%07d", seq), im.partner, pr.key, im.p.Warehouse, s.FileID, now, now)
	if err != nil {
		return err
	}
	id, _ := res.LastInsertId()
	if err := im.header(pr, id, customer); err != nil {
		return err
	}
	if err := im.reserveLines(id, pr.lines, nil); err != nil {
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
	if o.Short > 0 {
		im.stats.Short++
		s.Opts.Warn(fmt.Sprintf("%s: order %s (%s): %d units short in warehouse %s: accepted, see orders list --short",
			im.path, pr.key, o.Code, o.Short, o.Warehouse))
	}
	return im.transition(id, pr.status)
}

// header writes the header fields of the order from the file.
func (im *importer) header(pr *parsed, id int64, customer string) error {
	p := pr.posOrder
	channel := string(p.Channel)
	if channel == "" {
		channel = im.partner
	}
	_, err := im.s.Conn.ExecContext(im.s.Ctx, `UPDATE orders SET channel = ?, location_code = ?, customer = ?, payment_method = ?,
  order_time = ?, customer_name = ?, customer_mobile = ?, customer_email = ?, ship_name = ?, ship_address1 = ?, ship_address2 = ?,
  ship_city = ?, ship_state = ?, ship_country = ?, ship_zip = ?, ship_phone = ?, ship_email = ?, total_quantity = ?,
  total_amount = ?, total_tax = ?, total_discount = ?, shipping_charge = ?, content_sha = ?, updated_at = ? WHERE id = ?`,
		channel, im.p.Location, customer, pr.payment, pr.orderTime, string(p.CustomerName), string(p.CustomerMobile),
		string(p.CustomerEmail), string(p.ShippingName), string(p.ShippingAddress1), string(p.ShippingAddress2),
		string(p.ShippingCity), string(p.ShippingState), string(p.ShippingCountry), string(p.ShippingPincode),
		string(p.ShippingMobile), string(p.ShippingEmail), pr.totals[0], pr.totals[1], pr.totals[2], pr.totals[3], pr.totals[4],
		pr.sha, db.Now(), id)
	return err
}

// reserveLines writes the lines and reserves their open quantities;
// cancelled keeps what was cancelled of a line number before an update.
func (im *importer) reserveLines(id int64, lines []Line, cancelled map[int64]int64) error {
	s := im.s
	for _, l := range lines {
		l.Cancelled = min(cancelled[l.No], l.Ordered)
		var err error
		if open := l.Open(); open > 0 {
			if l.Location, l.Short, err = im.st.reserve(l.Item, l.SKU, im.p.Warehouse, open); err != nil {
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
		return rejectf("order %s is %s here; a change to %s is not applied", old.Code, status, OnlineStatus(pr.status))
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
	if err := im.reserveLines(id, pr.lines, cancelled); err != nil {
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
	if o.Short > 0 {
		im.stats.Short++
	}
	return im.transition(id, pr.status)
}

// customer finds the customer of the order's mobile number, or creates one
// with the next number of the online customer sequence (W0000001, ...).
func (im *importer) customer(pr *parsed) (string, error) {
	s := im.s
	mobile := inquiry.Digits(string(pr.CustomerMobile))
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
	first, last := splitName(string(pr.CustomerName))
	now := db.Now()
	for {
		var n int64
		if err := s.Conn.QueryRowContext(s.Ctx, `INSERT INTO sequences(kind, last) VALUES ('online_customers', 1)
ON CONFLICT(kind) DO UPDATE SET last = last + 1 RETURNING last`).Scan(&n); err != nil {
			return "", err
		}
		c = fmt.Sprintf("W%07d", n)
		res, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO customers(customer, first_name, last_name, email, phone, change_seq, added_seq,
  created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(customer) DO NOTHING`,
			c, first, last, string(pr.CustomerEmail), string(pr.CustomerMobile), seq, seq, now, now)
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
	s.Opts.Warn(fmt.Sprintf("%s: order %s: new customer %s for mobile %s", im.path, pr.key, c, pr.CustomerMobile))
	return c, nil
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
