package returns

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// Return statuses.
const (
	StatusExpected = "expected" // no item received yet
	StatusReceived = "received" // some items have a QC result
	StatusClosed   = "closed"   // every item has a QC result
	// StatusCancelled: every item was cancelled by the partner's return
	// events (RETURN_ORDER_CANCEL, RETURN_ORDER_PARTIAL_CANCEL).
	StatusCancelled = "cancelled"
)

// QC results.
const (
	QCPass = "PASS"
	QCFail = "FAIL"
)

// EventProcessed labels the return updates in the outbound queue
// (order_messages.event_type). Increff's "Return Order Processing Update"
// has no eventType: it is not written into the update.
const EventProcessed = "RETURN_ORDER_PROCESSED"

// Sentinel errors with exit codes of their own.
var (
	// ErrNotFound: no return, or no item of the return, has that code.
	ErrNotFound = errors.New("no such return")
	// ErrNoItem: the return has no item with that code.
	ErrNoItem = errors.New("no such item")
	// ErrRefused: the item was received already, or the return code is
	// ambiguous; nothing was changed.
	ErrRefused = errors.New("refused")
	// ErrCancelled: the return or the item was cancelled by the partner;
	// it cannot be received, nothing was changed.
	ErrCancelled = errors.New("cancelled")
)

// Return is a return with its items.
type Return struct {
	ID               int64  `json:"-"`
	Partner          string `json:"partner"`
	Code             string `json:"return_order_code"`
	ForwardOrderCode string `json:"forward_order_code"`
	LocationCode     string `json:"location_code"`
	Warehouse        string `json:"warehouse"`
	Channel          string `json:"channel"`
	EventType        string `json:"event_type"`
	OrderType        string `json:"order_type"`
	AwbNumber        string `json:"awb_number"`
	Transporter      string `json:"transporter"`
	ReturnTime       string `json:"return_time"`
	Status           string `json:"status"`
	Revision         int64  `json:"revision"`
	CancelledAt      string `json:"cancelled_at"`
	CreatedAt        string `json:"created_at"`
	UpdatedAt        string `json:"updated_at"`
	// Counts of the items: all, received, passed QC.
	Items, Received, Passed int64  `json:"-"`
	Lines                   []Item `json:"items,omitempty"`
}

// Item is a returned item.
type Item struct {
	Code           string `json:"return_item_code"`
	ChannelSkuCode string `json:"channel_sku_code"`
	Item           string `json:"item"`
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	Reason         string `json:"reason"`
	QCStatus       string `json:"qc_status"`
	QCReason       string `json:"qc_reason"`
	Received       bool   `json:"received"`
	ReceivedAt     string `json:"received_at"`
	CancelledAt    string `json:"cancelled_at"`
	Location       string `json:"location"`
}

// statusExpr is a return's status as shown: the column follows the live
// items, cancelled_at says that none is left (migration 0014).
const statusExpr = `CASE WHEN r.cancelled_at IS NOT NULL THEN 'cancelled' ELSE r.status END`

const returnCols = `r.id, r.partner, r.return_code, r.forward_order_code, r.location_code, r.warehouse, r.channel, r.event_type,
  r.order_type, r.awb_number, r.transporter, r.return_time, ` + statusExpr + `, r.revision, coalesce(r.cancelled_at, ''), r.created_at, r.updated_at,
  (SELECT count(*) FROM return_items i WHERE i.return_id = r.id),
  (SELECT count(*) FROM return_items i WHERE i.return_id = r.id AND i.received = 1),
  (SELECT count(*) FROM return_items i WHERE i.return_id = r.id AND i.qc_status = 'PASS')`

func scanReturn(s interface{ Scan(...any) error }) (Return, error) {
	var r Return
	err := s.Scan(&r.ID, &r.Partner, &r.Code, &r.ForwardOrderCode, &r.LocationCode, &r.Warehouse, &r.Channel, &r.EventType,
		&r.OrderType, &r.AwbNumber, &r.Transporter, &r.ReturnTime, &r.Status, &r.Revision, &r.CancelledAt, &r.CreatedAt, &r.UpdatedAt,
		&r.Items, &r.Received, &r.Passed)
	return r, err
}

