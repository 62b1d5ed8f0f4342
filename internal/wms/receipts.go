package wms

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// The shapes import receipts reads, by the names of Ongoing's pages.
const (
	shapeInbound    = "InboundTransactionPerformed"
	shapePOReceived = "Purchase order is received"
	shapePOGet      = "GET purchaseOrders/{id}"
)

// receiptShapes names the shapes import receipts reads, for a record that
// is none of them.
const receiptShapes = `the "Inbound transaction has been performed" webhook (webhookEventId, article, articleItem, purchaseOrder), ` +
	`the "Purchase order is received" webhook (webhookEventId, purchaseOrderId) ` +
	`or the GET /api/v1/purchaseOrders/{id} response (goodsOwner, purchaseOrderInfo, purchaseOrderLines)`

// receiptHeader are the columns of a receipt record in the rejects file,
// after line and error: numberOfItems is the webhook's
// articleItem.numberOfItems or the GET line's receivedNumberOfItems.
var receiptHeader = []string{"record", "shape", "webhookEventId", "purchaseOrderNumber", "purchaseOrderLineId", "rowNumber",
	"articleNumber", "numberOfItems"}

// articleInfo is the article of every Ongoing message: articleNumber is
// the partner's code of our SKU (sku_code). articleSystemId and barCode
// are Ongoing's and not read.
type articleInfo struct {
	ArticleNumber imports.Flex `json:"articleNumber"`
}

// inboundWebhook is the "Inbound transaction has been performed" webhook
// (WebhookMovesPayload): one article item received, numberOfItems its
// amount, on a purchase order line when purchaseOrder is given.
type inboundWebhook struct {
	WebhookEventID num          `json:"webhookEventId"`
	GoodsOwnerID   num          `json:"goodsOwnerId"`
	IsReceive      imports.Flex `json:"isReceive"`
	IsMove         imports.Flex `json:"isMove"`
	Article        articleInfo  `json:"article"`
	ArticleItem    struct {
		ArticleItemID         num `json:"articleItemId"`
		OriginalArticleItemID num `json:"originalArticleItemId"`
		NumberOfItems         num `json:"numberOfItems"`
	} `json:"articleItem"`
	PurchaseOrder struct {
		PurchaseOrderID     num          `json:"purchaseOrderId"`
		PurchaseOrderNumber imports.Flex `json:"purchaseOrderNumber"`
		PurchaseOrderLine   struct {
			ID        num          `json:"id"`
			RowNumber imports.Flex `json:"rowNumber"`
		} `json:"purchaseOrderLine"`
	} `json:"purchaseOrder"`
}

// purchaseOrderGet is the response of GET /api/v1/purchaseOrders/{id}.
type purchaseOrderGet struct {
	GoodsOwner struct {
		ID num `json:"id"`
	} `json:"goodsOwner"`
	PurchaseOrderInfo struct {
		PurchaseOrderID     num          `json:"purchaseOrderId"`
		PurchaseOrderNumber imports.Flex `json:"purchaseOrderNumber"`
		Warehouse           struct {
			Code imports.Flex `json:"code"`
		} `json:"warehouse"`
	} `json:"purchaseOrderInfo"`
	PurchaseOrderLines []purchaseOrderLine `json:"purchaseOrderLines"`
}

type purchaseOrderLine struct {
	ID                    num          `json:"id"`
	RowNumber             imports.Flex `json:"rowNumber"`
	Article               articleInfo  `json:"article"`
	AdvisedNumberOfItems  num          `json:"advisedNumberOfItems"`
	ReceivedNumberOfItems num          `json:"receivedNumberOfItems"`
	ArticleItems          []struct {
		OriginalArticleItemID num `json:"originalArticleItemId"`
	} `json:"articleItems"`
}

// Receipts is the purchase order reception upload of WMS partner p.
func Receipts(p partner.Profile, stats *Stats) imports.Upload {
	return upload(KindReceipts, receiptHeader, p, stats, receiptShape)
}

// ImportReceipts applies a file of Ongoing receptions of WMS partner p:
// inbound transaction webhooks and purchase order GET responses, each
// raising stock by what was received and not applied before.
func ImportReceipts(ctx context.Context, d *db.DB, p partner.Profile, path string, o imports.Options) (*imports.Result, Stats, error) {
	return imports.RunWithStats(ctx, d, Receipts, p, path, o)
}

