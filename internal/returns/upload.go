package returns

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
	"sort"
	"strings"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// Kind is the file ledger kind of return expectation files.
const Kind = "returns"

// text is a JSON value read as text (imports.Flex).
type text = imports.Flex

// expectation is a return expectation of PARTNERS.md A. Keys match in any
// letter case (encoding/json does that).
type expectation struct {
	ForwardOrderCode text       `json:"forwardOrderCode"`
	ReturnOrderCode  text       `json:"returnOrderCode"`
	LocationCode     text       `json:"locationCode"`
	ChannelName      text       `json:"channelName"`
	EventType        text       `json:"eventType"`
	OrderType        text       `json:"orderType"`
	AwbNumber        text       `json:"awbNumber"`
	Transporter      text       `json:"transporter"`
	CreatedAt        text       `json:"createdAt"`
	OrderItems       []itemJSON `json:"orderItems"`
}

type itemJSON struct {
	ReturnItemCode text `json:"returnItemCode"`
	ChannelSkuCode text `json:"channelSkuCode"`
	Reason         text `json:"reason"`
	Quantity       text `json:"quantity"`
}

// rejectHeader are the columns of a return's row in the rejects file,
// after line and error.
var rejectHeader = []string{"return", "returnOrderCode", "returnItemCode", "channelSkuCode", "field"}

// Stats says what became of the returns of a file.
type Stats struct {
	Added, Updated, Unchanged int64
}

// Upload is the return expectation upload of partner name, for
// imports.Run; stats collects what became of the returns.
func Upload(name string, p config.Partner, stats *Stats) imports.Upload {
	return imports.Upload{Kind: Kind, What: "returns", Partner: name, Open: func(f *os.File, path string, o *imports.Options) ([]string, func(*imports.Session) error, error) {
		return rejectHeader, func(s *imports.Session) error {
			im := &importer{s: s, path: path, partner: name, p: p, stats: stats}
			return im.run(f)
		}, nil
	}}
}

// Import applies a return expectation file of partner name.
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
}

// run reads a JSON object, an array of objects, or objects one after the
// other (NDJSON), and applies each return.
func (im *importer) run(f io.Reader) error {
	return partner.EachRecord(im.s, im.partner, im.p, "returned stock goes there", "returns", f, im.apply)
}

// rejectError is why a return is rejected, and which item and field.
type rejectError struct {
	item, sku, field string
	msg              string
}

func (r *rejectError) Error() string { return r.msg }

func rejectf(field, format string, args ...any) error {
	return &rejectError{field: field, msg: fmt.Sprintf(format, args...)}
}

// parsed is a return checked and mapped to our SKUs.
type parsed struct {
	Return
	items []Item
	sha   string
}

// apply checks and applies the n-th return of the file, which starts at
// line; a bad one is rejected whole.
func (im *importer) apply(n, line int, raw json.RawMessage) error {
	s := im.s
	s.Result.Read++
	var e expectation
	code := ""
	var err error
	if raw[0] != '{' {
		err = rejectf("", "not a return object")
	} else if err = json.Unmarshal(raw, &e); err != nil {
		err = rejectf("", "not a return: %s", strings.TrimPrefix(err.Error(), "json: "))
	} else {
		code = string(e.ReturnOrderCode)
		var pr *parsed
		if pr, err = im.check(e); err == nil {
			err = im.save(pr)
		}
	}
	var rj *rejectError
	if errors.As(err, &rj) {
		who := fmt.Sprintf("return %d of the file", n)
		if code != "" {
			who = fmt.Sprintf("return %s (%s)", code, who)
		}
		if rj.item != "" {
			who += ", item " + rj.item
		}
		msg := fmt.Sprintf("%s: %s", who, rj.msg)
		s.Opts.Warn(fmt.Sprintf("%s: line %d: %s: the return is rejected", im.path, line, msg))
		return s.Reject(line, msg, []string{fmt.Sprint(n), code, rj.item, rj.sku, rj.field})
	}
	if err != nil {
		return db.Classify(err)
	}
	s.Result.Applied++
	return nil
}

// orderTypes are the return order types PARTNERS.md A names.
var orderTypes = []string{"SELF_SHIP", "CUSTOMER_RETURN", "RETURN_TO_ORIGIN"}

