package wms

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// File ledger kinds of the WMS uploads.
const (
	KindReceipts = "receipts"
	KindCounts   = "counts"
)

// Stats says what became of the messages of a file.
type Stats struct {
	// Messages counts the records of the file that were applied (a
	// webhook, a purchase order GET, an article of the inventory
	// adjustments GET); Resent the webhooks applied before (by an earlier
	// file or earlier in this one), which changed nothing.
	Messages, Resent int64
	// ResentIDs are the first few re-sent webhook event ids.
	ResentIDs []string
	// Notes say why an accepted record changed no stock (a "Purchase
	// order is received" webhook, a transaction a GET counted before);
	// the first few.
	Notes []string
	// Warnings are notes on applied lines (received more than advised).
	Warnings int64
}

// shown is how many re-sent ids and notes Stats keeps.
const shown = 10

// importer is what receipts and counts share: the session, the partner
// and the applier the transactions go through.
type importer struct {
	s     *imports.Session
	path  string
	kind  string
	p     partner.Profile
	ap    *imports.Applier
	stats *Stats
	skus  map[string]skuResult
	locs  map[[3]string]string
}

type skuResult struct {
	item, sku string
	reason    error
}

// shapeFunc applies a record of one shape: the n-th of the file, which
// starts at line.
type shapeFunc func(im *importer, n, line int, raw json.RawMessage) error

// upload is the frame of both WMS uploads: the partner's warehouse must be
// loaded; the file applies whole or not at all, because a message applied
// in part could not be re-sent (its id would be taken). route tells a
// record's shape from its keys (record).
func upload(kind string, header []string, p partner.Profile, stats *Stats,
	route func(k map[string]bool) (apply shapeFunc, reason string)) imports.Upload {
	u := partner.Upload(kind, "messages", p, header, func(s *imports.Session, f io.ReadSeeker, path string) error {
		ap, err := imports.NewApplier(s)
		if err != nil {
			return err
		}
		defer ap.Close()
		im := &importer{s: s, path: path, kind: kind, p: p, ap: ap, stats: stats,
			skus: map[string]skuResult{}, locs: map[[3]string]string{}}
		err = partner.EachRecord(s, p, "the WMS's stock is kept there", "Ongoing messages", f, func(n, line int, raw json.RawMessage) error {
			return im.record(n, line, raw, route, len(header))
		})
		if err != nil {
			return err
		}
		if s.Result.Applied == 0 || s.Result.Rejected > 0 {
			return nil // Run rolls the work back
		}
		s.Result.Triggers, err = ap.Finish()
		return err
	})
	u.AllOrNothing = true
	return u
}

// keptFields are the fields of the Ongoing messages that posbridge reads;
// nothing of them goes into an export with a narrower limit than
// load.max_field_length.
var keptFields = partner.Kept(inboundWebhook{}, purchaseOrderGet{}, inventoryWebhook{}, adjustmentsGet{})

// fields checks the values of a record that posbridge reads
// (partner.CheckFields) before it is decoded; the reason names the field
// as Ongoing writes it.
func (im *importer) fields(raw json.RawMessage) error {
	return partner.CheckFields(raw, im.s.Opts.MaxFieldLength, keptFields)
}

// record applies the n-th record of a file, which starts at line, by its
// shape, which route tells from its keys: the function that applies it,
// or why it is none of the upload's shapes. A record of no shape is
// rejected with only its number of the columns of the rejects file.
func (im *importer) record(n, line int, raw json.RawMessage, route func(k map[string]bool) (shapeFunc, string), columns int) error {
	k, err := keys(raw)
	if ferr := im.fields(raw); ferr != nil {
		err = ferr
	}
	var reason string
	if err != nil {
		reason = decodeError(err)
	} else {
		var apply shapeFunc
		if apply, reason = route(k); apply != nil {
			return apply(im, n, line, raw)
		}
	}
	im.s.Result.Read++
	rec := make([]string, columns)
	rec[0] = fmt.Sprint(n)
	return im.reject(line, recordName(n, "", ""), "", reason, rec)
}

// webhook applies the n-th record of a file, a webhook of shape that
// json.Unmarshal decoded with err, once by its webhookEventId: rec is the
// record as the rejects file shows it, and apply applies it by its id and
// says why it is rejected.
func (im *importer) webhook(n, line int, shape string, event num, err error, rec []string, apply func(id string) (reason, err error)) error {
	im.s.Result.Read++
	who := recordName(n, shape, "")
	if err != nil {
		return im.reject(line, who, "", decodeError(err), rec)
	}
	id, e := ident("webhookEventId", event)
	if e != nil {
		return im.reject(line, who, "", e.Error(), rec)
	}
	ids := fmt.Sprint(id)
	if again, err := im.resent(ids, line); err != nil || again {
		return err
	}
	reason, err := apply(ids)
	if err != nil {
		return err
	}
	if reason != nil {
		return im.reject(line, recordName(n, shape, "webhookEventId "+ids), "", reason.Error(), rec)
	}
	return im.applied(ids)
}

