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
	"reflect"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// Kind is the file ledger kind of return expectation files.
const Kind = "returns"

// The eventType values of Increff's "Push Return Order Events to EFS
// (Beta)" page.
const (
	EventCreate        = "RETURN_ORDER_CREATE"
	EventUpdate        = "RETURN_ORDER_UPDATE"
	EventCancel        = "RETURN_ORDER_CANCEL"
	EventPartialCancel = "RETURN_ORDER_PARTIAL_CANCEL"
	EventComplete      = "RETURN_ORDER_COMPLETE"
)

// eventTypes are the events import returns knows, for messages.
var eventTypes = []string{EventCreate, EventUpdate, EventCancel, EventPartialCancel, EventComplete}

// statusCancelled is the status of a cancelled return and item in the
// partner's return events.
const statusCancelled = "CANCELLED"

// expectation is a return message of Increff's "Push Return Order
// Expectations" and "Push Return Order Events to EFS (Beta)" /
// "Push Return Order Cancellation to EFS" pages. Keys match in any letter
// case (encoding/json), a key given twice is refused (imports.Decode).
// Every field the pages document is a String: a number there is refused,
// not read as text (a code such as 000213401 loses its zeros as a
// number). Fields posbridge does not keep (isBundled, expectedDate, the
// custom attributes, …) are not read.
type expectation struct {
	ForwardOrderCode string `json:"forwardOrderCode"`
	ReturnOrderCode  string `json:"returnOrderCode"`
	LocationCode     string `json:"locationCode"`
	ChannelName      string `json:"channelName"`
	EventType        string `json:"eventType"`
	ReturnOrderTime  string `json:"returnOrderTime"`
	// CreatedAt is posbridge's earlier name of returnOrderTime.
	CreatedAt   string     `json:"createdAt"`
	Status      string     `json:"status"`
	OrderType   string     `json:"orderType"`
	AwbNumber   string     `json:"awbNumber"`
	Transporter string     `json:"transporter"`
	OrderItems  []itemJSON `json:"orderItems"`
}

// keptFields are the fields of a return message that posbridge keeps,
// held to load.max_field_length (partner.CheckFields).
var keptFields = partner.Kept(expectation{})

type itemJSON struct {
	ReturnItemCode string `json:"returnItemCode"`
	ChannelSkuCode string `json:"channelSkuCode"`
	Reason         string `json:"reason"`
	Status         string `json:"status"`
	// Quantity is posbridge's own: an Increff return item is one unit.
	Quantity imports.Flex `json:"quantity"`
}

// rejectHeader are the columns of a return's row in the rejects file,
// after line and error.
var rejectHeader = []string{"return", "returnOrderCode", "returnItemCode", "channelSkuCode", "field"}

// Stats says what became of the returns of a file.
type Stats struct {
	Added, Updated, Unchanged, Cancelled int64
}

// Upload is the return expectation upload of partner p, for imports.Run;
// stats collects what became of the returns.
func Upload(p partner.Profile, stats *Stats) imports.Upload {
	return partner.Upload(Kind, "returns", p, rejectHeader, func(s *imports.Session, f io.ReadSeeker, path string) error {
		im := &importer{s: s, path: path, p: p, stats: stats}
		return im.run(f)
	})
}

// Import applies a return expectation file of partner p.
func Import(ctx context.Context, d *db.DB, p partner.Profile, path string, o imports.Options) (*imports.Result, Stats, error) {
	return imports.RunWithStats(ctx, d, Upload, p, path, o)
}

type importer struct {
	s     *imports.Session
	path  string
	p     partner.Profile
	stats *Stats
}

// run reads a JSON object, an array of objects, or objects one after the
// other (NDJSON), and applies each return.
func (im *importer) run(f io.ReadSeeker) error {
	if err := im.lockReturns(f); err != nil {
		return err
	}
	return partner.EachRecord(im.s, im.p, "returned stock goes there", "returns", f, im.apply)
}

