package wms

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// The shapes import counts reads, by the names of Ongoing's pages.
const (
	shapeInventory   = "InventoryTransactionPerformed"
	shapeAdjustments = "GET inventoryAdjustments"
)

// countShapes names the shapes import counts reads, for a record that is
// none of them.
const countShapes = `the "Inventory transaction has been performed" webhook (webhookEventId, transaction, inventory, article, location) ` +
	`or the GET /api/v1/inventoryAdjustments response, an array of {article, inventoryAdjustments}`

// countHeader are the columns of an adjustment in the rejects file, after
// line and error.
var countHeader = []string{"record", "shape", "webhookEventId", "inventoryId", "articleNumber", "location", "warehouseCode",
	"numberOfItems", "cause"}

// reasonCount is the history reason of a stock count without a cause code.
const reasonCount = "COUNT"

// inventoryWebhook is the "Inventory transaction has been performed"
// webhook (WebhookInventoryPayload): one signed adjustment of an article
// in a bin of a warehouse.
type inventoryWebhook struct {
	WebhookEventID num `json:"webhookEventId"`
	GoodsOwnerID   num `json:"goodsOwnerId"`
	Transaction    struct {
		TransactionNumberOfItems num `json:"transactionNumberOfItems"`
		InventoryAdjustmentCause struct {
			Code imports.Flex `json:"code"`
		} `json:"inventoryAdjustmentCause"`
	} `json:"transaction"`
	Inventory struct {
		InventoryID      num          `json:"inventoryId"`
		IsCountInventory imports.Flex `json:"isCountInventory"`
	} `json:"inventory"`
	Article     articleInfo `json:"article"`
	ArticleItem struct {
		Batch  imports.Flex `json:"batch"`
		Serial imports.Flex `json:"serial"`
	} `json:"articleItem"`
	Location struct {
		Location  imports.Flex `json:"location"`
		Warehouse struct {
			WarehouseCode imports.Flex `json:"warehouseCode"`
		} `json:"warehouse"`
	} `json:"location"`
}

// adjustmentsGet is one article of the GET /api/v1/inventoryAdjustments
// response, with its adjustments.
type adjustmentsGet struct {
	Article              articleInfo `json:"article"`
	InventoryAdjustments []struct {
		InventoryID              num `json:"inventoryId"`
		NumberOfItems            num `json:"numberOfItems"`
		InventoryAdjustmentCause struct {
			Code imports.Flex `json:"code"`
		} `json:"inventoryAdjustmentCause"`
		Location    imports.Flex `json:"location"`
		BatchNumber imports.Flex `json:"batchNumber"`
		Serial      imports.Flex `json:"serial"`
		Warehouse   struct {
			Code imports.Flex `json:"code"`
		} `json:"warehouse"`
	} `json:"inventoryAdjustments"`
}

// adjustment is a stock adjustment of either shape, with the names of its
// fields as the shape writes them.
type adjustment struct {
	inventoryID, numberOfItems         num
	article, bin, batch, serial, cause imports.Flex
	warehouseCode                      imports.Flex
	counted                            bool
	idField, qtyField, whField         string
	source                             string
}

func (a adjustment) rec(n int, shape string, event num) []string {
	return []string{fmt.Sprint(n), shape, string(event), string(a.inventoryID), string(a.article), string(a.bin),
		string(a.warehouseCode), string(a.numberOfItems), string(a.cause)}
}

// Counts is the stock adjustment upload of WMS partner p.
func Counts(p partner.Profile, stats *Stats) imports.Upload {
	return upload(KindCounts, countHeader, p, stats, countShape)
}

// ImportCounts applies a file of Ongoing stock adjustments of WMS partner
// p: inventory transaction webhooks and inventory adjustments GET
// responses, each adjustment a signed adjustment (code A), once.
func ImportCounts(ctx context.Context, d *db.DB, p partner.Profile, path string, o imports.Options) (*imports.Result, Stats, error) {
	return imports.RunWithStats(ctx, d, Counts, p, path, o)
}

// countShape tells the shape of a record of a counts file by its keys:
// the webhook has webhookEventId and transaction; an article of the GET
// has inventoryAdjustments.
func countShape(k map[string]bool) (shapeFunc, string) {
	switch {
	case k["webhookeventid"] && k["transaction"]:
		return (*importer).inventoryTransaction, ""
	case k["inventoryadjustments"] && !k["webhookeventid"]:
		return (*importer).adjustments, ""
	case k["adjustments"]:
		return nil, "a flattened count (webhookEventId with adjustments) is not an Ongoing message and is not read: want " + countShapes
	case k["articleitem"] || k["purchaseorderlines"] || k["purchaseorderid"]:
		return nil, "a reception, which import receipts reads: want " + countShapes
	}
	return nil, unknownShape(k, countShapes)
}