// lines applies the count lines of a GET response, the record who names,
// which starts at line; with none it notes none, nothing to apply. apply
// applies line i and says where in the record it is, how the rejects file
// shows it and why it is rejected. Each line counts as read; the record
// counts as applied when no line was rejected.
func (im *importer) lines(line int, who string, count int, none string,
	apply func(i int) (where string, rec []string, reason, err error)) error {
	s := im.s
	if count == 0 {
		s.Result.Read++
		im.note(line, none)
		return nil
	}
	rejected := s.Result.Rejected
	for i := range count {
		s.Result.Read++
		where, rec, reason, err := apply(i)
		if err != nil {
			return err
		}
		if reason != nil {
			if err := im.reject(line, who, where, reason.Error(), rec); err != nil {
				return err
			}
		}
	}
	if s.Result.Rejected == rejected {
		im.stats.Messages++
	}
	return nil
}

// keys reads the top-level keys of a record, lower case, after
// imports.Decode refused a key given twice or in two spellings at any
// depth: the shape of a message is told by its keys.
func keys(raw json.RawMessage) (map[string]bool, error) {
	var m map[string]json.RawMessage
	err := imports.Decode(raw, &m)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return nil, fmt.Errorf("want an Ongoing message (an object), not %s", aOrAn(te.Value))
	case err != nil:
		return nil, err
	case m == nil:
		return nil, errors.New("want an Ongoing message (an object), not null")
	}
	k := make(map[string]bool, len(m))
	for key := range m {
		k[strings.ToLower(key)] = true
	}
	return k, nil
}

// decodeError turns an error of imports.Decode or json.Unmarshal into a
// reason that names the field as the partner wrote it, not our Go types.
func decodeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := "a " + te.Type.Kind().String()
		switch te.Type.Kind().String() {
		case "struct", "ptr":
			want = "an object"
		case "slice":
			want = "an array"
		}
		return fmt.Sprintf("%s: want %s, not %s", te.Field, want, aOrAn(te.Value))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// aOrAn puts "a" or "an" before a JSON kind.
func aOrAn(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// num is a number field as Ongoing documents it (a JSON number: ids are
// ints, quantities decimals such as 5.0). It keeps the value as written so
// that a string in its place is refused and named, not read as a number.
type num string

// UnmarshalJSON keeps the JSON text of any value; null is "".
func (v *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = ""
		return nil
	}
	*v = num(b)
	return nil
}

// notNumber says why v is not a JSON number, or nil.
func (v num) notNumber(field string) error {
	switch v[0] {
	case '"':
		return fmt.Errorf("%s %s: want a number (Ongoing documents one), not a string", field, v)
	case '{', '[', 't', 'f':
		return fmt.Errorf("%s %s: want a number", field, v)
	}
	return nil
}

// quantity reads a quantity: a decimal with no fraction beyond zeros (5.0
// is 5 units, 5.5 is refused); signed says whether it may be below 0.
func quantity(field string, v num, signed bool) (int64, error) {
	if v == "" {
		return 0, fmt.Errorf("%s is required", field)
	}
	if err := v.notNumber(field); err != nil {
		return 0, err
	}
	n, err := partner.Quantity(string(v))
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %s: %v", field, v, err)
	case n < 0 && !signed:
		return 0, fmt.Errorf("%s %s: cannot be negative", field, v)
	}
	return n, nil
}

// ident reads an id Ongoing documents as an int: a whole number above 0.
func ident(field string, v num) (int64, error) {
	if v == "" {
		return 0, fmt.Errorf("%s is required", field)
	}
	if err := v.notNumber(field); err != nil {
		return 0, err
	}
	n, err := format.ParseInt(string(v))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %s: want a whole number above 0", field, v)
	}
	return n, nil
}

// goodsOwner checks the goods owner a message names against
// partners.P.goods_owner_id: a message of another goods owner is not the
// partner's. A message that names none, or a partner without the setting,
// passes.
func (im *importer) goodsOwner(field string, v num) error {
	if v == "" {
		return nil
	}
	id, err := ident(field, v)
	if err != nil || im.p.GoodsOwnerID == 0 {
		return err
	}
	if id != im.p.GoodsOwnerID {
		return fmt.Errorf("%s %d: another goods owner: partner %s is goods owner %d (partners.%s.goods_owner_id)",
			field, id, im.p.Name, im.p.GoodsOwnerID, im.p.Name)
	}
	return nil
}

// warehouse is our warehouse of the Ongoing warehouse code a message
// names (partners.P.locations, or partners.P.location); a message without
// one is the goods owner's, partners.P.warehouse. A bin (location) is
// never a warehouse.
func (im *importer) warehouse(field string, code imports.Flex) (string, error) {
	w, ok := im.p.WarehouseFor(string(code))
	if !ok {
		return "", fmt.Errorf("%s %q: unknown warehouse: not in partners.%s.locations", field, code, im.p.Name)
	}
	return w, nil
}