// receiptShape tells the shape of a record of a receipts file by its
// keys: a GET has purchaseOrderLines and no webhookEventId; an inbound
// transaction webhook has webhookEventId and articleItem (or movement)
// but no transaction (the inventory transaction webhook has articleItem
// too); a purchase order webhook has webhookEventId and purchaseOrderId
// but no lines.
func receiptShape(k map[string]bool) (shapeFunc, string) {
	switch {
	case k["purchaseorderlines"] && !k["webhookeventid"]:
		return (*importer).purchaseOrder, ""
	case k["webhookeventid"] && (k["articleitem"] || k["movement"]) && !k["transaction"]:
		return (*importer).inbound, ""
	case k["webhookeventid"] && k["purchaseorderid"]:
		return (*importer).poReceived, ""
	case k["lines"] || k["purchaseorderlines"]:
		return nil, "a flattened reception (purchaseOrderNumber with lines) is not an Ongoing message and is not read: want " + receiptShapes
	case k["transaction"] || k["inventoryadjustments"] || k["adjustments"]:
		return nil, "a stock adjustment, which import counts reads: want " + receiptShapes
	}
	return nil, unknownShape(k, receiptShapes)
}

// inbound applies an "Inbound transaction has been performed" webhook.
func (im *importer) inbound(n, line int, raw json.RawMessage) error {
	var ev inboundWebhook
	err := json.Unmarshal(raw, &ev)
	po, l := ev.PurchaseOrder, ev.PurchaseOrder.PurchaseOrderLine
	rec := []string{fmt.Sprint(n), shapeInbound, string(ev.WebhookEventID), string(po.PurchaseOrderNumber), string(l.ID),
		string(l.RowNumber), string(ev.Article.ArticleNumber), string(ev.ArticleItem.NumberOfItems)}
	return im.webhook(n, line, shapeInbound, ev.WebhookEventID, err, rec, func(id string) (reason, err error) {
		return im.received(line, id, ev)
	})
}

// received applies the article item an inbound transaction webhook
// received: its numberOfItems is the amount of this transaction, added to
// the purchase order line's running total. An article item that a
// purchase order GET already counted (listed in its articleItems) adds
// nothing: the GET's cumulative received number had it.
func (im *importer) received(line int, id string, ev inboundWebhook) (reason, err error) {
	if err := im.goodsOwner("goodsOwnerId", ev.GoodsOwnerID); err != nil {
		return err, nil
	}
	if isTrue(ev.IsMove) && !isTrue(ev.IsReceive) {
		im.note(line, fmt.Sprintf("webhookEventId %s moves an article item between bins (isMove): stock is unchanged", id))
		return nil, nil
	}
	qty, e := quantity("articleItem.numberOfItems", ev.ArticleItem.NumberOfItems, false)
	if e != nil {
		return e, nil
	}
	code := string(ev.Article.ArticleNumber)
	item, sku, reason, err := im.article(code)
	if err != nil || reason != nil {
		return reason, err
	}
	itemField, itemID := "articleItem.originalArticleItemId", ev.ArticleItem.OriginalArticleItemID
	if itemID == "" {
		itemField, itemID = "articleItem.articleItemId", ev.ArticleItem.ArticleItemID
	}
	var articleItem int64
	if itemID != "" {
		if articleItem, e = ident(itemField, itemID); e != nil {
			return e, nil
		}
	}
	po := ev.PurchaseOrder
	// The webhook names no warehouse: the goods owner's, or its line's.
	t := imports.Transaction{Line: line, Code: imports.EffectReceipt, Item: item, SKU: sku, Warehouse: im.p.Warehouse, Quantity: qty,
		Reference: "webhook " + id}
	if po.PurchaseOrderLine.ID == "" {
		if qty == 0 {
			return nil, nil
		}
		return im.apply(t) // a reception without a purchase order
	}
	lineID, e := ident("purchaseOrder.purchaseOrderLine.id", po.PurchaseOrderLine.ID)
	if e != nil {
		return e, nil
	}
	st, reason, err := im.poLine(lineID, code)
	if err != nil || reason != nil {
		return reason, err
	}
	if st.found {
		t.Warehouse = st.warehouse
	}
	if articleItem != 0 {
		counted, err := im.itemCounted(articleItem)
		if err != nil {
			return nil, err
		}
		if counted {
			im.note(line, fmt.Sprintf("webhookEventId %s: article item %d of purchase order line %d was counted by a purchase order GET before: stock is unchanged",
				id, articleItem, lineID))
			return nil, nil
		}
	}
	t.Reference = reference(po.PurchaseOrderNumber, po.PurchaseOrderLine.RowNumber)
	total, e := format.AddQuantity(st.received, qty)
	if e != nil {
		return fmt.Errorf("articleItem.numberOfItems %s: purchase order line %d had %d received before: the total is %v",
			ev.ArticleItem.NumberOfItems, lineID, st.received, e), nil
	}
	if qty > 0 {
		if reason, err := im.apply(t); err != nil || reason != nil {
			return reason, err
		}
	}
	err = im.saveLine(st, lineRow{id: lineID, poID: po.PurchaseOrderID, po: string(po.PurchaseOrderNumber), row: string(po.PurchaseOrderLine.RowNumber),
		article: code, item: item, sku: sku, warehouse: t.Warehouse, received: total, source: "webhookEventId " + id})
	if err == nil && articleItem != 0 {
		err = im.countItem(articleItem, lineID)
	}
	return nil, err
}

