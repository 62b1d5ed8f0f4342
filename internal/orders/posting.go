package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/partner"
)

// documentedTime is the time shape of the sales posting page's sample
// (23-08-2023T12:07:18, dd-MM-yyyy'T'HH:mm:ss). It carries no zone; the
// page gives order times in UTC, and so does posbridge.
const documentedTime = "02-01-2006T15:04:05"

// lineIDs is how many line numbers an order has room for in
// omsSubOrderItemId = omsSubOrderId × lineIDs + the line's rowNo.
const lineIDs = 1_000_000

// defaultChannelType is the channelType of a partner that sets none: the
// value of the page's sample.
const defaultChannelType = "ERP"

// Held is an event that cannot go out as the partner's page documents it
// (a field it requires would be empty, a rowNo leaves no
// omsSubOrderItemId, the stored payload cannot be read): it is not
// written and stays ready, so that it goes out with the first export
// after the data is fixed.
type Held struct {
	MessageID int64  `json:"message_id"`
	EventType string `json:"event_type"`
	// Kind is what Order names: an order (the default) or a return.
	Kind   string `json:"kind,omitempty"`
	Order  string `json:"order"`
	Reason string `json:"reason"`
}

func (h Held) String() string {
	kind := h.Kind
	if kind == "" {
		kind = "order"
	}
	return fmt.Sprintf("event %d (%s) of %s %s: %s", h.MessageID, h.EventType, kind, h.Order, h.Reason)
}

// eventRow is a stored event with what rendering it needs besides the
// partner's settings.
type eventRow struct {
	id, orderID int64
	// typ and order are the event type and order code of the row, for
	// reports also of a payload that cannot be read.
	typ, order string
	data       eventData
	// customer is the record of the order's customer (customers) as it is
	// now, as an address; zero when the order has none.
	customer EventAddress
	// bad is why the payload cannot be read: the event is held, not the
	// export stopped.
	bad error
}

// eventQuery reads eventRows; the caller adds the condition.
const eventQuery = `SELECT m.id, m.order_id, m.event_type, o.order_code, m.payload, trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')),
  coalesce(c.company_name, ''), coalesce(c.address1, ''), coalesce(c.address2, ''), coalesce(c.city, ''), coalesce(c.state, ''),
  coalesce(c.postal_code, ''), coalesce(c.country, ''), coalesce(c.email, ''), coalesce(c.phone, '')
FROM order_messages m JOIN orders o ON o.id = m.order_id
  LEFT JOIN customers c ON c.customer = o.customer AND o.customer <> '' AND c.deleted_at IS NULL
WHERE m.stream = 'events' AND `