// check validates a return and maps its items to our SKUs.
func (im *importer) check(e expectation) (*parsed, error) {
	pr := &parsed{Return: Return{Partner: im.partner, Code: string(e.ReturnOrderCode), ForwardOrderCode: string(e.ForwardOrderCode),
		LocationCode: string(e.LocationCode), Warehouse: im.p.Warehouse, Channel: string(e.ChannelName),
		EventType: strings.ToUpper(string(e.EventType)), OrderType: strings.ToUpper(string(e.OrderType)),
		AwbNumber: string(e.AwbNumber), Transporter: string(e.Transporter)}}
	if pr.Code == "" {
		return nil, rejectf("returnOrderCode", "returnOrderCode is required (the return's unique key)")
	}
	found := false
	for _, t := range orderTypes {
		found = found || t == pr.OrderType
	}
	if !found {
		return nil, rejectf("orderType", "orderType %q: want %s", e.OrderType, strings.Join(orderTypes, ", "))
	}
	switch {
	case pr.LocationCode == "":
		pr.LocationCode = im.p.Location
	case im.p.Location != "" && pr.LocationCode != im.p.Location:
		return nil, rejectf("locationCode", "locationCode %q is not the location of partner %s (%s, our warehouse %s)",
			pr.LocationCode, im.partner, im.p.Location, im.p.Warehouse)
	}
	if pr.Channel == "" {
		pr.Channel = im.partner
	}
	if e.CreatedAt != "" {
		t, err := orders.ParseTime(string(e.CreatedAt))
		if err != nil {
			return nil, rejectf("createdAt", "createdAt: %v", err)
		}
		pr.ReturnTime = t
	}
	if len(e.OrderItems) == 0 {
		return nil, rejectf("orderItems", "orderItems is empty: a return needs at least one item")
	}
	seen := map[string]bool{}
	for i, it := range e.OrderItems {
		code := string(it.ReturnItemCode)
		fail := func(field, format string, args ...any) error {
			return &rejectError{item: code, sku: string(it.ChannelSkuCode), field: field, msg: fmt.Sprintf(format, args...)}
		}
		if code == "" {
			code = fmt.Sprintf("#%d", i+1)
			return nil, fail("returnItemCode", "returnItemCode is required")
		}
		if seen[code] {
			return nil, fail("returnItemCode", "returnItemCode %s is given twice", code)
		}
		seen[code] = true
		ri := Item{Code: code, ChannelSkuCode: string(it.ChannelSkuCode), Reason: string(it.Reason), Quantity: 1}
		if it.Quantity != "" {
			q, err := format.ParseInt(string(it.Quantity))
			if err != nil || q <= 0 || q > imports.MaxQuantity {
				return nil, fail("quantity", "quantity %q: want a whole number above 0", it.Quantity)
			}
			ri.Quantity = q
		}
		if ri.ChannelSkuCode == "" {
			return nil, fail("channelSkuCode", "channelSkuCode is required")
		}
		var err error
		if ri.Item, ri.SKU, err = im.resolve(ri.ChannelSkuCode); err != nil {
			var rj *rejectError
			if errors.As(err, &rj) {
				return nil, fail("channelSkuCode", "%s", rj.msg)
			}
			return nil, err
		}
		pr.items = append(pr.items, ri)
	}
	b, err := json.Marshal(struct {
		R Return
		I []Item
	}{pr.Return, pr.items})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	pr.sha = hex.EncodeToString(sum[:])
	return pr, nil
}

// resolve finds the SKU a channelSkuCode names through the partner's
// sku_code: its cross reference, a UPC, or ITEM/SKU (ITEM alone for an
// item without SKUs).
func (im *importer) resolve(code string) (item, sku string, err error) {
	item, sku, err = partner.Resolve(im.s.Ctx, im.s.Conn, im.partner, im.p, code)
	var ce *partner.CodeError
	switch {
	case !errors.As(err, &ce):
		return item, sku, err
	case ce.Ambiguous:
		return "", "", rejectf("channelSkuCode", "channelSkuCode %q names more than one SKU", code)
	}
	return "", "", rejectf("channelSkuCode", "unknown channelSkuCode %q: %s", code, ce.Reason)
}