// poReceived accepts a "Purchase order is received" webhook: it names
// the purchase order but carries no lines, so alone it cannot be applied.
func (im *importer) poReceived(n, line int, raw json.RawMessage) error {
	im.s.Result.Read++
	var ev struct {
		WebhookEventID      num          `json:"webhookEventId"`
		GoodsOwnerID        num          `json:"goodsOwnerId"`
		PurchaseOrderNumber imports.Flex `json:"purchaseOrderNumber"`
	}
	err := json.Unmarshal(raw, &ev)
	rec := []string{fmt.Sprint(n), shapePOReceived, string(ev.WebhookEventID), string(ev.PurchaseOrderNumber), "", "", "", ""}
	who := recordName(n, shapePOReceived, "")
	if err != nil {
		return im.reject(line, who, "", decodeError(err), rec)
	}
	id, e := ident("webhookEventId", ev.WebhookEventID)
	if e == nil {
		e = im.goodsOwner("goodsOwnerId", ev.GoodsOwnerID)
	}
	if e != nil {
		return im.reject(line, who, "", e.Error(), rec)
	}
	im.note(line, fmt.Sprintf(`webhookEventId %d: "Purchase order is received" for purchase order %s carries no lines: nothing to apply `+
		`(the lines come from the "Inbound transaction has been performed" webhooks or GET /api/v1/purchaseOrders/{id})`, id, ev.PurchaseOrderNumber))
	return nil
}

// purchaseOrder applies a GET /api/v1/purchaseOrders/{id} response: each
// line's receivedNumberOfItems is cumulative, and only its increase over
// what was applied for the line before goes in.
func (im *importer) purchaseOrder(n, line int, raw json.RawMessage) error {
	s := im.s
	var g purchaseOrderGet
	err := json.Unmarshal(raw, &g)
	info := g.PurchaseOrderInfo
	po := string(info.PurchaseOrderNumber)
	who := recordName(n, shapePOGet, "")
	if po != "" {
		who = recordName(n, shapePOGet, "purchaseOrderNumber "+po)
	}
	whole := func(msg string) error {
		s.Result.Read++
		return im.reject(line, who, "", msg, []string{fmt.Sprint(n), shapePOGet, "", po, "", "", "", ""})
	}
	if err != nil {
		return whole(decodeError(err))
	}
	if po == "" {
		return whole("purchaseOrderInfo.purchaseOrderNumber is required")
	}
	if info.PurchaseOrderID != "" {
		if _, e := ident("purchaseOrderInfo.purchaseOrderId", info.PurchaseOrderID); e != nil {
			return whole(e.Error())
		}
	}
	if e := im.goodsOwner("goodsOwner.id", g.GoodsOwner.ID); e != nil {
		return whole(e.Error())
	}
	w, e := im.warehouse("purchaseOrderInfo.warehouse.code", info.Warehouse.Code)
	if e != nil {
		return whole(e.Error())
	}
	seen := map[int64]bool{}
	return im.lines(line, who, len(g.PurchaseOrderLines), fmt.Sprintf("purchase order %s has no purchaseOrderLines: nothing to apply", po),
		func(i int) (string, []string, error, error) {
			l := g.PurchaseOrderLines[i]
			rec := []string{fmt.Sprint(n), shapePOGet, "", po, string(l.ID), string(l.RowNumber), string(l.Article.ArticleNumber),
				string(l.ReceivedNumberOfItems)}
			reason, err := im.lineReceived(line, info.PurchaseOrderID, po, w, l, seen)
			return fmt.Sprintf("purchaseOrderLines[%d] (id %s, rowNumber %s)", i, l.ID, l.RowNumber), rec, reason, err
		})
}