// eachEvent calls fn for the events that match cond, in id order, until
// fn returns false or an error.
func eachEvent(ctx context.Context, q db.Querier, fn func(eventRow) (bool, error), cond string, args ...any) error {
	rows, err := q.QueryContext(ctx, eventQuery+cond+` ORDER BY m.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r eventRow
		var payload, company string
		c := &r.customer
		if err := rows.Scan(&r.id, &r.orderID, &r.typ, &r.order, &payload, &c.Name, &company, &c.Line1, &c.Line2, &c.City, &c.State, &c.Zip,
			&c.Country, &c.Email, &c.Phone); err != nil {
			return err
		}
		if c.Name == "" {
			c.Name = company
		}
		if err := json.Unmarshal([]byte(payload), &r.data); err != nil {
			r.bad = fmt.Errorf("stored payload: %w", err)
		}
		more, err := fn(r)
		if err != nil || !more {
			return err
		}
	}
	return rows.Err()
}

// render is the event of row r as partner p's sales posting writes it.
// It fails, naming the fields as the page does, when a field the page
// marks mandatory would be empty or a line number leaves no room in
// omsSubOrderItemId.
func render(r eventRow, p partner.Profile) (Event, error) {
	if r.bad != nil {
		return Event{}, r.bad
	}
	d := r.data
	// The billing address is the customer's, then what the order says of
	// the customer, then the shipping address; the shipping address falls
	// back the other way. Field by field, except that line1-line3 go
	// together: a street from one address and a flat from another would
	// be neither.
	bill := fill(fill(r.customer, d.Customer), d.Ship)
	ship := fill(fill(d.Ship, d.Customer), r.customer)
	e := Event{MessageID: r.id, EventType: d.EventType, OrderCode: d.OrderCode, ParentOrderCode: d.ParentOrderCode,
		OmsSubOrderID: r.orderID, OrderType: d.OrderType, LocationCode: d.LocationCode, ChannelName: d.ChannelName,
		ChannelType: p.ChannelType, PaymentMethod: d.PaymentMethod, IsPriority: d.IsPriority, ShippingCharges: d.ShippingCharges,
		BillingAddress: bill, ShippingAddress: ship, SubOrderItems: make([]EventItem, 0, len(d.Items))}
	if e.ChannelType == "" {
		e.ChannelType = defaultChannelType
	}
	var empty, bad []string
	for _, t := range []struct {
		name     string
		in       string
		out      *string
		required bool
	}{{"eventTime", d.EventTime, &e.EventTime, true}, {"createdAt", d.CreatedAt, &e.CreatedAt, false}, {"orderTime", d.OrderTime, &e.OrderTime, true}} {
		if t.in == "" {
			if t.required {
				empty = append(empty, t.name)
			}
			continue
		}
		v, err := postingTime(t.in, p.TimeFormat)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", t.name, err))
		}
		*t.out = v
	}
	for _, f := range []struct{ name, v string }{{"eventType", e.EventType}, {"orderCode", e.OrderCode},
		{"orderType", e.OrderType}, {"locationCode", e.LocationCode}, {"channelName", e.ChannelName},
		{"paymentMethod", e.PaymentMethod}} {
		if f.v == "" {
			empty = append(empty, f.name)
		}
	}
	empty = append(empty, bill.missing("billingAddress")...)
	empty = append(empty, ship.missing("shippingAddress")...)
	if len(d.Items) == 0 {
		empty = append(empty, "subOrderItems")
	}
	for i, it := range d.Items {
		line := it.line()
		if line <= 0 || line >= lineIDs {
			bad = append(bad, fmt.Sprintf("subOrderItems[%d]: rowNo %d leaves no omsSubOrderItemId (want 1 to %d)", i, line, lineIDs-1))
		}
		if it.ChannelSkuCode == "" {
			empty = append(empty, fmt.Sprintf("subOrderItems[%d].channelSkuCode", i))
		}
		e.SubOrderItems = append(e.SubOrderItems, EventItem{Barcode: it.Barcode, ChannelSkuCode: it.ChannelSkuCode,
			OmsSubOrderItemID: r.orderID*lineIDs + line, OrderItemCodes: it.OrderItemCodes, ExternalItemCodes: it.ExternalItemCodes,
			OrderedQuantity: it.OrderedQuantity, CancelledQuantity: it.CancelledQuantity, FulfilledQuantity: it.FulfilledQuantity,
			HoppedQuantity: it.HoppedQuantity, SellingPricePerUnit: it.SellingPricePerUnit, ChannelDiscount: it.ChannelDiscount,
			SellerDiscount: it.SellerDiscount, GiftChargePerUnit: it.GiftChargePerUnit, ShippingCharge: it.ShippingCharge})
	}
	if len(empty) > 0 {
		bad = append(bad, fmt.Sprintf("empty %s: the sales posting requires them", strings.Join(empty, ", ")))
	}
	if len(bad) > 0 {
		return e, errors.New(strings.Join(bad, "; "))
	}
	return e, nil
}

// line is the line number of an item; the payloads written before it was
// kept have it only at the end of the order item code (<orderCode>-<line>).
func (it itemData) line() int64 {
	if it.Line > 0 || len(it.OrderItemCodes) == 0 {
		return it.Line
	}
	code := it.OrderItemCodes[0]
	n, _ := strconv.ParseInt(code[strings.LastIndexByte(code, '-')+1:], 10, 64)
	return n
}

// postingTime is a stored time (UTC) in the partner's time format.
func postingTime(s, timeFormat string) (string, error) {
	t, err := time.Parse(db.TimeLayout, s)
	if err != nil {
		return s, fmt.Errorf("%q is not a stored time", s)
	}
	if timeFormat == partner.TimeISO8601 {
		return t.Format(db.TimeLayout), nil
	}
	return t.Format(documentedTime), nil
}

// fill is a with its empty fields taken from b; the address lines come
// from b only when a has none.
func fill(a, b EventAddress) EventAddress {
	first := func(x, y string) string {
		if strings.TrimSpace(x) == "" {
			return y
		}
		return x
	}
	if strings.TrimSpace(a.Line1+a.Line2+a.Line3) == "" {
		a.Line1, a.Line2, a.Line3 = b.Line1, b.Line2, b.Line3
	}
	a.Name, a.City, a.State, a.Zip = first(a.Name, b.Name), first(a.City, b.City), first(a.State, b.State), first(a.Zip, b.Zip)
	a.Country, a.Email, a.Phone = first(a.Country, b.Country), first(a.Email, b.Email), first(a.Phone, b.Phone)
	return a
}

// missing names the fields of a that the page marks mandatory and that
// are empty, as prefix.field.
func (a EventAddress) missing(prefix string) []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"name", a.Name}, {"line1", a.Line1}, {"city", a.City}, {"state", a.State},
		{"zip", a.Zip}, {"country", a.Country}, {"email", a.Email}, {"phone", a.Phone}} {
		if strings.TrimSpace(f.v) == "" {
			out = append(out, prefix+"."+f.name)
		}
	}
	return out
}

// readyEvents renders the ready events of partner p in id order until limit
// of them render (0: all): it returns the ids of those, and the events
// that do not render.
func readyEvents(ctx context.Context, q db.Querier, p partner.Profile, limit int) ([]int64, []Held, error) {
	var ids []int64
	var held []Held
	// A receiver applies an order's events in their order: after a held
	// one, the order's later events wait too.
	first := map[int64]int64{}
	err := eachEvent(ctx, q, func(r eventRow) (bool, error) {
		_, err := render(r, p)
		if id, ok := first[r.orderID]; ok && err == nil {
			err = fmt.Errorf("event %d of the order is held, and it goes first", id)
		}
		if err != nil {
			if _, ok := first[r.orderID]; !ok {
				first[r.orderID] = r.id
			}
			held = append(held, Held{MessageID: r.id, EventType: r.typ, Order: r.order, Reason: err.Error()})
			return true, nil
		}
		ids = append(ids, r.id)
		return limit <= 0 || len(ids) < limit, nil
	}, `m.partner = ? AND m.status = 'ready'`, p.Name)
	return ids, held, err
}

// ReadyEvents counts the ready events of partner p that can go out, and
// returns those that cannot (Held).
func ReadyEvents(ctx context.Context, q db.Querier, p partner.Profile) (int64, []Held, error) {
	ids, held, err := readyEvents(ctx, q, p, 0)
	return int64(len(ids)), held, err
}

// ClaimEvents takes the ready events of partner p that can go out into
// export file fileID, in id order; limit 0 means all. The others stay
// ready and are returned (Held). It returns how many it took.
func ClaimEvents(ctx context.Context, q db.Querier, p partner.Profile, fileID, runID int64, limit int) (int64, []Held, error) {
	ids, held, err := readyEvents(ctx, q, p, limit)
	if err != nil {
		return 0, held, err
	}
	n, err := claimIDs(ctx, q, ids, fileID, runID)
	return n, held, err
}

// claimIDs takes the ready messages ids into export file fileID, a chunk
// of ids per statement (a list in the SQL, which both engines read; a
// chunk keeps it under SQLite's limit of parameters).
func claimIDs(ctx context.Context, q db.Querier, ids []int64, fileID, runID int64) (int64, error) {
	const chunk = 500
	var n int64
	for len(ids) > 0 {
		c := ids[:min(chunk, len(ids))]
		ids = ids[len(c):]
		args := []any{fileID, db.NullID(runID), db.Now()}
		for _, id := range c {
			args = append(args, id)
		}
		res, err := q.ExecContext(ctx, `UPDATE order_messages SET status = 'processing', file_id = ?, run_id = ?, updated_at = ?
WHERE id IN (?`+strings.Repeat(", ?", len(c)-1)+`) AND status = 'ready'`, args...)
		if err != nil {
			return n, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// Check says why a queued message cannot go out as the partner's page
// documents it: nil when it can, else what Held reports of it (all but
// its MessageID).
type Check func(payload []byte) *Held

// readyChecked lists the ready messages of stream for partner whose
// payload passes check, in id order (limit 0: all), and holds the others.
func readyChecked(ctx context.Context, q db.Querier, stream, partner string, limit int, check Check) ([]int64, []Held, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, payload FROM order_messages WHERE stream = ? AND partner = ? AND status = 'ready' ORDER BY id`,
		stream, partner)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids []int64
	var held []Held
	for rows.Next() && (limit <= 0 || len(ids) < limit) {
		var id int64
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			return nil, nil, err
		}
		if h := check(payload); h != nil {
			h.MessageID = id
			held = append(held, *h)
			continue
		}
		ids = append(ids, id)
	}
	return ids, held, rows.Err()
}

