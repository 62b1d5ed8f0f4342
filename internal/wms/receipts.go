package wms

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
)

// receiptEvent is a purchase order reception as the WMS sends it. Keys
// match in any letter case (encoding/json does that); the lines may be
// called lines or purchaseOrderLines.
type receiptEvent struct {
	WebhookEventID      imports.Flex  `json:"webhookEventId"`
	PurchaseOrderNumber imports.Flex  `json:"purchaseOrderNumber"`
	Lines               []receiptLine `json:"lines"`
	PurchaseOrderLines  []receiptLine `json:"purchaseOrderLines"`
}

type receiptLine struct {
	RowNumber             imports.Flex `json:"rowNumber"`
	ArticleNumber         imports.Flex `json:"articleNumber"`
	AdvisedNumberOfItems  imports.Flex `json:"advisedNumberOfItems"`
	ReceivedNumberOfItems imports.Flex `json:"receivedNumberOfItems"`
}

// receiptHeader are the columns of a receipt line in the rejects file,
// after line and error.
var receiptHeader = []string{"event", "webhookEventId", "purchaseOrderNumber", "rowNumber", "articleNumber",
	"advisedNumberOfItems", "receivedNumberOfItems"}

// Receipts is the purchase order reception upload of WMS partner name.
func Receipts(name string, p config.Partner, stats *Stats) imports.Upload {
	return upload(KindReceipts, "events", receiptHeader, name, p, stats, (*importer).receipt)
}

// ImportReceipts applies a file of purchase order receptions of WMS
// partner name: each received line raises stock in the partner's
// warehouse by what it received beyond what earlier events of the line
// applied.
func ImportReceipts(ctx context.Context, d *db.DB, name string, p config.Partner, path string, o imports.Options) (*imports.Result, Stats, error) {
	var st Stats
	res, err := imports.Run(ctx, d, Receipts(name, p, &st), path, o)
	return res, st, err
}

// receipt applies the n-th event of a receipts file, which starts at line.
func (im *importer) receipt(n, line int, raw json.RawMessage) error {
	s := im.s
	var ev receiptEvent
	err := json.Unmarshal(raw, &ev)
	id, po := string(ev.WebhookEventID), string(ev.PurchaseOrderNumber)
	who := eventName(n, id)
	lines := ev.Lines
	if len(lines) == 0 {
		lines = ev.PurchaseOrderLines
	}
	whole := func(msg string) error {
		s.Result.Read++
		return im.reject(line, who, "", msg, []string{fmt.Sprint(n), id, po, "", "", "", ""})
	}
	switch {
	case err != nil:
		return whole(notObject(err))
	case id == "":
		return whole("webhookEventId is required (the event's id to apply it once)")
	case po == "":
		return whole("purchaseOrderNumber is required")
	case len(ev.Lines) > 0 && len(ev.PurchaseOrderLines) > 0:
		return whole("give the lines as lines or as purchaseOrderLines, not both")
	case len(lines) == 0:
		return whole("lines is empty: a reception needs at least one line")
	}
	if again, err := im.resent(id, line); err != nil || again {
		s.Result.Read += int64(len(lines))
		return err
	}
	rejected := s.Result.Rejected
	seen := map[int64]bool{}
	for _, l := range lines {
		s.Result.Read++
		rec := []string{fmt.Sprint(n), id, po, string(l.RowNumber), string(l.ArticleNumber), string(l.AdvisedNumberOfItems), string(l.ReceivedNumberOfItems)}
		where := "rowNumber " + string(l.RowNumber)
		reason, err := im.receiptLine(line, id, po, l, seen)
		if err != nil {
			return err
		}
		if reason != nil {
			if err := im.reject(line, who, where, reason.Error(), rec); err != nil {
				return err
			}
		}
	}
	if s.Result.Rejected > rejected {
		return nil
	}
	return im.applied(id)
}

// receiptLine applies one line of a reception: the increase of its
// cumulative receivedNumberOfItems over what was applied for the
// purchase order line before, as a receipt (code R).
func (im *importer) receiptLine(line int, id, po string, l receiptLine, seen map[int64]bool) (reason, err error) {
	s := im.s
	if l.RowNumber == "" {
		return errors.New("rowNumber is required"), nil
	}
	row, e := format.ParseInt(string(l.RowNumber))
	if e != nil || row <= 0 {
		return fmt.Errorf("rowNumber %q: want a whole number above 0", l.RowNumber), nil
	}
	if seen[row] {
		return fmt.Errorf("rowNumber %d is given twice in the event", row), nil
	}
	seen[row] = true
	if l.ArticleNumber == "" {
		return errors.New("articleNumber is required"), nil
	}
	received, e := count("receivedNumberOfItems", l.ReceivedNumberOfItems, true)
	if e != nil {
		return e, nil
	}
	var advised *int64
	if l.AdvisedNumberOfItems != "" {
		a, e := count("advisedNumberOfItems", l.AdvisedNumberOfItems, false)
		if e != nil {
			return e, nil
		}
		advised = &a
	}
	article := string(l.ArticleNumber)
	item, sku, reason, err := im.article(article)
	if err != nil || reason != nil {
		return reason, err
	}
	var before int64
	var was string
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT received, article FROM wms_receipt_lines WHERE partner = ? AND purchase_order = ? AND row_number = ?`,
		im.partner, po, row).Scan(&before, &was)
	switch {
	case err == nil:
		if was != article {
			return fmt.Errorf("articleNumber %q: purchase order %s row %d was received as article %q", article, po, row, was), nil
		}
	case !errors.Is(err, sql.ErrNoRows):
		return nil, db.Classify(err)
	}
	what := fmt.Sprintf("%s: line %d: purchase order %s row %d (%s)", im.path, line, po, row, article)
	if advised != nil && received > *advised {
		im.stats.Warnings++
		s.Opts.Warn(fmt.Sprintf("%s: received %d, more than the %d advised: accepted", what, received, *advised))
	}
	inc := received - before
	if inc < 0 {
		im.stats.Warnings++
		s.Opts.Warn(fmt.Sprintf("%s: received %d, less than the %d applied before: stock is not lowered (an event out of order, or a correction to post as a count)",
			what, received, before))
	}
	if inc > 0 {
		reason, err := im.apply(imports.Transaction{Line: line, Code: imports.EffectReceipt, Item: item, SKU: sku, Quantity: inc,
			Reference: fmt.Sprintf("%s/%d", po, row)})
		if err != nil || reason != nil {
			return reason, err
		}
		s.Result.Applied++
	}
	_, err = s.Conn.ExecContext(s.Ctx, `INSERT INTO wms_receipt_lines(partner, purchase_order, row_number, article, item, sku, advised, received, event_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(partner, purchase_order, row_number) DO UPDATE SET advised = excluded.advised,
  received = max(received, excluded.received), event_id = excluded.event_id, updated_at = excluded.updated_at`,
		im.partner, po, row, article, item, sku, advised, received, id, db.Now())
	return nil, db.Classify(err)
}

// count reads a whole number of items, 0 or more; required says whether
// it may be missing.
func count(field string, v imports.Flex, required bool) (int64, error) {
	if v == "" {
		if required {
			return 0, fmt.Errorf("%s is required", field)
		}
		return 0, nil
	}
	n, err := format.ParseInt(strings.TrimSpace(string(v)))
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %q: want a whole number", field, v)
	case n < 0:
		return 0, fmt.Errorf("%s %q: cannot be negative", field, v)
	case n > imports.MaxQuantity:
		return 0, fmt.Errorf("%s %q: out of range, at most %d", field, v, imports.MaxQuantity)
	}
	return n, nil
}