// inventoryTransaction applies an "Inventory transaction has been
// performed" webhook.
func (im *importer) inventoryTransaction(n, line int, raw json.RawMessage) error {
	var ev inventoryWebhook
	err := json.Unmarshal(raw, &ev)
	a := adjustment{inventoryID: ev.Inventory.InventoryID, numberOfItems: ev.Transaction.TransactionNumberOfItems,
		article: ev.Article.ArticleNumber, bin: ev.Location.Location, batch: ev.ArticleItem.Batch, serial: ev.ArticleItem.Serial,
		cause: ev.Transaction.InventoryAdjustmentCause.Code, warehouseCode: ev.Location.Warehouse.WarehouseCode,
		counted: isTrue(ev.Inventory.IsCountInventory), idField: "inventory.inventoryId",
		qtyField: "transaction.transactionNumberOfItems", whField: "location.warehouse.warehouseCode"}
	return im.webhook(n, line, shapeInventory, ev.WebhookEventID, err, a.rec(n, shapeInventory, ev.WebhookEventID),
		func(id string) (reason, err error) {
			a.source = "webhookEventId " + id
			if reason := im.goodsOwner("goodsOwnerId", ev.GoodsOwnerID); reason != nil {
				return reason, nil
			}
			return im.adjust(line, a)
		})
}

// adjustments applies one article of a GET /api/v1/inventoryAdjustments
// response: each of its adjustments once, by its inventoryId.
func (im *importer) adjustments(n, line int, raw json.RawMessage) error {
	s := im.s
	var g adjustmentsGet
	err := json.Unmarshal(raw, &g)
	who := recordName(n, shapeAdjustments, "")
	if g.Article.ArticleNumber != "" {
		who = recordName(n, shapeAdjustments, "articleNumber "+string(g.Article.ArticleNumber))
	}
	if err != nil {
		s.Result.Read++
		return im.reject(line, who, "", decodeError(err), adjustment{article: g.Article.ArticleNumber}.rec(n, shapeAdjustments, ""))
	}
	return im.lines(line, who, len(g.InventoryAdjustments),
		fmt.Sprintf("article %s has no inventoryAdjustments: nothing to apply", g.Article.ArticleNumber),
		func(i int) (string, []string, error, error) {
			ga := g.InventoryAdjustments[i]
			a := adjustment{inventoryID: ga.InventoryID, numberOfItems: ga.NumberOfItems, article: g.Article.ArticleNumber,
				bin: ga.Location, batch: ga.BatchNumber, serial: ga.Serial, cause: ga.InventoryAdjustmentCause.Code,
				warehouseCode: ga.Warehouse.Code, idField: "inventoryId", qtyField: "numberOfItems", whField: "warehouse.code",
				source: "GET inventoryAdjustments"}
			reason, err := im.adjust(line, a)
			return fmt.Sprintf("inventoryAdjustments[%d] (inventoryId %s)", i, ga.InventoryID), a.rec(n, shapeAdjustments, ""), reason, err
		})
}

// adjust applies one stock adjustment: its signed number of items as an
// adjustment (code A) in the warehouse its warehouse code maps to (the
// goods owner's without one), once per inventoryId, article, bin, batch
// and serial, whichever message brings it first.
func (im *importer) adjust(line int, a adjustment) (reason, err error) {
	inv, e := ident(a.idField, a.inventoryID)
	if e != nil {
		return e, nil
	}
	delta, e := quantity(a.qtyField, a.numberOfItems, true)
	if e != nil {
		return e, nil
	}
	w, e := im.warehouse(a.whField, a.warehouseCode)
	if e != nil {
		return e, nil
	}
	code := string(a.article)
	item, sku, reason, err := im.article(code)
	if err != nil || reason != nil {
		return reason, err
	}
	s := im.s
	var src string
	err = s.Conn.QueryRowContext(s.Ctx, `SELECT source FROM wms_adjustments WHERE partner = ? AND inventory_id = ? AND article = ?
  AND location = ? AND batch = ? AND serial = ?`, im.p.Name, inv, code, string(a.bin), string(a.batch), string(a.serial)).Scan(&src)
	switch {
	case err == nil:
		im.note(line, fmt.Sprintf("inventoryId %d, article %s, location %s: applied before from %s: stock is unchanged", inv, code, a.bin, src))
		return nil, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, db.Classify(err)
	}
	cause := string(a.cause)
	if cause == "" && a.counted {
		cause = reasonCount
	}
	if delta != 0 {
		if reason, err := im.apply(imports.Transaction{Line: line, Code: imports.EffectAdjust, Item: item, SKU: sku, Warehouse: w,
			Quantity: delta, Reason: cause, Reference: fmt.Sprintf("inventory %d", inv)}); err != nil || reason != nil {
			return reason, err
		}
	}
	_, err = s.Conn.ExecContext(s.Ctx, `INSERT INTO wms_adjustments(partner, inventory_id, article, location, batch, serial, warehouse,
  quantity, source, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		im.p.Name, inv, code, string(a.bin), string(a.batch), string(a.serial), w, delta, a.source, db.Now())
	return nil, db.Classify(err)
}
