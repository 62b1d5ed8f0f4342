package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
)

// Event types of the sales posting (docs/partners.md, "Sales posting (order events)").
const (
	EventCreate        = "SUBORDER_CREATE"
	EventCancel        = "SUBORDER_CANCEL"
	EventPartialCancel = "SUBORDER_PARTIAL_CANCEL"
	EventComplete      = "SUBORDER_COMPLETE"
)

// Streams of outbound order messages.
const (
	StreamEvents = "events"
	StreamStatus = "status"
	// StreamReturns are the return updates of package returns: their
	// payload is the message as it goes out.
	StreamReturns = "returns"
)

// EventAddress is the billingAddress or shippingAddress of a sales
// posting event.
type EventAddress struct {
	Name    string `json:"name"`
	Line1   string `json:"line1"`
	Line2   string `json:"line2"`
	Line3   string `json:"line3"`
	City    string `json:"city"`
	State   string `json:"state"`
	Zip     string `json:"zip"`
	Country string `json:"country"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
}

// EventItem is a line of a sales posting event (subOrderItems[]).
type EventItem struct {
	Barcode             string      `json:"barcode"`
	ChannelSkuCode      string      `json:"channelSkuCode"`
	OmsSubOrderItemID   int64       `json:"omsSubOrderItemId"`
	OrderItemCodes      []string    `json:"orderItemCodes"`
	ExternalItemCodes   []string    `json:"externalItemCodes"`
	OrderedQuantity     int64       `json:"orderedQuantity"`
	CancelledQuantity   int64       `json:"cancelledQuantity"`
	FulfilledQuantity   int64       `json:"fulfilledQuantity"`
	HoppedQuantity      int64       `json:"hoppedQuantity"`
	SellingPricePerUnit json.Number `json:"sellingPricePerUnit"`
	ChannelDiscount     json.Number `json:"channelDiscount"`
	SellerDiscount      json.Number `json:"sellerDiscount"`
	GiftChargePerUnit   json.Number `json:"giftChargePerUnit"`
	ShippingCharge      json.Number `json:"shippingCharge"`
}

// Event is one sales posting message as Increff's "Outward Sales Posting
// APIs to POS" documents it (docs/partners.md): ids are JSON numbers
// (Long), amounts numbers (Double), times in the partner's time format.
// MessageID is the id of its order_messages row: the same however often a
// file is written again after a crash. The export renders it from the
// stored eventData (render).
type Event struct {
	MessageID       int64        `json:"messageId"`
	EventType       string       `json:"eventType"`
	EventTime       string       `json:"eventTime"`
	CreatedAt       string       `json:"createdAt"`
	OrderCode       string       `json:"orderCode"`
	ParentOrderCode string       `json:"parentOrderCode"`
	OmsSubOrderID   int64        `json:"omsSubOrderId"`
	OrderTime       string       `json:"orderTime"`
	OrderType       string       `json:"orderType"`
	LocationCode    string       `json:"locationCode"`
	ChannelName     string       `json:"channelName"`
	ChannelType     string       `json:"channelType"`
	PaymentMethod   string       `json:"paymentMethod"`
	IsPriority      bool         `json:"isPriority"`
	ShippingCharges json.Number  `json:"shippingCharges"`
	BillingAddress  EventAddress `json:"billingAddress"`
	ShippingAddress EventAddress `json:"shippingAddress"`
	SubOrderItems   []EventItem  `json:"subOrderItems"`
}

// eventData is the payload of an event: the order and the lines as they
// were when the event happened, times as stored (UTC). What depends on
// the partner's settings (time format, channel type) or on the customer
// record (the billing address) is left to the export, which renders it
// when it writes the file. The keys are those of the payloads written
// before; omsSubOrderId and omsSubOrderItemId of those (strings) are not
// read: the ids come from the rows.
type eventData struct {
	EventType       string      `json:"eventType"`
	EventTime       string      `json:"eventTime"`
	CreatedAt       string      `json:"createdAt"`
	OrderCode       string      `json:"orderCode"`
	ParentOrderCode string      `json:"parentOrderCode"`
	OrderTime       string      `json:"orderTime"`
	OrderType       string      `json:"orderType"`
	LocationCode    string      `json:"locationCode"`
	ChannelName     string      `json:"channelName"`
	PaymentMethod   string      `json:"paymentMethod"`
	IsPriority      bool        `json:"isPriority"`
	ShippingCharges json.Number `json:"shippingCharges"`
	// Customer is the customer as the order names it (name, email,
	// mobile); the billing address falls back to it.
	Customer EventAddress `json:"billingAddress"`
	Ship     EventAddress `json:"shippingAddress"`
	Items    []itemData   `json:"subOrderItems"`
}

// itemData is a line of an eventData: EventItem without its id, with the
// line number it is made of. It is not EventItem embedded: payloads stored
// by schema 12 and earlier hold omsSubOrderItemId as a string, which an int64
// field would refuse to read (TestRenderPayloadOfBefore).
type itemData struct {
	Line                int64       `json:"line"`
	Barcode             string      `json:"barcode"`
	ChannelSkuCode      string      `json:"channelSkuCode"`
	OrderItemCodes      []string    `json:"orderItemCodes"`
	ExternalItemCodes   []string    `json:"externalItemCodes"`
	OrderedQuantity     int64       `json:"orderedQuantity"`
	CancelledQuantity   int64       `json:"cancelledQuantity"`
	FulfilledQuantity   int64       `json:"fulfilledQuantity"`
	HoppedQuantity      int64       `json:"hoppedQuantity"`
	SellingPricePerUnit json.Number `json:"sellingPricePerUnit"`
	ChannelDiscount     json.Number `json:"channelDiscount"`
	SellerDiscount      json.Number `json:"sellerDiscount"`
	GiftChargePerUnit   json.Number `json:"giftChargePerUnit"`
	ShippingCharge      json.Number `json:"shippingCharge"`
}

// StatusMessage is the order status sent back to the online store:
// GoFrugal's "Retrieve a sales order" response (docs/partners.md, store-pos), the order
// in its salesOrder wrapper with its status now (retrievedOrder), and
// beside the wrapper our messageId, the same however often a file is
// written again after a crash.
type StatusMessage struct {
	MessageID  int64           `json:"messageId"`
	SalesOrder json.RawMessage `json:"salesOrder"`
}

func amount(v int64) json.Number { return json.Number(format.FormatAmount(v)) }

// newEvent is the payload of the event of type typ for order o as it is
// now, with the given lines (nil: all of them).
func newEvent(o Order, typ, at string, lines []int64) eventData {
	e := eventData{EventType: typ, EventTime: at, CreatedAt: o.CreatedAt, OrderCode: o.Code, ParentOrderCode: o.ExternalKey,
		OrderTime: o.OrderTime, OrderType: "SO", LocationCode: o.LocationCode, ChannelName: o.Channel, PaymentMethod: o.PaymentMethod,
		ShippingCharges: amount(o.ShippingCharge), Customer: EventAddress{Name: o.CustomerName, Email: o.CustomerEmail, Phone: o.CustomerMobile},
		Ship: EventAddress{Name: o.Ship.Name, Line1: o.Ship.Address1, Line2: o.Ship.Address2, City: o.Ship.City,
			State: o.Ship.State, Zip: o.Ship.Zip, Country: o.Ship.Country, Email: o.Ship.Email, Phone: o.Ship.Phone},
		Items: []itemData{}}
	want := map[int64]bool{}
	for _, l := range lines {
		want[l] = true
	}
	for _, l := range o.Lines {
		if lines != nil && !want[l.No] {
			continue
		}
		// The online store's discount per unit: sale price × percentage
		// (at most 100, so the discount is within the price's range; the
		// product itself is not within int64's).
		disc := new(big.Int).Mul(big.NewInt(l.SalePrice), big.NewInt(l.DiscountPercent))
		disc.Quo(disc, big.NewInt(100*format.AmountScale))
		// A line the store named by itemId alone (an item without SKUs)
		// has no reference code: the store's code for it is the item.
		sku := l.RefCode
		if sku == "" {
			sku = l.Item
		}
		e.Items = append(e.Items, itemData{
			Line: l.No, Barcode: l.UPC, ChannelSkuCode: sku,
			OrderItemCodes: []string{fmt.Sprintf("%s-%d", o.Code, l.No)}, ExternalItemCodes: []string{fmt.Sprintf("%s-%d", o.ExternalKey, l.No)},
			OrderedQuantity: l.Ordered, CancelledQuantity: l.Cancelled, FulfilledQuantity: l.Fulfilled,
			SellingPricePerUnit: amount(l.SalePrice), ChannelDiscount: amount(disc.Int64()), SellerDiscount: amount(0),
			GiftChargePerUnit: amount(0), ShippingCharge: amount(0),
		})
	}
	return e
}

// addEvent queues an event of order o for the order-events export; its
// payload is the order as it is now (eventData).
func addEvent(ctx context.Context, q db.Querier, o Order, typ string, lines []int64) error {
	now := db.Now()
	b, err := json.Marshal(newEvent(o, typ, now, lines))
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO order_messages(stream, partner, order_id, event_type, payload, status, created_at, updated_at)
VALUES ('events', ?, ?, ?, ?, 'ready', ?, ?)`, o.Partner, o.ID, typ, string(b), now, now)
	return err
}

