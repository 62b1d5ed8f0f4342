-- WMS partners (issue 8, docs/partners.md section 5): the partner events
-- that were applied, for de-duplication on the partner's event id
-- (webhookEventId), and the purchase order lines received so far, because
-- a line's receivedNumberOfItems is cumulative: a later event applies only
-- the increase.

-- One row per applied event of a partner; kind is the upload that applied
-- it (receipts, counts). A re-sent event finds its row and is a no-op.
CREATE TABLE partner_events (
  partner    text NOT NULL,
  event_id   text NOT NULL,
  kind       text NOT NULL,
  file_id    bigint REFERENCES files(id),
  applied_at text NOT NULL,
  PRIMARY KEY (partner, event_id)
);

-- One row per purchase order line of a partner: the article it receives
-- (our item/SKU), the quantity advised and the quantity received and
-- applied so far, and the event that last raised it.
CREATE TABLE wms_receipt_lines (
  partner        text NOT NULL,
  purchase_order text NOT NULL,
  row_number     bigint NOT NULL,
  article        text NOT NULL,
  item           text NOT NULL,
  sku            text NOT NULL DEFAULT '',
  advised        bigint,
  received       bigint NOT NULL CHECK (received >= 0),
  event_id       text NOT NULL,
  updated_at     text NOT NULL,
  PRIMARY KEY (partner, purchase_order, row_number)
);
