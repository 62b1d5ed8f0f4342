-- WMS partners (issue 8, docs/partners.md section 5): the partner events
-- that were applied, for de-duplication on the partner's event id
-- (webhookEventId), and the purchase order lines received so far, because
-- a line's receivedNumberOfItems is cumulative: a later event applies only
-- the increase.

-- One row per applied event of a partner; kind is the upload that applied
-- it (receipts, counts). A re-sent event finds its row and is a no-op.
CREATE TABLE partner_events (
  partner    TEXT NOT NULL,
  event_id   TEXT NOT NULL,
  kind       TEXT NOT NULL,
  file_id    INTEGER REFERENCES files(id),
  applied_at TEXT NOT NULL,
  PRIMARY KEY (partner, event_id)
) WITHOUT ROWID;

-- One row per purchase order line of a partner: the article it receives
-- (our item/SKU), the quantity advised and the quantity received and
-- applied so far, and the event that last raised it.
CREATE TABLE wms_receipt_lines (
  partner        TEXT NOT NULL,
  purchase_order TEXT NOT NULL,
  row_number     INTEGER NOT NULL,
  article        TEXT NOT NULL,
  item           TEXT NOT NULL,
  sku            TEXT NOT NULL DEFAULT '',
  advised        INTEGER,
  received       INTEGER NOT NULL CHECK (received >= 0),
  event_id       TEXT NOT NULL,
  updated_at     TEXT NOT NULL,
  PRIMARY KEY (partner, purchase_order, row_number)
) WITHOUT ROWID;