// load reads a return and its items by id.
func load(ctx context.Context, q db.Querier, id int64) (Return, error) {
	r, err := scanReturn(q.QueryRowContext(ctx, `SELECT `+returnCols+` FROM returns r WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	rows, err := q.QueryContext(ctx, `SELECT item_code, channel_sku_code, item, sku, quantity, reason, qc_status, qc_reason, received,
  coalesce(received_at, ''), coalesce(cancelled_at, ''), location FROM return_items WHERE return_id = ? ORDER BY item_code`, id)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	r.Lines = []Item{}
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Code, &it.ChannelSkuCode, &it.Item, &it.SKU, &it.Quantity, &it.Reason, &it.QCStatus, &it.QCReason,
			&it.Received, &it.ReceivedAt, &it.CancelledAt, &it.Location); err != nil {
			return r, err
		}
		r.Lines = append(r.Lines, it)
	}
	return r, rows.Err()
}

// find resolves a return code (returnOrderCode), of partner when given.
func find(ctx context.Context, q db.Querier, partner, code string) (int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, partner FROM returns WHERE return_code = ? AND (? = '' OR partner = ?) ORDER BY id LIMIT 2`,
		code, partner, partner)
	if err != nil {
		return 0, db.Classify(err)
	}
	defer rows.Close()
	var ids []int64
	var partners []string
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			return 0, err
		}
		ids, partners = append(ids, id), append(partners, p)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	switch len(ids) {
	case 0:
		if partner != "" {
			return 0, fmt.Errorf("%w %s of partner %s", ErrNotFound, code, partner)
		}
		return 0, fmt.Errorf("%w %s", ErrNotFound, code)
	case 1:
		return ids[0], nil
	}
	return 0, fmt.Errorf("%w: return %s is known from partners %s: give --partner", ErrRefused, code, strings.Join(partners, " and "))
}

// Get returns a return with its items.
func Get(ctx context.Context, d *db.DB, partner, code string) (Return, error) {
	id, err := find(ctx, d, partner, code)
	if err != nil {
		return Return{}, err
	}
	r, err := load(ctx, d, id)
	return r, db.Classify(err)
}

// Filter selects returns to list.
type Filter struct {
	Partner, Status string
}