// resent says whether the webhook event id was applied before, and counts
// and names it if so.
func (im *importer) resent(id string, line int) (bool, error) {
	s := im.s
	var kind, file, at string
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT e.kind, coalesce(f.name, ''), e.applied_at FROM partner_events e
LEFT JOIN files f ON f.id = e.file_id WHERE e.partner = ? AND e.event_id = ?`, im.p.Name, id).Scan(&kind, &file, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, db.Classify(err)
	}
	im.stats.Resent++
	if len(im.stats.ResentIDs) < shown {
		im.stats.ResentIDs = append(im.stats.ResentIDs, fmt.Sprintf("%s (line %d; applied as %s from %s at %s)", id, line, kind, file, at))
	}
	return true, nil
}

// applied records the webhook event id as applied by this file.
func (im *importer) applied(id string) error {
	s := im.s
	_, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO partner_events(partner, event_id, kind, file_id, applied_at) VALUES (?, ?, ?, ?, ?)`,
		im.p.Name, id, im.kind, s.FileID, db.Now())
	if err != nil {
		return db.Classify(err)
	}
	im.stats.Messages++
	return nil
}

// note keeps why an accepted record changed no stock.
func (im *importer) note(line int, msg string) {
	if len(im.stats.Notes) < shown {
		im.stats.Notes = append(im.stats.Notes, fmt.Sprintf("%s: line %d: %s", im.path, line, msg))
	}
}

// warn says something about an applied line on stderr.
func (im *importer) warn(line int, msg string) {
	im.stats.Warnings++
	im.s.Opts.Warn(fmt.Sprintf("%s: line %d: %s", im.path, line, msg))
}

// reject writes one record to the rejects file and names it on stderr:
// who is the message ("record 2 of the file (InboundTransactionPerformed,
// webhookEventId 5001)"), where the line or adjustment it is about.
func (im *importer) reject(line int, who, where, msg string, raw []string) error {
	full := who
	if where != "" {
		full += ", " + where
	}
	full += ": " + msg
	im.s.Opts.Warn(fmt.Sprintf("%s: line %d: %s", im.path, line, full))
	return im.s.Reject(line, full, raw)
}

// recordName names the n-th record of a file, its shape and its id.
func recordName(n int, shape, id string) string {
	s := fmt.Sprintf("record %d of the file", n)
	switch {
	case shape != "" && id != "":
		s += " (" + shape + ", " + id + ")"
	case shape != "":
		s += " (" + shape + ")"
	}
	return s
}

// unknownShape is the reason for a record that is none of the shapes of
// an upload: it names them and says what the record's keys look like.
func unknownShape(k map[string]bool, want string) string {
	ks := make([]string, 0, len(k))
	for key := range k {
		ks = append(ks, key)
	}
	sort.Strings(ks)
	return fmt.Sprintf("not a documented Ongoing message (keys %s): want %s", strings.Join(ks, ", "), want)
}

// article finds our item/SKU of the partner's articleNumber by its
// sku_code: the cross reference (xref, the default), the UPC, or our item
// number and ITEM/SKU (item), as the partner's inventory export names them.
func (im *importer) article(code string) (item, sku string, reason, err error) {
	if code == "" {
		return "", "", errors.New("article.articleNumber is required"), nil
	}
	if r, ok := im.skus[code]; ok {
		return r.item, r.sku, r.reason, nil
	}
	item, sku, err = partner.Resolve(im.s.Ctx, im.s.Conn, im.p, code)
	var ce *partner.CodeError
	switch {
	case errors.As(err, &ce) && ce.Ambiguous:
		item, sku, reason, err = "", "", fmt.Errorf("articleNumber %q names more than one SKU", code), nil
	case errors.As(err, &ce):
		item, sku, reason, err = "", "", fmt.Errorf("articleNumber %q: unknown article: %s", code, ce.Reason), nil
	case err != nil:
		return "", "", nil, err
	}
	im.skus[code] = skuResult{item, sku, reason}
	return item, sku, reason, nil
}

// location is our location in warehouse w that a SKU's receipts and
// adjustments go to: the SKU's stock row there with the most on hand (ties:
// the first location code), or no location ("") when it has none. Ongoing
// names a bin of its own, which is not one of our locations; this
// puts the change where the SKU's stock is. Rows are read as they were
// when the file started (the applier writes its balances at the end), so a
// file's choice does not depend on its own order.
func (im *importer) location(item, sku, w string) (string, error) {
	k := [3]string{item, sku, w}
	if l, ok := im.locs[k]; ok {
		return l, nil
	}
	s := im.s
	var l string
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT location FROM inventory WHERE item = ? AND sku = ? AND warehouse = ?
ORDER BY on_hand DESC, location LIMIT 1`, item, sku, w).Scan(&l)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", db.Classify(err)
	}
	im.locs[k] = l
	return l, nil
}

// apply puts one transaction through the applier (t.Warehouse set):
// reason is why it is rejected. An applied transaction counts.
func (im *importer) apply(t imports.Transaction) (reason, err error) {
	var e error
	if t.Location, e = im.location(t.Item, t.SKU, t.Warehouse); e != nil {
		return nil, e
	}
	t.User = im.p.Name
	reason, err = im.ap.Apply(t)
	if err == nil && reason == nil {
		im.s.Result.Applied++
	}
	return reason, err
}
