package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Order statuses.
const (
	StatusOpen      = "open"
	StatusCompleted = "completed"
	StatusCancelled = "cancelled"
)

// Sentinel errors with exit codes of their own.
var (
	// ErrNotFound: no order has that code (or partner key).
	ErrNotFound = errors.New("no such order")
	// ErrRefused: the change is not possible (more cancelled than open, an
	// order that is not open); nothing was changed.
	ErrRefused = errors.New("refused")
)

// Address is a shipping address.
type Address struct {
	Name     string `json:"name"`
	Address1 string `json:"address1"`
	Address2 string `json:"address2"`
	City     string `json:"city"`
	State    string `json:"state"`
	Country  string `json:"country"`
	Zip      string `json:"zip"`
	Phone    string `json:"phone"`
	Email    string `json:"email"`
}

// Order is an order with its lines. Amounts are in ten-thousandths.
type Order struct {
	ID          int64
	Code        string
	Partner     string
	ExternalKey string
	Channel     string
	// Warehouse is ours, where the order's stock is reserved: the one
	// the partner's LocationID maps to (partner.Profile.WarehouseFor).
	Warehouse string
	// LocationID is the partner's locationId as the order gave it;
	// LocationCode the partner's location the order stands for (its
	// LocationID, or the partner's configured location without one).
	LocationID     string
	LocationCode   string
	Customer       string
	Status         string
	PaymentMethod  string
	OrderTime      string
	CustomerName   string
	CustomerMobile string
	CustomerEmail  string
	Ship           Address
	TotalQuantity  int64
	TotalAmount    int64
	TotalTax       int64
	TotalDiscount  int64
	ShippingCharge int64
	Revision       int64
	CreatedAt      string
	UpdatedAt      string
	Lines          []Line
	// Short is what the lines hold open beyond the warehouse's stock as
	// it is when the order is read (lineShort).
	Short int64
}

// Line is an order line.
type Line struct {
	No              int64
	Item            string
	SKU             string
	RefCode         string
	UPC             string
	Location        string
	Ordered         int64
	Cancelled       int64
	Fulfilled       int64
	Short           int64
	SalePrice       int64
	ItemAmount      int64
	TaxPercent      int64
	DiscountPercent int64
}

// Open is what the line still holds reserved: ordered less cancelled and
// fulfilled.
func (l Line) Open() int64 { return l.Ordered - l.Cancelled - l.Fulfilled }

// OnlineStatus is the status the online store knows: Pending, Delivered or
// Cancelled.
func OnlineStatus(status string) string {
	switch status {
	case StatusCompleted:
		return "Delivered"
	case StatusCancelled:
		return "Cancelled"
	}
	return "Pending"
}

const orderCols = `o.id, o.order_code, o.partner, o.external_key, o.channel, o.warehouse, o.location_id, o.location_code, o.customer, o.status,
  o.payment_method, o.order_time, o.customer_name, o.customer_mobile, o.customer_email, o.ship_name, o.ship_address1,
  o.ship_address2, o.ship_city, o.ship_state, o.ship_country, o.ship_zip, o.ship_phone, o.ship_email, o.total_quantity,
  o.total_amount, o.total_tax, o.total_discount, o.shipping_charge, o.revision, o.created_at, o.updated_at,
  coalesce(os.short, 0)`

// orderFrom is the FROM clause of the queries of orderCols: each order
// with the sum of its lines' short. A join to line_short grouped by order,
// not a subquery per order, so that both engines compute the lines' short
// once per statement (PostgreSQL evaluates such a correlated subquery over
// the CTE anew for every order it reads).
const orderFrom = ` FROM orders o LEFT JOIN (SELECT order_id, sum(short) AS short FROM line_short GROUP BY order_id) AS os ON os.order_id = o.id`

