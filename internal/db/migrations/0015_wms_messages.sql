-- Ongoing WMS messages (issue 12, docs/partners.md section 5). A purchase
-- order line is known by Ongoing's line id (purchaseOrderLine.id in the
-- inbound transaction webhook, purchaseOrderLines[].id in the purchase
-- order GET); its receivedNumberOfItems in the GET is cumulative, the
-- webhook carries one transaction. received is what posbridge applied for
-- the line so far: a GET applies only what is beyond it, a webhook adds its
-- own amount. The flattened receptions of issue 8 (purchase order number
-- and row) are no longer read, so their table goes.
DROP TABLE wms_receipt_lines;

CREATE TABLE wms_po_lines (
  partner           TEXT NOT NULL,
  line_id           INTEGER NOT NULL,
  purchase_order_id INTEGER,
  purchase_order    TEXT NOT NULL DEFAULT '',
  row_number        TEXT NOT NULL DEFAULT '',
  article           TEXT NOT NULL,
  item              TEXT NOT NULL,
  sku               TEXT NOT NULL DEFAULT '',
  warehouse         TEXT NOT NULL,
  advised           INTEGER,
  received          INTEGER NOT NULL CHECK (received >= 0),
  source            TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  PRIMARY KEY (partner, line_id)
) WITHOUT ROWID;

-- The article items (Ongoing's originalArticleItemId) a line's received
-- count includes: from the webhook that received one, or listed by a GET
-- (purchaseOrderLines[].articleItems[]). A webhook that arrives after a
-- GET which already counted its article item adds nothing.
CREATE TABLE wms_po_items (
  partner         TEXT NOT NULL,
  article_item_id INTEGER NOT NULL,
  line_id         INTEGER NOT NULL,
  PRIMARY KEY (partner, article_item_id)
) WITHOUT ROWID;

-- Applied stock adjustments, from the inventory transaction webhook or the
-- inventoryAdjustments GET, by Ongoing's inventoryId with the article, the
-- bin, the batch and the serial (one inventory may adjust many articles):
-- the same adjustment from the other message, or again, adds nothing.
CREATE TABLE wms_adjustments (
  partner      TEXT NOT NULL,
  inventory_id INTEGER NOT NULL,
  article      TEXT NOT NULL,
  location     TEXT NOT NULL DEFAULT '',
  batch        TEXT NOT NULL DEFAULT '',
  serial       TEXT NOT NULL DEFAULT '',
  warehouse    TEXT NOT NULL,
  quantity     INTEGER NOT NULL,
  source       TEXT NOT NULL,
  applied_at   TEXT NOT NULL,
  PRIMARY KEY (partner, inventory_id, article, location, batch, serial)
) WITHOUT ROWID;
