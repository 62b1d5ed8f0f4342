package wms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
)

// countEvent is a stock-taking event: adjustments per article and
// location. Keys match in any letter case.
type countEvent struct {
	WebhookEventID imports.Flex `json:"webhookEventId"`
	Adjustments    []adjustment `json:"adjustments"`
}

type adjustment struct {
	ArticleNumber imports.Flex `json:"articleNumber"`
	Location      imports.Flex `json:"location"`
	NumberOfItems imports.Flex `json:"numberOfItems"`
	CauseCode     imports.Flex `json:"causeCode"`
	IsStockTaking imports.Flex `json:"isStockTaking"`
}

// countHeader are the columns of an adjustment in the rejects file, after
// line and error.
var countHeader = []string{"event", "webhookEventId", "adjustment", "articleNumber", "location", "numberOfItems", "causeCode", "isStockTaking"}

// reasonCount is the history reason of a count adjustment without a cause
// code.
const reasonCount = "COUNT"

// Counts is the stock count upload of WMS partner name.
func Counts(name string, p config.Partner, stats *Stats) imports.Upload {
	return upload(KindCounts, "events", countHeader, name, p, stats, (*importer).count)
}

// ImportCounts applies a file of stock count adjustments of WMS partner
// name: each a signed adjustment (code A) of the SKU in the partner's
// warehouse.
func ImportCounts(ctx context.Context, d *db.DB, name string, p config.Partner, path string, o imports.Options) (*imports.Result, Stats, error) {
	var st Stats
	res, err := imports.Run(ctx, d, Counts(name, p, &st), path, o)
	return res, st, err
}

// count applies the n-th event of a counts file, which starts at line.
func (im *importer) count(n, line int, raw json.RawMessage) error {
	s := im.s
	var ev countEvent
	err := json.Unmarshal(raw, &ev)
	id := string(ev.WebhookEventID)
	who := eventName(n, id)
	whole := func(msg string) error {
		s.Result.Read++
		return im.reject(line, who, "", msg, []string{fmt.Sprint(n), id, "", "", "", "", "", ""})
	}
	switch {
	case err != nil:
		return whole(notObject(err))
	case id == "":
		return whole("webhookEventId is required (the event's id to apply it once)")
	case len(ev.Adjustments) == 0:
		return whole("adjustments is empty: a count needs at least one adjustment")
	}
	if again, err := im.resent(id, line); err != nil || again {
		s.Result.Read += int64(len(ev.Adjustments))
		return err
	}
	rejected := s.Result.Rejected
	for i, a := range ev.Adjustments {
		s.Result.Read++
		rec := []string{fmt.Sprint(n), id, fmt.Sprint(i + 1), string(a.ArticleNumber), string(a.Location), string(a.NumberOfItems),
			string(a.CauseCode), string(a.IsStockTaking)}
		reason, err := im.adjust(line, id, a)
		if err != nil {
			return err
		}
		if reason != nil {
			if err := im.reject(line, who, fmt.Sprintf("adjustment %d", i+1), reason.Error(), rec); err != nil {
				return err
			}
		}
	}
	if s.Result.Rejected > rejected {
		return nil
	}
	return im.applied(id)
}

// adjust applies one count adjustment: numberOfItems is the signed
// difference the count found, applied as an adjustment (code A); 0 changes
// nothing.
func (im *importer) adjust(line int, id string, a adjustment) (reason, err error) {
	if a.ArticleNumber == "" {
		return errors.New("articleNumber is required"), nil
	}
	if l := string(a.Location); l != "" && !strings.EqualFold(l, im.p.Location) {
		if im.p.Location == "" {
			return fmt.Errorf("location %q: unknown location: partners.%s.location is not set, give no location", l, im.partner), nil
		}
		return fmt.Errorf("location %q: unknown location: partner %s counts location %s (partners.%s.location)", l, im.partner, im.p.Location, im.partner), nil
	}
	if a.NumberOfItems == "" {
		return errors.New("numberOfItems is required (the signed difference the count found)"), nil
	}
	delta, e := format.ParseInt(string(a.NumberOfItems))
	switch {
	case e != nil:
		return fmt.Errorf("numberOfItems %q: want a whole number, signed", a.NumberOfItems), nil
	case delta > imports.MaxQuantity || delta < -imports.MaxQuantity:
		return fmt.Errorf("numberOfItems %q: out of range, at most %d either way", a.NumberOfItems, imports.MaxQuantity), nil
	}
	counted := false
	switch strings.ToLower(string(a.IsStockTaking)) {
	case "", "false", "0", "no", "n":
	case "true", "1", "yes", "y":
		counted = true
	default:
		return fmt.Errorf("isStockTaking %q: want true or false", a.IsStockTaking), nil
	}
	item, sku, reason, err := im.article(string(a.ArticleNumber))
	if err != nil || reason != nil || delta == 0 {
		return reason, err
	}
	cause := string(a.CauseCode)
	if cause == "" && counted {
		cause = reasonCount
	}
	reason, err = im.apply(imports.Transaction{Line: line, Code: imports.EffectAdjust, Item: item, SKU: sku, Quantity: delta,
		Reason: cause, Reference: id})
	if err == nil && reason == nil {
		im.s.Result.Applied++
	}
	return reason, err
}