// save adds or updates the return, in a savepoint of its own.
func (im *importer) save(pr *parsed) (err error) {
	s := im.s
	if _, err := s.Conn.ExecContext(s.Ctx, `SAVEPOINT ret`); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.Conn.ExecContext(context.Background(), `ROLLBACK TO ret`)
		}
		s.Conn.ExecContext(context.Background(), `RELEASE ret`)
	}()
	var id int64
	var sha string
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT id, content_sha FROM returns WHERE partner = ? AND return_code = ?`,
		im.partner, pr.Code).Scan(&id, &sha)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.add(pr)
	case err != nil:
		return err
	case sha == pr.sha:
		im.stats.Unchanged++
		return nil
	}
	return im.update(pr, id)
}

func (im *importer) add(pr *parsed) error {
	s := im.s
	now := db.Now()
	res, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO returns(partner, return_code, order_type, warehouse, content_sha, file_id, created_at, updated_at)
VALUES (?, ?, ?, ?, '', ?, ?, ?)`, im.partner, pr.Code, pr.OrderType, pr.Warehouse, s.FileID, now, now)
	if err != nil {
		return err
	}
	id, _ := res.LastInsertId()
	if err := im.header(pr, id); err != nil {
		return err
	}
	for _, it := range pr.items {
		if err := im.insertItem(id, it); err != nil {
			return err
		}
	}
	im.stats.Added++
	return nil
}

func (im *importer) header(pr *parsed, id int64) error {
	_, err := im.s.Conn.ExecContext(im.s.Ctx, `UPDATE returns SET forward_order_code = ?, location_code = ?, warehouse = ?, channel = ?,
  event_type = ?, order_type = ?, awb_number = ?, transporter = ?, return_time = ?, content_sha = ?, file_id = ?, updated_at = ? WHERE id = ?`,
		pr.ForwardOrderCode, pr.LocationCode, pr.Warehouse, pr.Channel, pr.EventType, pr.OrderType, pr.AwbNumber, pr.Transporter,
		pr.ReturnTime, pr.sha, im.s.FileID, db.Now(), id)
	return err
}

func (im *importer) insertItem(id int64, it Item) error {
	_, err := im.s.Conn.ExecContext(im.s.Ctx, `INSERT INTO return_items(return_id, item_code, channel_sku_code, item, sku, quantity, reason)
VALUES (?, ?, ?, ?, ?, ?, ?)`, id, it.Code, it.ChannelSkuCode, it.Item, it.SKU, it.Quantity, it.Reason)
	return err
}

// update applies a changed re-send: the header and the items not yet
// received take the new content (items no longer in it go); an item
// received already keeps what it was received as.
func (im *importer) update(pr *parsed, id int64) error {
	s := im.s
	old, err := load(s.Ctx, s.Conn, id)
	if err != nil {
		return err
	}
	if err := im.header(pr, id); err != nil {
		return err
	}
	if _, err := s.Conn.ExecContext(s.Ctx, `UPDATE returns SET revision = revision + 1 WHERE id = ?`, id); err != nil {
		return err
	}
	received := map[string]Item{}
	for _, it := range old.Lines {
		if it.Received {
			received[it.Code] = it
		}
	}
	if _, err := s.Conn.ExecContext(s.Ctx, `DELETE FROM return_items WHERE return_id = ? AND received = 0`, id); err != nil {
		return err
	}
	var kept []string
	for _, it := range pr.items {
		if r, ok := received[it.Code]; ok {
			if r.ChannelSkuCode != it.ChannelSkuCode || r.Quantity != it.Quantity || r.Reason != it.Reason {
				kept = append(kept, it.Code)
			}
			delete(received, it.Code)
			continue
		}
		if err := im.insertItem(id, it); err != nil {
			return err
		}
	}
	for code := range received {
		kept = append(kept, code)
	}
	sort.Strings(kept)
	if err := setStatus(s.Ctx, s.Conn, id); err != nil {
		return err
	}
	if err := refreshUpdates(s.Ctx, s.Conn, id); err != nil {
		return err
	}
	im.stats.Updated++
	msg := fmt.Sprintf("%s: return %s changed, the later one wins (revision %d)", im.path, pr.Code, old.Revision+1)
	if len(kept) > 0 {
		msg += fmt.Sprintf("; items received already keep what they were received as: %s", strings.Join(kept, ", "))
	}
	s.Opts.Warn(msg)
	return nil
}
