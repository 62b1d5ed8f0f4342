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
  partner           text NOT NULL,
  line_id           bigint NOT NULL,
  purchase_order_id bigint,
  purchase_order    text NOT NULL DEFAULT '',
  row_number        text NOT NULL DEFAULT '',
  article           text NOT NULL,
  item              text NOT NULL,
  sku               text NOT NULL DEFAULT '',
  warehouse         text NOT NULL,
  advised           bigint,
  received          bigint NOT NULL CHECK (received >= 0),
  source            text NOT NULL,
  updated_at        text NOT NULL,
  PRIMARY KEY (partner, line_id)
);

-- The article items (Ongoing's originalArticleItemId) a line's received
-- count includes: from the webhook that received one, or listed by a GET
-- (purchaseOrderLines[].articleItems[]). A webhook that arrives after a
-- GET which already counted its article item adds nothing.
CREATE TABLE wms_po_items (
  partner         text NOT NULL,
  article_item_id bigint NOT NULL,
  line_id         bigint NOT NULL,
  PRIMARY KEY (partner, article_item_id)
);

-- Applied stock adjustments, from the inventory transaction webhook or the
-- inventoryAdjustments GET, by Ongoing's inventoryId with the article, the
-- bin, the batch and the serial (one inventory may adjust many articles):
-- the same adjustment from the other message, or again, adds nothing.
CREATE TABLE wms_adjustments (
  partner      text NOT NULL,
  inventory_id bigint NOT NULL,
  article      text NOT NULL,
  location     text NOT NULL DEFAULT '',
  batch        text NOT NULL DEFAULT '',
  serial       text NOT NULL DEFAULT '',
  warehouse    text NOT NULL,
  quantity     bigint NOT NULL,
  source       text NOT NULL,
  applied_at   text NOT NULL,
  PRIMARY KEY (partner, inventory_id, article, location, batch, serial)
);
