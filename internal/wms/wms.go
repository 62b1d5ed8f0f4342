package wms

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// File ledger kinds of the WMS uploads.
const (
	KindReceipts = "receipts"
	KindCounts   = "counts"
)

// Stats says what became of the events of a file.
type Stats struct {
	// Events counts the events applied, Resent those applied before (by
	// an earlier file or earlier in this one), which changed nothing.
	Events, Resent int64
	// ResentIDs are the first few re-sent event ids.
	ResentIDs []string
	// Warnings are notes on applied lines (received more than advised,
	// received less than before).
	Warnings int64
}

// resentShown is how many re-sent event ids Stats keeps.
const resentShown = 10

// importer is what receipts and counts share: the session, the partner
// and the applier the transactions go through.
type importer struct {
	s       *imports.Session
	path    string
	kind    string
	partner string
	p       config.Partner
	ap      *imports.Applier
	stats   *Stats
	header  []string
	skus    map[string]skuResult
	locs    map[[2]string]string
}

type skuResult struct {
	item, sku string
	reason    error
}

// upload is the frame of both WMS uploads: the partner's warehouse must be
// loaded; the file applies whole or not at all, because an event applied
// in part could not be re-sent (its id would be taken).
func upload(kind, what string, header []string, name string, p config.Partner, stats *Stats,
	event func(im *importer, n, line int, raw json.RawMessage) error) imports.Upload {
	return imports.Upload{Kind: kind, What: what, Partner: name, Open: func(f *os.File, path string, o *imports.Options) ([]string, func(*imports.Session) error, error) {
		o.AllOrNothing = true
		return header, func(s *imports.Session) error {
			ap, err := imports.NewApplier(s)
			if err != nil {
				return err
			}
			defer ap.Close()
			im := &importer{s: s, path: path, kind: kind, partner: name, p: p, ap: ap, stats: stats, header: header,
				skus: map[string]skuResult{}, locs: map[[2]string]string{}}
			err = partner.EachRecord(s, name, p, "the WMS's stock is kept there", "events", f, func(n, line int, raw json.RawMessage) error {
				return event(im, n, line, raw)
			})
			if err != nil {
				return err
			}
			if s.Result.Applied == 0 || s.Result.Rejected > 0 {
				return nil // Run rolls the work back
			}
			s.Result.Triggers, err = ap.Finish()
			return err
		}, nil
	}}
}

// resent says whether the partner's event id was applied before, and
// counts and names it if so.
func (im *importer) resent(id string, line int) (bool, error) {
	s := im.s
	var kind, file, at string
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT e.kind, coalesce(f.name, ''), e.applied_at FROM partner_events e
LEFT JOIN files f ON f.id = e.file_id WHERE e.partner = ? AND e.event_id = ?`, im.partner, id).Scan(&kind, &file, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, db.Classify(err)
	}
	im.stats.Resent++
	if len(im.stats.ResentIDs) < resentShown {
		im.stats.ResentIDs = append(im.stats.ResentIDs, fmt.Sprintf("%s (line %d; applied as %s from %s at %s)", id, line, kind, file, at))
	}
	return true, nil
}

// applied records the event id as applied by this file.
func (im *importer) applied(id string) error {
	s := im.s
	_, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO partner_events(partner, event_id, kind, file_id, applied_at) VALUES (?, ?, ?, ?, ?)`,
		im.partner, id, im.kind, s.FileID, db.Now())
	if err != nil {
		return db.Classify(err)
	}
	im.stats.Events++
	return nil
}

// reject writes one record of an event to the rejects file and names it on
// stderr: who is "event ID (event N of the file)" and where the row or
// article it is about.
func (im *importer) reject(line int, who, where, msg string, raw []string) error {
	full := who
	if where != "" {
		full += ", " + where
	}
	full += ": " + msg
	im.s.Opts.Warn(fmt.Sprintf("%s: line %d: %s", im.path, line, full))
	return im.s.Reject(line, full, raw)
}

func eventName(n int, id string) string {
	if id == "" {
		return fmt.Sprintf("event %d of the file", n)
	}
	return fmt.Sprintf("event %s (event %d of the file)", id, n)
}

// notObject turns an unmarshal error into a reason.
func notObject(err error) string {
	return "not an event: " + strings.TrimPrefix(err.Error(), "json: ")
}

// article finds our item/SKU of the partner's articleNumber by its
// sku_code: the cross reference (xref, the default), the UPC, or our item
// number and ITEM/SKU (item), as the partner's inventory export names them.
func (im *importer) article(code string) (item, sku string, reason, err error) {
	if r, ok := im.skus[code]; ok {
		return r.item, r.sku, r.reason, nil
	}
	item, sku, err = partner.Resolve(im.s.Ctx, im.s.Conn, im.partner, im.p, code)
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

// location is our location in the partner's warehouse that a SKU's
// receipts and count adjustments go to: the SKU's stock row there with
// the most on hand (ties: the first location code), or no location ("")
// when it has none. The WMS counts per store, we keep stock per location;
// this puts the change where the SKU's stock is. Rows are read as they
// were when the file started (the applier writes its balances at the end),
// so a file's choice does not depend on its own order.
func (im *importer) location(item, sku string) (string, error) {
	k := [2]string{item, sku}
	if l, ok := im.locs[k]; ok {
		return l, nil
	}
	s := im.s
	var l string
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT location FROM inventory WHERE item = ? AND sku = ? AND warehouse = ?
ORDER BY on_hand DESC, location LIMIT 1`, item, sku, im.p.Warehouse).Scan(&l)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", db.Classify(err)
	}
	im.locs[k] = l
	return l, nil
}

// apply puts one transaction through the applier: reason is why it is
// rejected.
func (im *importer) apply(t imports.Transaction) (reason, err error) {
	var e error
	if t.Location, e = im.location(t.Item, t.SKU); e != nil {
		return nil, e
	}
	t.Warehouse, t.User = im.p.Warehouse, im.partner
	return im.ap.Apply(t)
}