// lockReturns locks, on PostgreSQL, the stored returns the file names, in
// the order of their codes, before the first is changed; then f is at its
// start again. Writers on several hosts run at once there, and two files
// naming the same returns in opposite orders each held the return it
// changed first and waited for the other's: a deadlock, which the server
// broke by failing one of them (40P01, busy, exit 75). In one order the
// second waits for the first and then applies, as on SQLite, where one
// file runs after the other. A new return has no row to lock: two files
// whose only common returns are new ones, in opposite orders, still meet
// so (a lock per code instead took a slot of the server's lock table
// each, and 20,000 of them ran out of it). A record this reading cannot
// name is left to the second reading to reject, a file that cannot be
// read past some record to fail there.
func (im *importer) lockReturns(f io.ReadSeeker) error {
	s := im.s
	if db.DialectOf(s.Conn) != db.Postgres {
		return nil
	}
	var codes []string
	imports.EachJSON(f, "returns", func(_, _ int, raw json.RawMessage) error {
		var e struct {
			Code string `json:"returnOrderCode"`
		}
		json.Unmarshal(raw, &e)
		if code := strings.TrimSpace(e.Code); code != "" {
			codes = append(codes, code)
		}
		return s.Ctx.Err()
	})
	if err := s.Ctx.Err(); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// The rows are locked as the ORDER BY gives them.
	err := db.PgxConn(s.Conn, func(c *pgx.Conn) error {
		_, err := c.Exec(s.Ctx, `SELECT 1 FROM returns WHERE partner = $1 AND return_code = ANY($2::text[]) ORDER BY return_code FOR UPDATE`,
			im.p.Name, codes)
		return err
	})
	if err != nil {
		return fmt.Errorf("lock the returns of the file: %w", db.Classify(err))
	}
	return nil
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
	var fe *partner.FieldError
	if raw[0] != '{' {
		err = rejectf("", "not a return object")
	} else if ferr := partner.CheckFields(raw, s.Opts.MaxFieldLength, keptFields); errors.As(ferr, &fe) {
		// Named by its code when the code is not the bad field.
		json.Unmarshal(raw, &e)
		if !strings.EqualFold(fe.Key, "returnOrderCode") {
			code = strings.TrimSpace(e.ReturnOrderCode)
		}
		err = rejectf(fe.Key, "%v", fe)
	} else if ferr != nil {
		err = rejectf("", "%v", ferr)
	} else if err = imports.Decode(raw, &e); err != nil {
		// A value of the wrong type leaves the others decoded: the return
		// is named when its code was read.
		code = strings.TrimSpace(e.ReturnOrderCode)
		err = decodeError(err)
	} else {
		code = strings.TrimSpace(e.ReturnOrderCode)
		err = im.event(e)
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

// decodeError is why a record could not be decoded, naming the field as
// the partner wrote it: a value of the wrong type, or a key given twice.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := "a string (the page documents String)"
		switch te.Type.Kind() {
		case reflect.Slice:
			want = "an array"
		case reflect.Struct:
			want = "an object"
		}
		field := te.Field[strings.LastIndex(te.Field, ".")+1:]
		return rejectf(field, "%s: a JSON %s, want %s", te.Field, te.Value, want)
	}
	return rejectf("", "not a return: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// event applies a return message by its eventType: a create, update or
// complete carries the return (kept, or updated when changed); a cancel
// or partial cancel cancels items. No eventType is a create (posbridge's
// earlier shape).
func (im *importer) event(e expectation) error {
	switch ev := strings.ToUpper(strings.TrimSpace(e.EventType)); ev {
	case "", EventCreate, EventUpdate, EventComplete:
		pr, err := im.check(e)
		if err != nil {
			return err
		}
		return im.save(pr)
	case EventCancel, EventPartialCancel:
		return im.cancel(e, ev)
	default:
		return rejectf("eventType", "eventType %q: want one of %s", e.EventType, strings.Join(eventTypes, ", "))
	}
}

// orderTypes are the return order types of docs/returns.md section 2.
var orderTypes = []string{"SELF_SHIP", "CUSTOMER_RETURN", "RETURN_TO_ORIGIN"}

// check validates a return and maps its items to our SKUs.
func (im *importer) check(e expectation) (*parsed, error) {
	tr := strings.TrimSpace
	pr := &parsed{Return: Return{Partner: im.p.Name, Code: tr(e.ReturnOrderCode), ForwardOrderCode: tr(e.ForwardOrderCode),
		LocationCode: tr(e.LocationCode), Warehouse: im.p.Warehouse, Channel: tr(e.ChannelName),
		EventType: strings.ToUpper(tr(e.EventType)), OrderType: strings.ToUpper(tr(e.OrderType)),
		AwbNumber: tr(e.AwbNumber), Transporter: tr(e.Transporter)}}
	if pr.EventType == "" {
		pr.EventType = EventCreate
	}
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
			pr.LocationCode, im.p.Name, im.p.Location, im.p.Warehouse)
	}
	if pr.Channel == "" {
		pr.Channel = im.p.Name
	}
	when, field := tr(e.ReturnOrderTime), "returnOrderTime"
	if c := tr(e.CreatedAt); c != "" {
		if when != "" {
			return nil, rejectf("createdAt", "returnOrderTime and createdAt (posbridge's earlier name of it) are both given: give returnOrderTime")
		}
		when, field = c, "createdAt"
	}
	if when != "" {
		t, err := orders.ParseTime(when)
		if err != nil {
			return nil, rejectf(field, "%s: %v", field, err)
		}
		pr.ReturnTime = t
	}
	if len(e.OrderItems) == 0 {
		return nil, rejectf("orderItems", "orderItems is empty: a return needs at least one item")
	}
	seen := map[string]bool{}
	for i, it := range e.OrderItems {
		code := tr(it.ReturnItemCode)
		fail := func(field, format string, args ...any) error {
			return &rejectError{item: code, sku: tr(it.ChannelSkuCode), field: field, msg: fmt.Sprintf(format, args...)}
		}
		if code == "" {
			code = fmt.Sprintf("#%d", i+1)
			return nil, fail("returnItemCode", "returnItemCode is required")
		}
		if seen[code] {
			return nil, fail("returnItemCode", "returnItemCode %s is given twice", code)
		}
		seen[code] = true
		ri := Item{Code: code, ChannelSkuCode: tr(it.ChannelSkuCode), Reason: tr(it.Reason), Quantity: 1}
		if it.Quantity != "" {
			q, err := partner.Quantity(string(it.Quantity))
			switch {
			case errors.Is(err, format.ErrRange):
				return nil, fail("quantity", "quantity %q: %v", it.Quantity, err)
			case err != nil || q <= 0:
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
	item, sku, err = partner.Resolve(im.s.Ctx, im.s.Conn, im.p, code)
	var ce *partner.CodeError
	switch {
	case !errors.As(err, &ce):
		return item, sku, err
	case ce.Ambiguous:
		return "", "", rejectf("channelSkuCode", "channelSkuCode %q names more than one SKU", code)
	}
	return "", "", rejectf("channelSkuCode", "unknown channelSkuCode %q: %s", code, ce.Reason)
}

// savepoint runs fn in a savepoint of its own: a return that fails half
// way leaves nothing behind.
func (im *importer) savepoint(fn func() error) (err error) {
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
	return fn()
}

// save adds or updates the return. A changed return that the partner
// cancelled is refused: its cancel came later than what it says. A
// unique violation means that another import added the same return after
// this one looked (on PostgreSQL writers run at once): the savepoint undid
// the attempt, and the second one finds that return and updates it, as a
// later file would.
func (im *importer) save(pr *parsed) error {
	err := im.saveOnce(pr)
	if db.IsUniqueViolation(err) {
		err = im.saveOnce(pr)
	}
	return err
}

func (im *importer) saveOnce(pr *parsed) error {
	return im.savepoint(func() error {
		s := im.s
		var id int64
		var sha, cancelled string
		// Locked (lockReturn) before a changed re-send reads its items.
		err := s.Conn.QueryRowContext(s.Ctx, `SELECT id, content_sha, coalesce(cancelled_at, '') FROM returns WHERE partner = ? AND return_code = ?`+
			db.ForUpdate(s.Conn), im.p.Name, pr.Code).Scan(&id, &sha, &cancelled)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return im.add(pr)
		case err != nil:
			return err
		case sha == pr.sha:
			im.stats.Unchanged++
			return nil
		case cancelled != "":
			return rejectf("eventType", "return %s was cancelled at %s (%s): a cancelled return does not take a later %s",
				pr.Code, cancelled, EventCancel, pr.EventType)
		}
		return im.update(pr, id)
	})
}

func (im *importer) add(pr *parsed) error {
	s := im.s
	now := db.Now()
	var id int64
	err := s.Conn.QueryRowContext(s.Ctx, `INSERT INTO returns(partner, return_code, order_type, warehouse, content_sha, file_id, created_at, updated_at)
VALUES (?, ?, ?, ?, '', ?, ?, ?) RETURNING id`, im.p.Name, pr.Code, pr.OrderType, pr.Warehouse, s.FileID, now, now).Scan(&id)
	if err != nil {
		return err
	}
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
	// Items received or cancelled are settled: they keep what they were.
	received := map[string]Item{}
	for _, it := range old.Lines {
		if it.Received || it.CancelledAt != "" {
			received[it.Code] = it
		}
	}
	if _, err := s.Conn.ExecContext(s.Ctx, `DELETE FROM return_items WHERE return_id = ? AND received = 0 AND cancelled_at IS NULL`, id); err != nil {
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
		msg += fmt.Sprintf("; items received or cancelled already keep what they were: %s", strings.Join(kept, ", "))
	}
	s.Opts.Warn(msg)
	return nil
}

// cancel applies a RETURN_ORDER_CANCEL (every item of the return) or a
// RETURN_ORDER_PARTIAL_CANCEL (the items it gives with status CANCELLED)
// to a return imported before. A received item cannot be cancelled: its
// stock was raised and its QC result sent, so the partner and we disagree
// and a person must look; the whole message is rejected and nothing is
// cancelled. Items cancelled before stay so: the same cancel again
// changes nothing.
func (im *importer) cancel(e expectation, ev string) error {
	s := im.s
	code := strings.TrimSpace(e.ReturnOrderCode)
	if code == "" {
		return rejectf("returnOrderCode", "returnOrderCode is required (the return to cancel)")
	}
	if st := strings.TrimSpace(e.Status); ev == EventCancel && st != "" && !strings.EqualFold(st, statusCancelled) {
		return rejectf("status", "status %q: a %s has status %s", e.Status, EventCancel, statusCancelled)
	}
	var id int64
	// Locked (lockReturn) before its items are read to be cancelled.
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT id FROM returns WHERE partner = ? AND return_code = ?`+db.ForUpdate(s.Conn),
		im.p.Name, code).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return rejectf("returnOrderCode", "%s: return %s does not exist for partner %s: nothing to cancel (its %s was not imported, or was rejected)",
			ev, code, im.p.Name, EventCreate)
	}
	if err != nil {
		return err
	}
	r, err := load(s.Ctx, s.Conn, id)
	if err != nil {
		return err
	}
	byCode := map[string]Item{}
	for _, it := range r.Lines {
		byCode[it.Code] = it
	}
	// The items the message cancels.
	var targets []Item
	var strangers []string
	if ev == EventCancel {
		targets = r.Lines
		for _, it := range e.OrderItems {
			if c := strings.TrimSpace(it.ReturnItemCode); c != "" && byCode[c].Code == "" {
				strangers = append(strangers, c)
			}
		}
	} else {
		seen := map[string]bool{}
		for _, it := range e.OrderItems {
			c := strings.TrimSpace(it.ReturnItemCode)
			if !strings.EqualFold(strings.TrimSpace(it.Status), statusCancelled) || seen[c] {
				continue
			}
			seen[c] = true
			t, ok := byCode[c]
			if !ok {
				return &rejectError{item: c, sku: it.ChannelSkuCode, field: "returnItemCode",
					msg: fmt.Sprintf("%s: return %s has no item %q", ev, code, c)}
			}
			targets = append(targets, t)
		}
		if len(targets) == 0 {
			return rejectf("orderItems", "%s: no item has status %s: nothing to cancel", ev, statusCancelled)
		}
	}
	var todo []string
	for _, it := range targets {
		if it.Received {
			return &rejectError{item: it.Code, sku: it.ChannelSkuCode, field: "eventType",
				msg: fmt.Sprintf("%s: item %s was received at %s (QC %s): a received item cannot be cancelled; nothing of the return was cancelled",
					ev, it.Code, it.ReceivedAt, it.QCStatus)}
		}
		if it.CancelledAt == "" {
			todo = append(todo, it.Code)
		}
	}
	if len(strangers) > 0 {
		s.Opts.Warn(fmt.Sprintf("%s: %s of return %s names items the return does not have: %s", im.path, ev, code, strings.Join(strangers, ", ")))
	}
	if len(todo) == 0 {
		im.stats.Unchanged++
		s.Opts.Warn(fmt.Sprintf("%s: return %s: its items were cancelled before: nothing done", im.path, code))
		return nil
	}
	err = im.savepoint(func() error {
		now := db.Now()
		for _, c := range todo {
			if _, err := s.Conn.ExecContext(s.Ctx, `UPDATE return_items SET cancelled_at = ? WHERE return_id = ? AND item_code = ?`, now, id, c); err != nil {
				return err
			}
		}
		if _, err := s.Conn.ExecContext(s.Ctx, `UPDATE returns SET event_type = ?, file_id = ? WHERE id = ?`, ev, s.FileID, id); err != nil {
			return err
		}
		return setStatus(s.Ctx, s.Conn, id)
	})
	if err != nil {
		return err
	}
	im.stats.Cancelled++
	s.Opts.Warn(fmt.Sprintf("%s: return %s: %s cancelled %s", im.path, code, ev, strings.Join(todo, ", ")))
	return nil
}