// List calls fn for each return that matches f, oldest first, without
// items.
func List(ctx context.Context, d *db.DB, f Filter, fn func(Return) error) error {
	rows, err := d.QueryContext(ctx, `SELECT `+returnCols+` FROM returns r WHERE (?1 = '' OR r.partner = ?1) AND (?2 = '' OR `+statusExpr+` = ?2)
ORDER BY r.id`, f.Partner, f.Status)
	if err != nil {
		return db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanReturn(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Receipt is the QC result of one returned item.
type Receipt struct {
	Partner string // optional: the partner whose return code it is
	Return  string // returnOrderCode
	Item    string // returnItemCode
	QC      string // PASS or FAIL
	Reason  string // qcReason
	// Location is where a passed item goes in the return's warehouse;
	// empty: the SKU's stock row there with the most on hand.
	Location string
	// Stock are the options of the inventory transaction (codes, user).
	Stock imports.Options
}

// Received says what recording a QC result did.
type Received struct {
	Return   Return `json:"-"`
	Item     Item   `json:"item"`
	Status   string `json:"return_status"`
	Message  int64  `json:"message_id"`
	Triggers int64  `json:"inventory_triggers"`
}

// StockCode is the inventory transaction code of a returned item that
// passed QC: a receipt (increase).
const StockCode = imports.EffectReceipt

// Receive records the QC result of a returned item, once: a PASS raises
// on hand of its SKU in the return's warehouse by its quantity (an
// inventory transaction with history, change stamp and trigger), a FAIL
// only records the result. Either queues the result in the return's
// update. An item received before is refused, an item or return the
// partner cancelled is ErrCancelled; nothing changes.
func Receive(ctx context.Context, d *db.DB, rc Receipt) (Received, error) {
	var out Received
	rc.QC = strings.ToUpper(strings.TrimSpace(rc.QC))
	if rc.QC != QCPass && rc.QC != QCFail {
		return out, fmt.Errorf("%w: QC result %q: want PASS or FAIL", ErrRefused, rc.QC)
	}
	// The reason goes to the partner in the return update.
	if err := format.CheckText(rc.Reason, partner.DefaultMaxField); err != nil {
		return out, fmt.Errorf("%w: the QC reason %v", ErrRefused, err)
	}
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		id, err := find(ctx, conn, rc.Partner, rc.Return)
		if err != nil {
			return err
		}
		if err := lockReturn(ctx, conn, id); err != nil {
			return err
		}
		r, err := load(ctx, conn, id)
		if err != nil {
			return err
		}
		var it *Item
		for i := range r.Lines {
			if r.Lines[i].Code == rc.Item {
				it = &r.Lines[i]
			}
		}
		switch {
		case r.CancelledAt != "":
			return fmt.Errorf("return %s was %w by the partner at %s: it cannot be received, no stock is raised", r.Code, ErrCancelled, r.CancelledAt)
		case it == nil:
			return fmt.Errorf("%w: return %s has no item %s", ErrNoItem, r.Code, rc.Item)
		case it.CancelledAt != "":
			return fmt.Errorf("return %s item %s was %w by the partner at %s: it cannot be received, no stock is raised", r.Code, it.Code, ErrCancelled, it.CancelledAt)
		case it.Received:
			return fmt.Errorf("%w: return %s item %s was received already at %s (QC %s)", ErrRefused, r.Code, it.Code, it.ReceivedAt, it.QCStatus)
		}
		now := db.Now()
		it.QCStatus, it.QCReason, it.Received, it.ReceivedAt = rc.QC, rc.Reason, true, now
		if rc.QC == QCPass {
			if it.Location, err = location(ctx, conn, *it, r.Warehouse, rc.Location); err != nil {
				return err
			}
			o := rc.Stock
			out.Triggers, err = imports.ApplyStock(ctx, conn, o, imports.Transaction{Code: StockCode, Item: it.Item, SKU: it.SKU,
				Warehouse: r.Warehouse, Location: it.Location, Quantity: it.Quantity, Reference: r.Code,
				Reason: fmt.Sprintf("return %s item %s passed QC", r.Code, it.Code), User: "returns receive"})
			if errors.Is(err, imports.ErrStock) {
				return fmt.Errorf("%w: %v", ErrRefused, err)
			}
			if err != nil {
				return err
			}
		}
		if _, err := conn.ExecContext(ctx, `UPDATE return_items SET qc_status = ?, qc_reason = ?, received = 1, received_at = ?, location = ?
WHERE return_id = ? AND item_code = ?`, it.QCStatus, it.QCReason, now, it.Location, id, it.Code); err != nil {
			return err
		}
		if err := setStatus(ctx, conn, id); err != nil {
			return err
		}
		if out.Message, err = queueUpdate(ctx, conn, id, it.Code); err != nil {
			return err
		}
		if r, err = load(ctx, conn, id); err != nil {
			return err
		}
		out.Return, out.Item, out.Status = r, *it, r.Status
		return nil
	})
	return out, err
}

// lockReturn locks return id until the transaction ends, on PostgreSQL,
// before it is read to be changed: a QC result, a cancel and a changed
// re-send of one return at once come one after the other, the second
// reading what the first left, as on SQLite. Read unlocked, an item was
// received twice (stock raised twice), a receipt and a cancel failed on
// the items' check (exit 1), and a receipt during a re-send raised stock
// for an item the re-send had deleted and inserted again, which stayed
// expected. TestReceivesAtOnce, TestReceiveAndCancelAtOnce,
// TestReceiveWhileResent.
func lockReturn(ctx context.Context, conn *sql.Conn, id int64) error {
	if lock := db.ForUpdate(conn); lock != "" {
		if _, err := conn.ExecContext(ctx, `SELECT 1 FROM returns WHERE id = ?`+lock, id); err != nil {
			return db.Classify(err)
		}
	}
	return nil
}

// location is where a passed item goes: the one asked for, else the stock
// row of its SKU in the warehouse with the most on hand (first by name on
// a tie), else no location.
func location(ctx context.Context, q db.Querier, it Item, warehouse, want string) (string, error) {
	if want != "" {
		return want, nil
	}
	var loc string
	err := q.QueryRowContext(ctx, `SELECT location FROM inventory WHERE item = ? AND sku = ? AND warehouse = ?
ORDER BY on_hand DESC, location LIMIT 1`, it.Item, it.SKU, warehouse).Scan(&loc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return loc, err
}

// setStatus brings a return's status in line with its items: the status
// follows the live (not cancelled) items; with none left the return is
// cancelled, from the first time it was found so.
func setStatus(ctx context.Context, q db.Querier, id int64) error {
	_, err := q.ExecContext(ctx, `UPDATE returns SET updated_at = ?2,
  status = coalesce((SELECT CASE WHEN count(*) = 0 THEN NULL WHEN sum(received) = 0 THEN 'expected'
    WHEN sum(received) = count(*) THEN 'closed' ELSE 'received' END FROM return_items WHERE return_id = ?1 AND cancelled_at IS NULL), status),
  cancelled_at = CASE WHEN EXISTS (SELECT 1 FROM return_items WHERE return_id = ?1 AND cancelled_at IS NULL) THEN NULL
    ELSE coalesce(cancelled_at, ?2) END
WHERE id = ?1`, id, db.Now())
	return err
}

// Update is a return update as it goes out: the body of Increff's
// "Return Order Processing Update to Increff OMS" (POST /usp/return), its
// keys in the page's order, with the QC result of the items received
// since the return's last update.
type Update struct {
	ReturnOrderCode  string       `json:"returnOrderCode"`
	ForwardOrderCode string       `json:"forwardOrderCode"`
	LocationCode     string       `json:"locationCode"`
	ChannelName      string       `json:"channelName"`
	AwbNumber        string       `json:"awbNumber"`
	Transporter      string       `json:"transporter"`
	OrderItems       []UpdateItem `json:"orderItems"`
}

// CheckUpdate holds a queued return update whose field the page marks
// mandatory would go out empty (a return announced without its awbNumber
// or transporter): it stays ready until the return has them (a
// RETURN_ORDER_UPDATE event), never sent with an empty string.
func CheckUpdate(payload []byte) *orders.Held {
	var u Update
	if err := json.Unmarshal(payload, &u); err != nil {
		return &orders.Held{EventType: "return update", Kind: "return", Reason: fmt.Sprintf("the stored update cannot be read: %v", err)}
	}
	var empty []string
	for _, f := range []struct{ name, v string }{{"returnOrderCode", u.ReturnOrderCode}, {"forwardOrderCode", u.ForwardOrderCode},
		{"locationCode", u.LocationCode}, {"channelName", u.ChannelName}, {"awbNumber", u.AwbNumber}, {"transporter", u.Transporter}} {
		if strings.TrimSpace(f.v) == "" {
			empty = append(empty, f.name)
		}
	}
	for i, it := range u.OrderItems {
		for _, f := range []struct{ name, v string }{{"returnItemCode", it.ReturnItemCode}, {"channelSkuCode", it.ChannelSkuCode}, {"qcStatus", it.QCStatus}} {
			if strings.TrimSpace(f.v) == "" {
				empty = append(empty, fmt.Sprintf("orderItems[%d].%s", i, f.name))
			}
		}
	}
	if len(empty) == 0 {
		return nil
	}
	return &orders.Held{EventType: "return update", Kind: "return", Order: u.ReturnOrderCode,
		Reason: fmt.Sprintf("empty %s: the return processing update requires them", strings.Join(empty, ", "))}
}

// UpdateItem is an item of a return update. QCReason is optional on the
// page ("the reason ... marked QC fail"): null when there is none, as in
// Increff's own samples.
type UpdateItem struct {
	ReturnItemCode string  `json:"returnItemCode"`
	ChannelSkuCode string  `json:"channelSkuCode"`
	QCStatus       string  `json:"qcStatus"`
	QCReason       *string `json:"qcReason"`
}

// queueUpdate puts the result of item into the return's ready update (a
// new one when none is ready: the last one went out or is being written)
// and rewrites that update's payload. It returns the update's id.
//
// On PostgreSQL the update is locked as it is found ready: an export on
// another host claims it either before (then it is no longer ready, and
// a new one is queued) or after this transaction (then it reads the
// payload written here). Read unlocked, the result went into an update
// claimed meanwhile, whose payload the export had read: it was never
// sent. TestReceiveWhileUpdateClaimed.
func queueUpdate(ctx context.Context, q *sql.Conn, id int64, item string) (int64, error) {
	var msg int64
	err := q.QueryRowContext(ctx, `SELECT id FROM order_messages WHERE stream = ? AND return_id = ? AND status = 'ready'
ORDER BY id DESC LIMIT 1`+db.ForUpdate(q), orders.StreamReturns, id).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) {
		now := db.Now()
		err = q.QueryRowContext(ctx, `INSERT INTO order_messages(stream, partner, return_id, event_type, status, created_at, updated_at)
SELECT ?, partner, id, ?, 'ready', ?, ? FROM returns WHERE id = ? RETURNING id`, orders.StreamReturns, EventProcessed, now, now, id).Scan(&msg)
	}
	if err != nil {
		return 0, err
	}
	if _, err := q.ExecContext(ctx, `UPDATE return_items SET message_id = ? WHERE return_id = ? AND item_code = ?`, msg, id, item); err != nil {
		return 0, err
	}
	return msg, writeUpdate(ctx, q, id, msg)
}

// refreshUpdates rewrites the payload of the return's ready updates: a
// changed re-send of the return before they went out goes out in them.
// One that an export on another host claims meanwhile keeps the payload
// the export read and sent (writeUpdate writes only a ready one); the
// re-send goes out in the next update, as when it comes after the send.
func refreshUpdates(ctx context.Context, q db.Querier, id int64) error {
	rows, err := q.QueryContext(ctx, `SELECT id FROM order_messages WHERE stream = ? AND return_id = ? AND status = 'ready'`,
		orders.StreamReturns, id)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var m int64
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range ids {
		if err := writeUpdate(ctx, q, id, m); err != nil {
			return err
		}
	}
	return nil
}

// writeUpdate writes the payload of update msg: the return as it is now
// and the items whose results it carries.
func writeUpdate(ctx context.Context, q db.Querier, id, msg int64) error {
	r, err := load(ctx, q, id)
	if err != nil {
		return err
	}
	u := Update{ReturnOrderCode: r.Code, ForwardOrderCode: r.ForwardOrderCode, LocationCode: r.LocationCode, ChannelName: r.Channel,
		AwbNumber: r.AwbNumber, Transporter: r.Transporter, OrderItems: []UpdateItem{}}
	rows, err := q.QueryContext(ctx, `SELECT item_code, channel_sku_code, qc_status, nullif(qc_reason, '') FROM return_items
WHERE return_id = ? AND message_id = ? ORDER BY received_at, item_code`, id, msg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ui UpdateItem
		if err := rows.Scan(&ui.ReturnItemCode, &ui.ChannelSkuCode, &ui.QCStatus, &ui.QCReason); err != nil {
			return err
		}
		u.OrderItems = append(u.OrderItems, ui)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `UPDATE order_messages SET payload = ?, updated_at = ? WHERE id = ? AND status = 'ready'`, string(b), db.Now(), msg)
	return err
}
