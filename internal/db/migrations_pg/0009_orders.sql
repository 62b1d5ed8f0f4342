-- Orders (issue 8): online-store sales orders imported from a partner,
-- their lines and reservations, and the outbound order messages (order
-- events and order status) that exports send, exactly once.

-- One row per order. (partner, external_key) is the partner's unique key
-- (the store POS's onlineReferenceNo): a re-sent order with the same
-- content_sha changes nothing, another content updates the row (revision
-- counts the updates). Amounts in ten-thousandths like everywhere.
-- status: open (Pending online), completed (Delivered), cancelled.
CREATE TABLE orders (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_code      text NOT NULL UNIQUE,
  partner         text NOT NULL,
  external_key    text NOT NULL,
  channel         text NOT NULL DEFAULT '',
  warehouse       text NOT NULL REFERENCES warehouses(warehouse),
  location_code   text NOT NULL DEFAULT '',
  customer        text NOT NULL DEFAULT '',
  status          text NOT NULL CHECK (status IN ('open','completed','cancelled')),
  payment_method  text NOT NULL DEFAULT '' CHECK (payment_method IN ('','COD','NCOD')),
  order_time      text NOT NULL,
  customer_name   text NOT NULL DEFAULT '',
  customer_mobile text NOT NULL DEFAULT '',
  customer_email  text NOT NULL DEFAULT '',
  ship_name       text NOT NULL DEFAULT '',
  ship_address1   text NOT NULL DEFAULT '',
  ship_address2   text NOT NULL DEFAULT '',
  ship_city       text NOT NULL DEFAULT '',
  ship_state      text NOT NULL DEFAULT '',
  ship_country    text NOT NULL DEFAULT '',
  ship_zip        text NOT NULL DEFAULT '',
  ship_phone      text NOT NULL DEFAULT '',
  ship_email      text NOT NULL DEFAULT '',
  total_quantity  bigint NOT NULL DEFAULT 0,
  total_amount    bigint NOT NULL DEFAULT 0,
  total_tax       bigint NOT NULL DEFAULT 0,
  total_discount  bigint NOT NULL DEFAULT 0,
  shipping_charge bigint NOT NULL DEFAULT 0,
  content_sha     text NOT NULL,
  revision        bigint NOT NULL DEFAULT 1,
  file_id         bigint REFERENCES files(id),
  created_at      text NOT NULL,
  updated_at      text NOT NULL,
  UNIQUE (partner, external_key)
);
CREATE INDEX orders_status ON orders(status);

-- The lines. open quantity = ordered - cancelled - fulfilled, and that is
-- what the line holds reserved in inventory(item, sku, warehouse,
-- location) of its order's warehouse and this location. short is the part
-- of the line that the warehouse's available stock did not cover when it
-- was reserved (0 when it was covered).
CREATE TABLE order_lines (
  order_id         bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  line_no          bigint NOT NULL,
  item             text NOT NULL,
  sku              text NOT NULL DEFAULT '',
  ref_code         text NOT NULL DEFAULT '',
  location         text NOT NULL DEFAULT '',
  ordered          bigint NOT NULL CHECK (ordered > 0),
  cancelled        bigint NOT NULL DEFAULT 0,
  fulfilled        bigint NOT NULL DEFAULT 0,
  short            bigint NOT NULL DEFAULT 0,
  sale_price       bigint NOT NULL DEFAULT 0,
  item_amount      bigint NOT NULL DEFAULT 0,
  tax_percent      bigint NOT NULL DEFAULT 0,
  discount_percent bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (order_id, line_no),
  CHECK (cancelled >= 0 AND fulfilled >= 0 AND cancelled + fulfilled <= ordered)
);

-- Outbound order messages, one table for both streams rather than new file
-- codes in triggers (a CHECK list that would need a table rebuild on SQLite), and
-- because events do not fold: every event is its own message, and its id
-- is the messageId the receiver de-duplicates on, the same however often
-- a dead export is retried.
--   stream 'events': payload is the event (JSON) as it was when it
--     happened; the export adds messageId = id.
--   stream 'status': at most one ready row per order (a new change folds
--     into it); the export writes the order's status at that moment.
-- status moves ready -> processing (claimed into file_id) -> processed,
-- and back to ready when the file is abandoned.
CREATE TABLE order_messages (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream       text NOT NULL CHECK (stream IN ('events','status')),
  partner      text NOT NULL,
  order_id     bigint NOT NULL REFERENCES orders(id),
  event_type   text NOT NULL DEFAULT '',
  payload      text NOT NULL DEFAULT '',
  status       text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','processing','processed')),
  run_id       bigint,
  file_id      bigint,
  created_at   text NOT NULL,
  updated_at   text NOT NULL,
  processed_at text
);
CREATE INDEX order_messages_ready ON order_messages(stream, partner, status, id);
CREATE INDEX order_messages_file ON order_messages(file_id) WHERE file_id IS NOT NULL;
CREATE UNIQUE INDEX order_messages_status_pending ON order_messages(order_id) WHERE stream = 'status' AND status = 'ready';