// refreshCreate rewrites the payload of the order's create event while it
// is still ready (not yet sent): an update before the export goes out in
// the create event. It reports whether there was such an event.
func refreshCreate(ctx context.Context, q db.Querier, o Order) (bool, error) {
	var id int64
	var at string
	err := q.QueryRowContext(ctx, `SELECT id, created_at FROM order_messages WHERE stream = 'events' AND order_id = ? AND event_type = ?
  AND status = 'ready'`, o.ID, EventCreate).Scan(&id, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // sent already
	}
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(newEvent(o, EventCreate, at, nil))
	if err != nil {
		return false, err
	}
	_, err = q.ExecContext(ctx, `UPDATE order_messages SET payload = ?, updated_at = ? WHERE id = ?`, string(b), db.Now(), id)
	return err == nil, err
}

// Claim takes the ready messages of a stream and partner into export file
// fileID, in id order; limit 0 means all. It returns how many.
func Claim(ctx context.Context, q db.Querier, stream, partner string, fileID, runID int64, limit int) (int64, error) {
	// No limit is no LIMIT clause: a negative one is SQLite's "all" but
	// an error on PostgreSQL.
	lim := ""
	if limit > 0 {
		lim = " LIMIT " + strconv.Itoa(limit)
	}
	// status = 'ready' is checked again on the row updated: on PostgreSQL
	// a claim running at once on another host may have taken it since
	// the subquery read it.
	res, err := q.ExecContext(ctx, `UPDATE order_messages SET status = 'processing', file_id = ?, run_id = ?, updated_at = ?
WHERE id IN (SELECT id FROM order_messages WHERE stream = ? AND partner = ? AND status = 'ready' ORDER BY id`+lim+`) AND status = 'ready'`,
		fileID, db.NullID(runID), db.Now(), stream, partner)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Completed marks the messages of a complete file processed.
func Completed(ctx context.Context, q db.Querier, fileID int64) error {
	now := db.Now()
	_, err := q.ExecContext(ctx, `UPDATE order_messages SET status = 'processed', processed_at = ?, updated_at = ?
WHERE file_id = ? AND status = 'processing'`, now, now, fileID)
	return err
}

// Unclaim gives the messages of an abandoned file back to the queue. A
// status message whose order has a newer ready one is dropped: the newer
// one says the same, and more recently.
//
// On PostgreSQL the orders of the file's status messages are locked
// first: a change of one on another host, which locks its order
// (lockOrder) and queues a newer status, has committed by then, and the
// DELETE finds that status. Unlocked, a status queued meanwhile was not
// seen, and the message given back beside it failed on the one ready
// status an order has (a raw constraint error, exit 1).
// TestRecoveredStatusWhileOrderChanges (package export).
func Unclaim(ctx context.Context, q *sql.Conn, fileID int64) error {
	if db.DialectOf(q) == db.Postgres {
		_, err := q.ExecContext(ctx, `SELECT 1 FROM orders WHERE id IN (SELECT order_id FROM order_messages
WHERE file_id = ? AND status = 'processing' AND stream = 'status') ORDER BY id FOR UPDATE`, fileID)
		if err != nil {
			return err
		}
	}
	_, err := q.ExecContext(ctx, `DELETE FROM order_messages WHERE file_id = ? AND status = 'processing' AND stream = 'status'
  AND order_id IN (SELECT order_id FROM order_messages WHERE stream = 'status' AND status = 'ready')`, fileID)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `UPDATE order_messages SET status = 'ready', file_id = NULL, run_id = NULL, updated_at = ?
WHERE file_id = ? AND status = 'processing'`, db.Now(), fileID)
	return err
}

