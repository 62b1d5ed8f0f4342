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
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  partner            text NOT NULL,
  return_code        text NOT NULL,
  forward_order_code text NOT NULL DEFAULT '',
  location_code      text NOT NULL DEFAULT '',
  warehouse          text NOT NULL REFERENCES warehouses(warehouse),
  channel            text NOT NULL DEFAULT '',
  event_type         text NOT NULL DEFAULT '',
  order_type         text NOT NULL CHECK (order_type IN ('SELF_SHIP','CUSTOMER_RETURN','RETURN_TO_ORIGIN')),
  awb_number         text NOT NULL DEFAULT '',
  transporter        text NOT NULL DEFAULT '',
  return_time        text NOT NULL DEFAULT '',
  status             text NOT NULL DEFAULT 'expected' CHECK (status IN ('expected','received','closed')),
  content_sha        text NOT NULL,
  revision           bigint NOT NULL DEFAULT 1,
  file_id            bigint REFERENCES files(id),
  created_at         text NOT NULL,
  updated_at         text NOT NULL,
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
  return_id        bigint NOT NULL REFERENCES returns(id) ON DELETE CASCADE,
  item_code        text NOT NULL,
  channel_sku_code text NOT NULL,
  item             text NOT NULL,
  sku              text NOT NULL DEFAULT '',
  quantity         bigint NOT NULL DEFAULT 1 CHECK (quantity > 0),
  reason           text NOT NULL DEFAULT '',
  qc_status        text NOT NULL DEFAULT '' CHECK (qc_status IN ('','PASS','FAIL')),
  qc_reason        text NOT NULL DEFAULT '',
  received         integer NOT NULL DEFAULT 0 CHECK (received IN (0, 1)),
  received_at      text,
  location         text NOT NULL DEFAULT '',
  message_id       bigint,
  PRIMARY KEY (return_id, item_code),
  CHECK ((received = 0) = (qc_status = ''))
);

-- Return updates go through the outbound queue of the order messages (a
-- third stream, 'returns', with the same ready -> processing -> processed
-- lifecycle and export code). Its stream list is a CHECK and its order_id
-- was required: order_id becomes optional, return_id names the return of a
-- 'returns' message. The payload of a return update is the update as it
-- goes out; QC results recorded while it is ready fold into it. SQLite
-- rebuilds the table for this; PostgreSQL alters it in place, which keeps
-- its rows, ids, identity sequence (a messageId is never reused) and
-- indexes. The stream CHECK has the name PostgreSQL gave it in migration
-- 9. return_id comes last, as in the rebuilt SQLite table.
ALTER TABLE order_messages ALTER COLUMN order_id DROP NOT NULL;
ALTER TABLE order_messages DROP CONSTRAINT order_messages_stream_check;
ALTER TABLE order_messages ADD CONSTRAINT order_messages_stream_check CHECK (stream IN ('events','status','returns'));
ALTER TABLE order_messages ADD COLUMN return_id bigint REFERENCES returns(id);
ALTER TABLE order_messages ADD CHECK (CASE stream WHEN 'returns' THEN return_id IS NOT NULL AND order_id IS NULL ELSE order_id IS NOT NULL AND return_id IS NULL END);
CREATE INDEX order_messages_return ON order_messages(return_id, status) WHERE return_id IS NOT NULL;