// ReadyChecked counts the ready messages of stream for partner that pass
// check, and returns those that do not (Held).
func ReadyChecked(ctx context.Context, q db.Querier, stream, partner string, check Check) (int64, []Held, error) {
	ids, held, err := readyChecked(ctx, q, stream, partner, 0, check)
	return int64(len(ids)), held, err
}

// ClaimChecked takes the ready messages of stream for partner that pass
// check into export file fileID, in id order; limit 0 means all. The
// others stay ready and are returned (Held).
func ClaimChecked(ctx context.Context, q db.Querier, stream, partner string, fileID, runID int64, limit int, check Check) (int64, []Held, error) {
	ids, held, err := readyChecked(ctx, q, stream, partner, limit, check)
	if err != nil {
		return 0, held, err
	}
	n, err := claimIDs(ctx, q, ids, fileID, runID)
	return n, held, err
}

// EventMessages streams the events of file fileID as partner p's sales
// posting, one JSON object a line, in id order. An event that no longer
// renders (its customer changed since the claim) fails the file, whose
// events are then ready again.
func EventMessages(ctx context.Context, q db.Querier, fileID int64, p partner.Profile, emit func(line []byte) error) error {
	return eachEvent(ctx, q, func(r eventRow) (bool, error) {
		e, err := render(r, p)
		if err != nil {
			return false, fmt.Errorf("event %d of order %s: %w", r.id, r.order, err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return false, err
		}
		return true, emit(b)
	}, `m.file_id = ?`, fileID)
}