// lineShort is the short of every open order line as the stock is now,
// for the queries of orderCols: what is reserved of a SKU in a warehouse
// beyond its on hand (the stock rows of all its locations) is the newest
// open lines' short, newest first, each at most what it has open. So a
// receipt, an inventory load, a WMS receipt or a return that brings the
// stock makes the orders whole, oldest first, at the next read; the
// short stored when a line was reserved is only that moment's. cond
// narrows the open lines looked at (the index order_lines_open finds
// them): those that one order's short depends on, for reading that
// order (orderShort).
//
// open_lines sums what the newer lines of the same SKU and warehouse
// hold open (the window); line_short joins the stock only to the lines
// the statement keeps, after its filter on the order: a stock lookup
// inside the window ran once for every open line of the SKUs, which on
// PostgreSQL made reading one order take up to a second. A join grouped
// by line rather than a scalar subquery, which PostgreSQL would repeat
// for each use of need in the CASE.
func lineShort(cond string) string {
	return `WITH open_lines AS (SELECT l.order_id, l.line_no, l.item, l.sku, o.warehouse, l.ordered - l.cancelled - l.fulfilled AS open,
    coalesce(sum(l.ordered - l.cancelled - l.fulfilled) OVER (PARTITION BY l.item, l.sku, o.warehouse ORDER BY l.order_id DESC, l.line_no DESC
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer
  FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE l.ordered > l.cancelled + l.fulfilled` + cond + `),
line_short AS (SELECT order_id, line_no, CASE WHEN need <= 0 THEN 0 WHEN need < open THEN need ELSE open END AS short
  FROM (SELECT x.order_id, x.line_no, x.open, coalesce(sum(v.reserved) - sum(v.on_hand), 0) - x.newer AS need
    FROM open_lines x LEFT JOIN inventory v ON v.item = x.item AND v.sku = x.sku AND v.warehouse = x.warehouse
    GROUP BY x.order_id, x.line_no, x.open, x.newer) AS need_lines) `
}

// orderShort narrows lineShort to the order whose id is the statement's
// first argument (?1): the lines of its SKUs in it and in newer orders,
// the only ones its lines' short depends on, so reading a new order does
// not sum over every older open line of its SKUs (an index range of
// order_lines_open).
const orderShort = ` AND (l.item, l.sku) IN (SELECT item, sku FROM order_lines WHERE order_id = ?1) AND l.order_id >= ?1`

func scanOrder(s interface{ Scan(...any) error }) (Order, error) {
	var o Order
	err := s.Scan(&o.ID, &o.Code, &o.Partner, &o.ExternalKey, &o.Channel, &o.Warehouse, &o.LocationID, &o.LocationCode, &o.Customer, &o.Status,
		&o.PaymentMethod, &o.OrderTime, &o.CustomerName, &o.CustomerMobile, &o.CustomerEmail, &o.Ship.Name, &o.Ship.Address1,
		&o.Ship.Address2, &o.Ship.City, &o.Ship.State, &o.Ship.Country, &o.Ship.Zip, &o.Ship.Phone, &o.Ship.Email, &o.TotalQuantity,
		&o.TotalAmount, &o.TotalTax, &o.TotalDiscount, &o.ShippingCharge, &o.Revision, &o.CreatedAt, &o.UpdatedAt, &o.Short)
	return o, err
}