// lineReceived applies one line of a purchase order GET into warehouse w:
// the increase of its receivedNumberOfItems over the line's running total
// (what earlier GETs and webhooks applied), as a receipt (code R). A lower
// received number than applied before is refused: stock is never taken
// back silently.
func (im *importer) lineReceived(line int, poID num, po, w string, l purchaseOrderLine, seen map[int64]bool) (reason, err error) {
	id, e := ident("id", l.ID)
	if e != nil {
		return e, nil
	}
	if seen[id] {
		return fmt.Errorf("id %d is given twice in the purchase order", id), nil
	}
	seen[id] = true
	received, e := quantity("receivedNumberOfItems", l.ReceivedNumberOfItems, false)
	if e != nil {
		return e, nil
	}
	var advised *int64
	if l.AdvisedNumberOfItems != "" {
		a, e := quantity("advisedNumberOfItems", l.AdvisedNumberOfItems, false)
		if e != nil {
			return e, nil
		}
		advised = &a
	}
	var items []int64
	for _, ai := range l.ArticleItems {
		if ai.OriginalArticleItemID != "" {
			v, e := ident("articleItems[].originalArticleItemId", ai.OriginalArticleItemID)
			if e != nil {
				return e, nil
			}
			items = append(items, v)
		}
	}
	code := string(l.Article.ArticleNumber)
	item, sku, reason, err := im.article(code)
	if err != nil || reason != nil {
		return reason, err
	}
	st, reason, err := im.poLine(id, code)
	switch {
	case err != nil || reason != nil:
		return reason, err
	case received < st.received:
		return fmt.Errorf("receivedNumberOfItems %s went down: purchase order %s line %d had %d received and applied before; "+
			"stock is never taken back silently (post the correction as a stock adjustment in Ongoing)", l.ReceivedNumberOfItems, po, id, st.received), nil
	}
	if advised != nil && received > *advised {
		im.warn(line, fmt.Sprintf("purchase order %s line %d (%s): received %d, more than the %d advised: accepted", po, id, code, received, *advised))
	}
	if st.found && st.received > 0 && st.warehouse != w {
		// The inbound webhooks name no warehouse, so what they received
		// went to the goods owner's (or an earlier GET's); the GET names
		// the line's own: the units move with the line rather than stay
		// split between two stores.
		ref := reference(imports.Flex(po), l.RowNumber)
		for _, t := range []imports.Transaction{
			{Line: line, Code: imports.EffectNegative, Item: item, SKU: sku, Warehouse: st.warehouse, Quantity: st.received, Reference: ref, Reason: "PO-WAREHOUSE"},
			{Line: line, Code: imports.EffectReceipt, Item: item, SKU: sku, Warehouse: w, Quantity: st.received, Reference: ref, Reason: "PO-WAREHOUSE"},
		} {
			if reason, err := im.apply(t); err != nil || reason != nil {
				return reason, err
			}
		}
		im.warn(line, fmt.Sprintf("purchase order %s line %d (%s): the %d received before went into warehouse %s; this GET names warehouse %s: moved there",
			po, id, code, st.received, st.warehouse, w))
	}
	if inc := received - st.received; inc > 0 {
		reason, err := im.apply(imports.Transaction{Line: line, Code: imports.EffectReceipt, Item: item, SKU: sku, Warehouse: w,
			Quantity: inc, Reference: reference(imports.Flex(po), l.RowNumber)})
		if err != nil || reason != nil {
			return reason, err
		}
	}
	err = im.saveLine(st, lineRow{id: id, poID: poID, po: po, row: string(l.RowNumber), article: code, item: item, sku: sku,
		warehouse: w, advised: advised, received: received, source: "GET purchaseOrders"})
	for _, ai := range items {
		if err == nil {
			err = im.countItem(ai, id)
		}
	}
	return nil, err
}

