-- posbridge schema, version 1, for PostgreSQL: the same tables, columns,
-- keys and indexes as migrations/0001_init.sql (SQLite), under the same
-- number; schema_parity_test.go holds the two schemas equal. The
-- conventions are SQLite's: timestamps are text in UTC
-- 'YYYY-MM-DDThh:mm:ssZ'; dates are text 'YYYY-MM-DD'; money amounts are
-- integers in ten-thousandths (12.50 is stored as 125000) so sums are
-- exact; optional text is '' rather than NULL; deleted_at marks a
-- tombstone kept until its delete trigger is processed.
--
-- How the SQLite text is carried over, here and in every later migration:
-- - INTEGER is bigint: SQLite integers are 64-bit, and amounts in
--   ten-thousandths, sequences and ids outgrow 2^31; arithmetic in SQL
--   (quantity * price) then cannot overflow where SQLite's would not. Only
--   0/1 flags (CHECK IN (0,1)) stay integer.
-- - INTEGER PRIMARY KEY AUTOINCREMENT is bigint GENERATED ALWAYS AS
--   IDENTITY: the code never gives one of these ids, and an identity
--   sequence never hands out a number twice, as AUTOINCREMENT promises.
--   Whatever copies existing rows in (issue 17's db copy) must give their
--   ids with COPY or INSERT ... OVERRIDING SYSTEM VALUE (a plain INSERT of
--   an id is refused), then move each sequence past the highest id.
-- - WITHOUT ROWID is left out: PostgreSQL tables are heaps either way.
-- - No column says COLLATE "C": the database must have the C locale (a
--   server initialised with --locale=C, as the test harness
--   internal/db/pgtest starts, or CREATE DATABASE ... LOCALE 'C' TEMPLATE
--   template0; schema_parity_test.go checks it), so text compares and sorts
--   bytewise, as under SQLite's BINARY collation, and lower() folds A-Z
--   only, as SQLite's does, so the search indexes of migration 6 find the
--   same rows. A database of another locale would sort and fold otherwise.

-- version is a plain key, not an identity as SQLite's INTEGER PRIMARY KEY
-- would suggest: the migration runner gives every version it records.
CREATE TABLE schema_migrations (
  version    bigint PRIMARY KEY,
  name       text NOT NULL,
  applied_at text NOT NULL
);

CREATE TABLE warehouses (
  warehouse   text PRIMARY KEY,
  name        text NOT NULL,
  allocatable integer NOT NULL DEFAULT 1 CHECK (allocatable IN (0,1)),
  store       integer NOT NULL DEFAULT 0 CHECK (store IN (0,1)),
  created_at  text NOT NULL,
  updated_at  text NOT NULL
);

CREATE TABLE vendors (
  vendor      text PRIMARY KEY,
  name        text NOT NULL,
  address1    text NOT NULL DEFAULT '',
  address2    text NOT NULL DEFAULT '',
  city        text NOT NULL DEFAULT '',
  state       text NOT NULL DEFAULT '',
  postal_code text NOT NULL DEFAULT '',
  country     text NOT NULL DEFAULT '',
  contact     text NOT NULL DEFAULT '',
  email       text NOT NULL DEFAULT '',
  phone       text NOT NULL DEFAULT '',
  deleted_at  text,
  created_at  text NOT NULL,
  updated_at  text NOT NULL
);

CREATE TABLE items (
  item        text PRIMARY KEY,
  description text NOT NULL,
  item_class  text NOT NULL DEFAULT '',
  vendor      text NOT NULL DEFAULT '',
  status      text NOT NULL DEFAULT '',
  deleted_at  text,
  created_at  text NOT NULL,
  updated_at  text NOT NULL
);
CREATE INDEX items_class ON items(item_class);

-- An item without SKUs has one row with sku = ''.
CREATE TABLE skus (
  item            text NOT NULL REFERENCES items(item) ON DELETE CASCADE,
  sku             text NOT NULL DEFAULT '',
  sku_description text NOT NULL DEFAULT '',
  color           text NOT NULL DEFAULT '',
  size            text NOT NULL DEFAULT '',
  width           text NOT NULL DEFAULT '',
  upc             text NOT NULL DEFAULT '',
  retail_ref      text NOT NULL DEFAULT '',
  price           bigint,
  cost            bigint,
  deleted_at      text,
  created_at      text NOT NULL,
  updated_at      text NOT NULL,
  PRIMARY KEY (item, sku)
);

CREATE TABLE customers (
  customer       text PRIMARY KEY,
  alt_customer   text NOT NULL DEFAULT '',
  customer_class text NOT NULL DEFAULT '',
  first_name     text NOT NULL DEFAULT '',
  last_name      text NOT NULL DEFAULT '',
  company_name   text NOT NULL DEFAULT '',
  address1       text NOT NULL DEFAULT '',
  address2       text NOT NULL DEFAULT '',
  city           text NOT NULL DEFAULT '',
  state          text NOT NULL DEFAULT '',
  postal_code    text NOT NULL DEFAULT '',
  country        text NOT NULL DEFAULT '',
  email          text NOT NULL DEFAULT '',
  phone          text NOT NULL DEFAULT '',
  email_opt_in   integer NOT NULL DEFAULT 0 CHECK (email_opt_in IN (0,1)),
  deleted_at     text,
  created_at     text NOT NULL,
  updated_at     text NOT NULL
);
CREATE INDEX customers_class ON customers(customer_class);
CREATE INDEX customers_alt ON customers(alt_customer) WHERE alt_customer <> '';

CREATE TABLE invoices (
  invoice      text PRIMARY KEY,
  order_no     text NOT NULL,
  customer     text NOT NULL,
  invoice_type text NOT NULL DEFAULT 'I' CHECK (invoice_type IN ('I','C')),
  invoice_date text NOT NULL,
  deleted_at   text,
  created_at   text NOT NULL,
  updated_at   text NOT NULL
);
CREATE INDEX invoices_customer ON invoices(customer);

CREATE TABLE invoice_lines (
  invoice    text NOT NULL REFERENCES invoices(invoice) ON DELETE CASCADE,
  line_no    bigint NOT NULL,
  item       text NOT NULL,
  sku        text NOT NULL DEFAULT '',
  quantity   bigint NOT NULL,
  unit_price bigint NOT NULL,
  discount   bigint,
  tax        bigint,
  freight    bigint,
  PRIMARY KEY (invoice, line_no)
);

-- Stock per item/SKU, warehouse and location; available = on_hand - reserved.
-- threshold NULL or 0 means every change of available triggers a download.
CREATE TABLE inventory (
  item        text NOT NULL,
  sku         text NOT NULL DEFAULT '',
  warehouse   text NOT NULL REFERENCES warehouses(warehouse),
  location    text NOT NULL DEFAULT '',
  on_hand     bigint NOT NULL DEFAULT 0,
  reserved    bigint NOT NULL DEFAULT 0,
  backordered bigint NOT NULL DEFAULT 0,
  threshold   bigint,
  updated_at  text NOT NULL,
  PRIMARY KEY (item, sku, warehouse, location),
  FOREIGN KEY (item, sku) REFERENCES skus(item, sku) ON DELETE CASCADE
);
CREATE INDEX inventory_warehouse ON inventory(warehouse);

-- Outbound triggers: the to-do list of what partners must be told.
-- record_key is the record's number (item, vendor, invoice, customer);
-- sub_key is the SKU code for SKU and ITW triggers, '' otherwise.
-- An identity id is never reused, so an id in a log or a note always
-- means the same trigger (likewise for runs and files).
CREATE TABLE triggers (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_code    text NOT NULL CHECK (file_code IN ('SKU','VND','IHD','CST','ITW')),
  record_key   text NOT NULL,
  sub_key      text NOT NULL DEFAULT '',
  capture      text NOT NULL CHECK (capture IN ('A','C','D')),
  status       text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','processing','processed','error')),
  attempts     bigint NOT NULL DEFAULT 0,
  last_error   text NOT NULL DEFAULT '',
  run_id       bigint,
  file_id      bigint,
  created_at   text NOT NULL,
  updated_at   text NOT NULL,
  processed_at text
);
-- At most one pending (not yet claimed) trigger per record: new changes fold into it.
CREATE UNIQUE INDEX triggers_pending ON triggers(file_code, record_key, sub_key) WHERE status IN ('ready','error');
-- No index on status or id besides the key: an export claims ready
-- triggers through triggers_pending (in key order, which groups an item's
-- SKUs), and every extra index costs a B-tree insert per trigger on a
-- million-row load.

-- Every command that changed state.
CREATE TABLE runs (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  command    text NOT NULL,
  job        text NOT NULL DEFAULT '',
  status     text NOT NULL CHECK (status IN ('running','ok','rejects','failed')),
  started_at text NOT NULL,
  ended_at   text,
  counts     text NOT NULL DEFAULT '{}',
  error      text NOT NULL DEFAULT '',
  host       text NOT NULL DEFAULT '',
  pid        bigint NOT NULL DEFAULT 0
);

-- Every file in or out.
CREATE TABLE files (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  direction  text NOT NULL CHECK (direction IN ('in','out')),
  kind       text NOT NULL,
  name       text NOT NULL,
  path       text NOT NULL,
  sha256     text NOT NULL,
  size       bigint NOT NULL,
  records    bigint NOT NULL DEFAULT 0,
  rejected   bigint NOT NULL DEFAULT 0,
  status     text NOT NULL,
  mode       text NOT NULL DEFAULT '',
  run_id     bigint REFERENCES runs(id),
  created_at text NOT NULL
);
CREATE INDEX files_sha ON files(sha256);
CREATE INDEX files_kind ON files(direction, kind, id);
