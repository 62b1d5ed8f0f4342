-- Orders (issue 8): online-store sales orders imported from a partner,
-- their lines and reservations, and the outbound order messages (order
-- events and order status) that exports send, exactly once.

-- One row per order. (partner, external_key) is the partner's unique key
-- (the store POS's onlineReferenceNo): a re-sent order with the same
-- content_sha changes nothing, another content updates the row (revision
-- counts the updates). Amounts in ten-thousandths like everywhere.
-- status: open (Pending online), completed (Delivered), cancelled.
CREATE TABLE orders (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  order_code      TEXT NOT NULL UNIQUE,
  partner         TEXT NOT NULL,
  external_key    TEXT NOT NULL,
  channel         TEXT NOT NULL DEFAULT '',
  warehouse       TEXT NOT NULL REFERENCES warehouses(warehouse),
  location_code   TEXT NOT NULL DEFAULT '',
  customer        TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL CHECK (status IN ('open','completed','cancelled')),
  payment_method  TEXT NOT NULL DEFAULT '' CHECK (payment_method IN ('','COD','NCOD')),
  order_time      TEXT NOT NULL,
  customer_name   TEXT NOT NULL DEFAULT '',
  customer_mobile TEXT NOT NULL DEFAULT '',
  customer_email  TEXT NOT NULL DEFAULT '',
  ship_name       TEXT NOT NULL DEFAULT '',
  ship_address1   TEXT NOT NULL DEFAULT '',
  ship_address2   TEXT NOT NULL DEFAULT '',
  ship_city       TEXT NOT NULL DEFAULT '',
  ship_state      TEXT NOT NULL DEFAULT '',
  ship_country    TEXT NOT NULL DEFAULT '',
  ship_zip        TEXT NOT NULL DEFAULT '',
  ship_phone      TEXT NOT NULL DEFAULT '',
  ship_email      TEXT NOT NULL DEFAULT '',
  total_quantity  INTEGER NOT NULL DEFAULT 0,
  total_amount    INTEGER NOT NULL DEFAULT 0,
  total_tax       INTEGER NOT NULL DEFAULT 0,
  total_discount  INTEGER NOT NULL DEFAULT 0,
  shipping_charge INTEGER NOT NULL DEFAULT 0,
  content_sha     TEXT NOT NULL,
  revision        INTEGER NOT NULL DEFAULT 1,
  file_id         INTEGER REFERENCES files(id),
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  UNIQUE (partner, external_key)
);
CREATE INDEX orders_status ON orders(status);

-- The lines. open quantity = ordered - cancelled - fulfilled, and that is
-- what the line holds reserved in inventory(item, sku, warehouse,
-- location) of its order's warehouse and this location. short is the part
-- of the line that the warehouse's available stock did not cover when it
-- was reserved (0 when it was covered).
CREATE TABLE order_lines (
  order_id         INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  line_no          INTEGER NOT NULL,
  item             TEXT NOT NULL,
  sku              TEXT NOT NULL DEFAULT '',
  ref_code         TEXT NOT NULL DEFAULT '',
  location         TEXT NOT NULL DEFAULT '',
  ordered          INTEGER NOT NULL CHECK (ordered > 0),
  cancelled        INTEGER NOT NULL DEFAULT 0,
  fulfilled        INTEGER NOT NULL DEFAULT 0,
  short            INTEGER NOT NULL DEFAULT 0,
  sale_price       INTEGER NOT NULL DEFAULT 0,
  item_amount      INTEGER NOT NULL DEFAULT 0,
  tax_percent      INTEGER NOT NULL DEFAULT 0,
  discount_percent INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (order_id, line_no),
  CHECK (cancelled >= 0 AND fulfilled >= 0 AND cancelled + fulfilled <= ordered)
) WITHOUT ROWID;

-- Outbound order messages, one table for both streams rather than new file
-- codes in triggers (a CHECK list that would need a table rebuild), and
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
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  stream       TEXT NOT NULL CHECK (stream IN ('events','status')),
  partner      TEXT NOT NULL,
  order_id     INTEGER NOT NULL REFERENCES orders(id),
  event_type   TEXT NOT NULL DEFAULT '',
  payload      TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','processing','processed')),
  run_id       INTEGER,
  file_id      INTEGER,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  processed_at TEXT
);
CREATE INDEX order_messages_ready ON order_messages(stream, partner, status, id);
CREATE INDEX order_messages_file ON order_messages(file_id) WHERE file_id IS NOT NULL;
CREATE UNIQUE INDEX order_messages_status_pending ON order_messages(order_id) WHERE stream = 'status' AND status = 'ready';