// reference is a receipt's history reference: the purchase order number
// and its row.
func reference(po, row imports.Flex) string {
	if row == "" {
		return string(po)
	}
	return string(po) + "/" + string(row)
}

func isTrue(v imports.Flex) bool {
	b, err := format.ParseFlag(string(v))
	return err == nil && b
}

// lineState is what was applied for a purchase order line before.
type lineState struct {
	found              bool
	received           int64
	article, warehouse string
}

// poLine reads what was applied for purchase order line id before; reason
// says why article code cannot be received on it: it was received as
// another article.
func (im *importer) poLine(id int64, code string) (st lineState, reason, err error) {
	s := im.s
	st = lineState{found: true}
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT received, article, warehouse FROM wms_po_lines WHERE partner = ? AND line_id = ?`,
		im.p.Name, id).Scan(&st.received, &st.article, &st.warehouse)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lineState{}, nil, nil
	case err != nil:
		return st, nil, db.Classify(err)
	case st.article != code:
		return st, fmt.Errorf("articleNumber %q: purchase order line %d was received as article %q", code, id, st.article), nil
	}
	return st, nil, nil
}

// lineRow is a purchase order line with its new running total.
type lineRow struct {
	id                                     int64
	poID                                   num
	po, row, article, item, sku, warehouse string
	advised                                *int64
	received                               int64
	source                                 string
}

// saveLine writes line l's new running total, worked out from read, what
// poLine read of it. On PostgreSQL another import may have applied the
// line since (two hosts at once): the line is written only if it is
// still as read, and a new one only if it is still not there; otherwise
// the file fails, whole, as busy, and the next run applies it to the line
// as it is then. Written unchecked, the two both received the line's
// units (into two warehouses when a webhook, which names none, met the
// GET that counted its article item) and the line kept whichever wrote
// last. TestPOLineAtOnce. On SQLite nothing changes meanwhile.
func (im *importer) saveLine(read lineState, l lineRow) error {
	s := im.s
	var poID any
	if l.poID != "" {
		poID = string(l.poID)
	}
	res, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO wms_po_lines(partner, line_id, purchase_order_id, purchase_order, row_number, article,
  item, sku, warehouse, advised, received, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(partner, line_id) DO UPDATE SET purchase_order_id = coalesce(excluded.purchase_order_id, wms_po_lines.purchase_order_id),
  purchase_order = CASE WHEN excluded.purchase_order <> '' THEN excluded.purchase_order ELSE wms_po_lines.purchase_order END,
  row_number = CASE WHEN excluded.row_number <> '' THEN excluded.row_number ELSE wms_po_lines.row_number END, warehouse = excluded.warehouse,
  advised = coalesce(excluded.advised, wms_po_lines.advised), received = excluded.received, source = excluded.source, updated_at = excluded.updated_at
WHERE ? = 1 AND wms_po_lines.received = ? AND wms_po_lines.warehouse = ?`,
		im.p.Name, l.id, poID, l.po, l.row, l.article, l.item, l.sku, l.warehouse, l.advised, l.received, l.source, db.Now(),
		read.found, read.received, read.warehouse)
	if err != nil {
		return db.Classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return db.Classify(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: purchase order line %d was changed by another import since this file read it; "+
			"nothing of the file is applied, and the next run applies it to the line as it is then", db.ErrBusy, l.id)
	}
	return nil
}

// itemCounted says whether an article item is in a line's received count.
func (im *importer) itemCounted(id int64) (bool, error) {
	s := im.s
	var ok bool
	err := s.Conn.QueryRowContext(s.Ctx, `SELECT EXISTS (SELECT 1 FROM wms_po_items WHERE partner = ? AND article_item_id = ?)`,
		im.p.Name, id).Scan(&ok)
	return ok, db.Classify(err)
}

// countItem records an article item as in line's received count.
func (im *importer) countItem(id, line int64) error {
	s := im.s
	_, err := s.Conn.ExecContext(s.Ctx, `INSERT INTO wms_po_items(partner, article_item_id, line_id) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING`, im.p.Name, id, line)
	return db.Classify(err)
}