// load reads an order and its lines by id.
func load(ctx context.Context, q db.Querier, id int64) (Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, lineShort(orderShort)+`SELECT `+orderCols+orderFrom+` WHERE o.id = ?1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, err
	}
	rows, err := q.QueryContext(ctx, lineShort(orderShort)+`SELECT l.line_no, l.item, l.sku, l.ref_code, coalesce(s.upc, ''), l.location, l.ordered, l.cancelled,
  l.fulfilled, coalesce(ls.short, 0), l.sale_price, l.item_amount, l.tax_percent, l.discount_percent
FROM order_lines l LEFT JOIN skus s ON s.item = l.item AND s.sku = l.sku
  LEFT JOIN line_short ls ON ls.order_id = l.order_id AND ls.line_no = l.line_no WHERE l.order_id = ?1 ORDER BY l.line_no`, id)
	if err != nil {
		return o, err
	}
	defer rows.Close()
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.No, &l.Item, &l.SKU, &l.RefCode, &l.UPC, &l.Location, &l.Ordered, &l.Cancelled, &l.Fulfilled, &l.Short,
			&l.SalePrice, &l.ItemAmount, &l.TaxPercent, &l.DiscountPercent); err != nil {
			return o, err
		}
		o.Lines = append(o.Lines, l)
	}
	return o, rows.Err()
}

// find resolves an order argument: our order code, else a partner's key
// when only one partner has it.
func find(ctx context.Context, q db.Querier, code string) (int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM orders WHERE order_code = ?1
UNION ALL SELECT id FROM orders WHERE external_key = ?1 AND NOT EXISTS (SELECT 1 FROM orders WHERE order_code = ?1) LIMIT 2`, code)
	if err != nil {
		return 0, db.Classify(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	switch len(ids) {
	case 0:
		return 0, fmt.Errorf("%w %s", ErrNotFound, code)
	case 1:
		return ids[0], nil
	}
	return 0, fmt.Errorf("%w: %s is the key of orders of more than one partner: give the order code", ErrRefused, code)
}

// Get returns an order with its lines, by order code or partner key.
func Get(ctx context.Context, d *db.DB, code string) (Order, error) {
	id, err := find(ctx, d, code)
	if err != nil {
		return Order{}, err
	}
	o, err := load(ctx, d, id)
	return o, db.Classify(err)
}

// Filter selects orders to list.
type Filter struct {
	Partner string
	Status  string
	// Short keeps the orders with an open quantity that the stock does
	// not cover now (lineShort).
	Short bool
}

// List calls fn for each order that matches f, oldest first, without
// lines.
func List(ctx context.Context, d *db.DB, f Filter, fn func(Order) error) error {
	q := lineShort("") + `SELECT * FROM (SELECT ` + orderCols + ` AS short` + orderFrom + ` WHERE (?1 = '' OR o.partner = ?1)
  AND (?2 = '' OR o.status = ?2)) AS x`
	if f.Short {
		q += ` WHERE x.short > 0`
	}
	rows, err := d.QueryContext(ctx, q+` ORDER BY x.id`, f.Partner, f.Status)
	if err != nil {
		return db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return rows.Err()
}

// stock changes inventory rows inside a write transaction: it stamps them
// with the transaction's change sequence number and applies the inventory
// trigger rule.
type stock struct {
	ctx  context.Context
	q    db.Querier
	seq  int64
	trig int64
	// allowNegative lets a shipment take on hand below zero
	// (import.allow_negative_on_hand); without it such a shipment is
	// refused.
	allowNegative bool
	// lock is db.ForUpdate of the transaction (see change and lockOrder).
	lock string
}

// lockOrder locks order id until the transaction ends, on PostgreSQL,
// before the order is read to be changed, so that two changes of one
// order at once (a complete and a cancel, two hosts, a re-sent upload)
// come one after the other: read unlocked, the second of two completes
// shipped the order again and failed on a check of its lines (exit 1)
// where SQLite refuses it as completed (exit 2). TestOrderChangesAtOnce.
func (s *stock) lockOrder(id int64) error {
	if s.lock == "" {
		return nil
	}
	_, err := s.q.ExecContext(s.ctx, `SELECT 1 FROM orders WHERE id = ?`+s.lock, id)
	return err
}

// newStock is the stock of conn's write transaction.
func newStock(ctx context.Context, conn *sql.Conn, allowNegative bool) *stock {
	return &stock{ctx: ctx, q: conn, allowNegative: allowNegative, lock: db.ForUpdate(conn)}
}

// changeSeq is the change sequence number of the transaction, taken on
// first use (catalog.NextChangeSeq): stock rows and new customers carry it.
func (s *stock) changeSeq() (int64, error) {
	if s.seq == 0 {
		var err error
		if s.seq, err = catalog.NextChangeSeq(s.ctx, s.q); err != nil {
			return 0, err
		}
	}
	return s.seq, nil
}

// change adds dReserved to reserved and dOnHand to on hand of one stock
// row, creating it when it is not there.
//
// On PostgreSQL the row is read locked until the transaction ends, so
// that the checks below and the threshold rule see the row the write
// changes: read unlocked, two shipments at once of 4 and 3 from 5 on hand
// both passed the check against 5 and left -2 (TestShipmentsAtOnce). On
// SQLite the write transaction holds every other writer off.
func (s *stock) change(item, sku, warehouse, location string, dReserved, dOnHand int64) error {
	if dReserved == 0 && dOnHand == 0 {
		return nil
	}
	// The change number before the row, as every other writer of stock
	// rows takes it (loads, imports): an order that locked a row and then
	// waited for the number held by an inventory load, which came to lock
	// that row next, closed a cycle that PostgreSQL broke by failing one
	// of them (40P01, exit 75). TestInventoryLoadBesideOrder.
	seq, err := s.changeSeq()
	if err != nil {
		return err
	}
	var onHand, reserved, threshold int64
	err = s.q.QueryRowContext(s.ctx, `SELECT on_hand, reserved, coalesce(threshold, 0) FROM inventory
WHERE item = ? AND sku = ? AND warehouse = ? AND location = ?`+s.lock, item, sku, warehouse, location).Scan(&onHand, &reserved, &threshold)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// Stock stays within its range (format.MaxQuantity), and a shipment
	// does not take on hand below zero where that is not allowed: the
	// state would say what no warehouse holds.
	newOnHand, err := format.AddQuantity(onHand, dOnHand)
	if err != nil {
		return fmt.Errorf("%w: on hand of %s in warehouse %s%s, %d, changed by %d: %v", ErrRefused, skuName(item, sku), warehouse, at(location), onHand, dOnHand, err)
	}
	if _, err := format.AddQuantity(reserved, dReserved); err != nil {
		return fmt.Errorf("%w: reserved of %s in warehouse %s%s, %d, changed by %d: %v", ErrRefused, skuName(item, sku), warehouse, at(location), reserved, dReserved, err)
	}
	if dOnHand < 0 && newOnHand < 0 && !s.allowNegative {
		return fmt.Errorf("%w: shipping %d of %s from warehouse %s%s, which has %d on hand, would take on hand below zero "+
			"(import.allow_negative_on_hand is false)", ErrRefused, -dOnHand, skuName(item, sku), warehouse, at(location), onHand)
	}
	capture := trigger.Changed
	if !exists {
		var stocked bool
		if err := s.q.QueryRowContext(s.ctx, `SELECT EXISTS (SELECT 1 FROM inventory WHERE item = ? AND sku = ?)`, item, sku).Scan(&stocked); err != nil {
			return err
		}
		if !stocked {
			capture = trigger.Added
		}
	}
	_, err = s.q.ExecContext(s.ctx, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, change_seq, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT(item, sku, warehouse, location) DO UPDATE SET on_hand = inventory.on_hand + ?5, reserved = inventory.reserved + ?6,
  change_seq = ?7, updated_at = ?8`, item, sku, warehouse, location, dOnHand, dReserved, seq, db.Now())
	if err != nil {
		return err
	}
	before, after := onHand-reserved, onHand+dOnHand-reserved-dReserved
	if exists && !trigger.InventoryRule(before, after, threshold) {
		return nil
	}
	n, err := trigger.Fold(s.ctx, s.q, trigger.CodeInventory, `SELECT ? AS record_key, ? AS sub_key, ? AS capture`, item, sku, capture)
	s.trig += n
	return err
}

// skuName is item/SKU as messages write it.
func skuName(item, sku string) string { return item + "/" + sku }

// at names a location for messages; no location is nothing.
func at(location string) string {
	if location == "" {
		return ""
	}
	return " location " + location
}

// reserve reserves qty of item/SKU in warehouse, in the location with the
// most available stock (the first by name on a tie; no location when the
// warehouse has no row for it), and returns that location and how much of
// qty the warehouse's available stock did not cover.
func (s *stock) reserve(item, sku, warehouse string, qty int64) (location string, short int64, err error) {
	var total int64
	err = s.q.QueryRowContext(s.ctx, `SELECT location, (SELECT coalesce(sum(on_hand - reserved), 0) FROM inventory
  WHERE item = ?1 AND sku = ?2 AND warehouse = ?3)
FROM inventory WHERE item = ?1 AND sku = ?2 AND warehouse = ?3 ORDER BY on_hand - reserved DESC, location LIMIT 1`,
		item, sku, warehouse).Scan(&location, &total)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", 0, err
	}
	short = min(max(qty-max(total, 0), 0), qty)
	return location, short, s.change(item, sku, warehouse, location, qty, 0)
}

// Change is the result of a cancel or complete.
type Change struct {
	Order Order `json:"-"`
	// Quantity is how many units were cancelled or fulfilled.
	Quantity int64  `json:"quantity"`
	Event    string `json:"event"`
	Triggers int64  `json:"inventory_triggers"`
}

// Cancel cancels the open quantity of a whole order (line 0), or qty units
// of one line (qty 0: all it has open). More than is open is refused and
// changes nothing.
func Cancel(ctx context.Context, d *db.DB, code string, line, qty int64) (Change, error) {
	var ch Change
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		id, err := find(ctx, conn, code)
		if err != nil {
			return err
		}
		s := newStock(ctx, conn, false)
		ch, err = cancel(ctx, conn, s, id, line, qty)
		ch.Triggers = s.trig
		return err
	})
	return ch, err
}

func cancel(ctx context.Context, q db.Querier, s *stock, id, line, qty int64) (Change, error) {
	if err := s.lockOrder(id); err != nil {
		return Change{}, err
	}
	o, err := load(ctx, q, id)
	if err != nil {
		return Change{}, err
	}
	if o.Status != StatusOpen {
		return Change{}, fmt.Errorf("%w: order %s is %s", ErrRefused, o.Code, o.Status)
	}
	var affected []int64
	var total int64
	found := line == 0
	for i, l := range o.Lines {
		if line != 0 && l.No != line {
			continue
		}
		found = true
		n := l.Open()
		if line != 0 && qty != 0 {
			if qty > n {
				return Change{}, fmt.Errorf("%w: order %s line %d has %d open (ordered %d, cancelled %d, fulfilled %d): cannot cancel %d",
					ErrRefused, o.Code, l.No, n, l.Ordered, l.Cancelled, l.Fulfilled, qty)
			}
			n = qty
		}
		if n == 0 {
			continue
		}
		if err := s.change(l.Item, l.SKU, o.Warehouse, l.Location, -n, 0); err != nil {
			return Change{}, err
		}
		if _, err := q.ExecContext(ctx, `UPDATE order_lines SET cancelled = cancelled + ? WHERE order_id = ? AND line_no = ?`, n, id, l.No); err != nil {
			return Change{}, err
		}
		o.Lines[i].Cancelled += n
		affected = append(affected, l.No)
		total += n
	}
	switch {
	case !found:
		return Change{}, fmt.Errorf("%w: order %s has no line %d", ErrRefused, o.Code, line)
	case total == 0:
		return Change{}, fmt.Errorf("%w: order %s has nothing open to cancel", ErrRefused, o.Code)
	}
	event := EventPartialCancel
	var open, fulfilled int64
	for _, l := range o.Lines {
		open += l.Open()
		fulfilled += l.Fulfilled
	}
	if open == 0 {
		// Nothing left open: cancelled, or completed when some was shipped.
		event, o.Status, affected = EventCancel, StatusCancelled, nil
		if fulfilled > 0 {
			event, o.Status = EventComplete, StatusCompleted
		}
		if err := setStatus(ctx, q, &o); err != nil {
			return Change{}, err
		}
	}
	if err := addEvent(ctx, q, o, event, affected); err != nil {
		return Change{}, err
	}
	return Change{Order: o, Quantity: total, Event: event}, nil
}

// Complete fulfils the open quantities of an order: its reservations
// become shipments (reserved and on hand go down by them). A line whose
// shipment would take on hand below zero refuses the whole order unless
// allowNegative (import.allow_negative_on_hand): stock that is not there
// cannot have been shipped; cancel the part not in stock, or receive it,
// first.
func Complete(ctx context.Context, d *db.DB, code string, allowNegative bool) (Change, error) {
	var ch Change
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		id, err := find(ctx, conn, code)
		if err != nil {
			return err
		}
		s := newStock(ctx, conn, allowNegative)
		ch, err = complete(ctx, conn, s, id)
		ch.Triggers = s.trig
		return err
	})
	return ch, err
}

func complete(ctx context.Context, q db.Querier, s *stock, id int64) (Change, error) {
	if err := s.lockOrder(id); err != nil {
		return Change{}, err
	}
	o, err := load(ctx, q, id)
	if err != nil {
		return Change{}, err
	}
	if o.Status != StatusOpen {
		return Change{}, fmt.Errorf("%w: order %s is %s", ErrRefused, o.Code, o.Status)
	}
	var total int64
	for i, l := range o.Lines {
		n := l.Open()
		if n == 0 {
			continue
		}
		if err := s.change(l.Item, l.SKU, o.Warehouse, l.Location, -n, -n); err != nil {
			if errors.Is(err, ErrRefused) {
				err = fmt.Errorf("order %s line %d: %w; nothing was completed: cancel what is not in stock "+
					"(orders cancel %s --line %d --qty N) or receive it first", o.Code, l.No, err, o.Code, l.No)
			}
			return Change{}, err
		}
		if _, err := q.ExecContext(ctx, `UPDATE order_lines SET fulfilled = fulfilled + ? WHERE order_id = ? AND line_no = ?`, n, id, l.No); err != nil {
			return Change{}, err
		}
		o.Lines[i].Fulfilled += n
		total += n
	}
	o.Status = StatusCompleted
	if err := setStatus(ctx, q, &o); err != nil {
		return Change{}, err
	}
	if err := addEvent(ctx, q, o, EventComplete, nil); err != nil {
		return Change{}, err
	}
	return Change{Order: o, Quantity: total, Event: EventComplete}, nil
}

// setStatus writes the order's new status and queues its status message.
func setStatus(ctx context.Context, q db.Querier, o *Order) error {
	o.UpdatedAt = db.Now()
	if _, err := q.ExecContext(ctx, `UPDATE orders SET status = ?, updated_at = ? WHERE id = ?`, o.Status, o.UpdatedAt, o.ID); err != nil {
		return err
	}
	return queueStatus(ctx, q, o)
}

// queueStatus makes sure a status message for the order is ready: one
// ready message per order, whatever the number of changes before the
// export.
func queueStatus(ctx context.Context, q db.Querier, o *Order) error {
	now := db.Now()
	_, err := q.ExecContext(ctx, `INSERT INTO order_messages(stream, partner, order_id, event_type, status, created_at, updated_at)
VALUES ('status', ?, ?, ?, 'ready', ?, ?)
ON CONFLICT(order_id) WHERE stream = 'status' AND status = 'ready' DO UPDATE SET event_type = excluded.event_type, updated_at = excluded.updated_at`,
		o.Partner, o.ID, OnlineStatus(o.Status), now, now)
	return err
}