// Messages streams the messages of file fileID as JSON lines, in id
// order: the status of each order as it is now, or the return updates as
// they were queued. Files of events are written by EventMessages.
func Messages(ctx context.Context, q db.Querier, fileID int64, emit func(line []byte) error) error {
	rows, err := q.QueryContext(ctx, `SELECT m.id, m.stream, m.payload, coalesce(o.external_key, ''), coalesce(o.order_code, ''),
  coalesce(o.status, ''), coalesce(o.updated_at, ''), coalesce(o.source, '')
FROM order_messages m LEFT JOIN orders o ON o.id = m.order_id WHERE m.file_id = ? ORDER BY m.id`, fileID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var stream, payload, key, code, status, updated, source string
		if err := rows.Scan(&id, &stream, &payload, &key, &code, &status, &updated, &source); err != nil {
			return err
		}
		var b []byte
		switch stream {
		case StreamStatus:
			var so json.RawMessage
			if so, err = retrievedOrder(source, key, status, updated); err == nil {
				b, err = json.Marshal(StatusMessage{MessageID: id, SalesOrder: so})
			}
		case StreamReturns:
			b = []byte(payload)
		default:
			// Events need the partner's settings: EventMessages.
			err = fmt.Errorf("stream %s: written by EventMessages", stream)
		}
		if err != nil {
			return fmt.Errorf("message %d: %w", id, err)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Ready counts the ready messages of a stream and partner.
func Ready(ctx context.Context, q db.Querier, stream, partner string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM order_messages WHERE stream = ? AND partner = ? AND status = 'ready'`, stream, partner).Scan(&n)
	return n, err
}
