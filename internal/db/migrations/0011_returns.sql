-- Returns (issue 8): return expectations of an external OMS partner
-- (docs/returns.md), the QC result of each returned item, and the return
-- updates that send the results back, exactly once.

-- One row per return. (partner, return_code) is the partner's key
-- (returnOrderCode): a re-sent return with the same content_sha changes
-- nothing, another content updates it (revision counts the updates).
-- warehouse is ours (partners.P.warehouse), location_code the partner's.
-- status: expected (no item received yet), received (some items have a
-- QC result), closed (every item has one).
CREATE TABLE returns (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  partner            TEXT NOT NULL,
  return_code        TEXT NOT NULL,
  forward_order_code TEXT NOT NULL DEFAULT '',
  location_code      TEXT NOT NULL DEFAULT '',
  warehouse          TEXT NOT NULL REFERENCES warehouses(warehouse),
  channel            TEXT NOT NULL DEFAULT '',
  event_type         TEXT NOT NULL DEFAULT '',
  order_type         TEXT NOT NULL CHECK (order_type IN ('SELF_SHIP','CUSTOMER_RETURN','RETURN_TO_ORIGIN')),
  awb_number         TEXT NOT NULL DEFAULT '',
  transporter        TEXT NOT NULL DEFAULT '',
  return_time        TEXT NOT NULL DEFAULT '',
  status             TEXT NOT NULL DEFAULT 'expected' CHECK (status IN ('expected','received','closed')),
  content_sha        TEXT NOT NULL,
  revision           INTEGER NOT NULL DEFAULT 1,
  file_id            INTEGER REFERENCES files(id),
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL,
  UNIQUE (partner, return_code)
);
CREATE INDEX returns_status ON returns(status);

-- The returned items (returnItemCode, unique in its return). item/sku is
-- the SKU that channel_sku_code names through the partner's sku_code.
-- received is set once, with the QC result; a PASS raised on hand of
-- item/sku in the return's warehouse and this location by quantity (an
-- inventory transaction, reference = the return code). message_id is the
-- return update (order_messages, stream 'returns') that carries the result.
CREATE TABLE return_items (
  return_id        INTEGER NOT NULL REFERENCES returns(id) ON DELETE CASCADE,
  item_code        TEXT NOT NULL,
  channel_sku_code TEXT NOT NULL,
  item             TEXT NOT NULL,
  sku              TEXT NOT NULL DEFAULT '',
  quantity         INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
  reason           TEXT NOT NULL DEFAULT '',
  qc_status        TEXT NOT NULL DEFAULT '' CHECK (qc_status IN ('','PASS','FAIL')),
  qc_reason        TEXT NOT NULL DEFAULT '',
  received         INTEGER NOT NULL DEFAULT 0 CHECK (received IN (0, 1)),
  received_at      TEXT,
  location         TEXT NOT NULL DEFAULT '',
  message_id       INTEGER,
  PRIMARY KEY (return_id, item_code),
  CHECK ((received = 0) = (qc_status = ''))
) WITHOUT ROWID;

-- Return updates go through the outbound queue of the order messages (a
-- third stream, 'returns', with the same ready -> processing -> processed
-- lifecycle and export code). Its stream list is a CHECK and its order_id
-- was required, so the table is rebuilt: order_id becomes optional,
-- return_id names the return of a 'returns' message. The payload of a
-- return update is the update as it goes out; QC results recorded while
-- it is ready fold into it.
CREATE TABLE order_messages_new (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  stream       TEXT NOT NULL CHECK (stream IN ('events','status','returns')),
  partner      TEXT NOT NULL,
  order_id     INTEGER REFERENCES orders(id),
  event_type   TEXT NOT NULL DEFAULT '',
  payload      TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','processing','processed')),
  run_id       INTEGER,
  file_id      INTEGER,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  processed_at TEXT,
  return_id    INTEGER REFERENCES returns(id),
  CHECK (CASE stream WHEN 'returns' THEN return_id IS NOT NULL AND order_id IS NULL ELSE order_id IS NOT NULL AND return_id IS NULL END)
);
INSERT INTO order_messages_new(id, stream, partner, order_id, event_type, payload, status, run_id, file_id, created_at, updated_at, processed_at)
  SELECT id, stream, partner, order_id, event_type, payload, status, run_id, file_id, created_at, updated_at, processed_at FROM order_messages;
-- A messageId is never reused: the new table continues the old counter.
INSERT INTO sqlite_sequence(name, seq) SELECT 'order_messages_new', seq FROM sqlite_sequence
  WHERE name = 'order_messages' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'order_messages_new');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'order_messages'), 0))
  WHERE name = 'order_messages_new';
DROP TABLE order_messages;
ALTER TABLE order_messages_new RENAME TO order_messages;
CREATE INDEX order_messages_ready ON order_messages(stream, partner, status, id);
CREATE INDEX order_messages_file ON order_messages(file_id) WHERE file_id IS NOT NULL;
CREATE UNIQUE INDEX order_messages_status_pending ON order_messages(order_id) WHERE stream = 'status' AND status = 'ready';
CREATE INDEX order_messages_return ON order_messages(return_id, status) WHERE return_id IS NOT NULL;
