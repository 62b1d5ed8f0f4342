-- posbridge schema, version 1.
-- Conventions: timestamps are TEXT in UTC 'YYYY-MM-DDThh:mm:ssZ'; dates are
-- TEXT 'YYYY-MM-DD'; money amounts are INTEGER in ten-thousandths (12.50 is
-- stored as 125000) so sums are exact; optional text is '' rather than NULL;
-- deleted_at marks a tombstone kept until its delete trigger is processed.

CREATE TABLE schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL
);

CREATE TABLE warehouses (
  warehouse   TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  allocatable INTEGER NOT NULL DEFAULT 1 CHECK (allocatable IN (0,1)),
  store       INTEGER NOT NULL DEFAULT 0 CHECK (store IN (0,1)),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE vendors (
  vendor      TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  address1    TEXT NOT NULL DEFAULT '',
  address2    TEXT NOT NULL DEFAULT '',
  city        TEXT NOT NULL DEFAULT '',
  state       TEXT NOT NULL DEFAULT '',
  postal_code TEXT NOT NULL DEFAULT '',
  country     TEXT NOT NULL DEFAULT '',
  contact     TEXT NOT NULL DEFAULT '',
  email       TEXT NOT NULL DEFAULT '',
  phone       TEXT NOT NULL DEFAULT '',
  deleted_at  TEXT,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE items (
  item        TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  item_class  TEXT NOT NULL DEFAULT '',
  vendor      TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL DEFAULT '',
  deleted_at  TEXT,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX items_class ON items(item_class);

-- An item without SKUs has one row with sku = ''.
CREATE TABLE skus (
  item            TEXT NOT NULL REFERENCES items(item) ON DELETE CASCADE,
  sku             TEXT NOT NULL DEFAULT '',
  sku_description TEXT NOT NULL DEFAULT '',
  color           TEXT NOT NULL DEFAULT '',
  size            TEXT NOT NULL DEFAULT '',
  width           TEXT NOT NULL DEFAULT '',
  upc             TEXT NOT NULL DEFAULT '',
  retail_ref      TEXT NOT NULL DEFAULT '',
  price           INTEGER,
  cost            INTEGER,
  deleted_at      TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (item, sku)
) WITHOUT ROWID;

CREATE TABLE customers (
  customer       TEXT PRIMARY KEY,
  alt_customer   TEXT NOT NULL DEFAULT '',
  customer_class TEXT NOT NULL DEFAULT '',
  first_name     TEXT NOT NULL DEFAULT '',
  last_name      TEXT NOT NULL DEFAULT '',
  company_name   TEXT NOT NULL DEFAULT '',
  address1       TEXT NOT NULL DEFAULT '',
  address2       TEXT NOT NULL DEFAULT '',
  city           TEXT NOT NULL DEFAULT '',
  state          TEXT NOT NULL DEFAULT '',
  postal_code    TEXT NOT NULL DEFAULT '',
  country        TEXT NOT NULL DEFAULT '',
  email          TEXT NOT NULL DEFAULT '',
  phone          TEXT NOT NULL DEFAULT '',
  email_opt_in   INTEGER NOT NULL DEFAULT 0 CHECK (email_opt_in IN (0,1)),
  deleted_at     TEXT,
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
CREATE INDEX customers_class ON customers(customer_class);
CREATE INDEX customers_alt ON customers(alt_customer) WHERE alt_customer <> '';

CREATE TABLE invoices (
  invoice      TEXT PRIMARY KEY,
  order_no     TEXT NOT NULL,
  customer     TEXT NOT NULL,
  invoice_type TEXT NOT NULL DEFAULT 'I' CHECK (invoice_type IN ('I','C')),
  invoice_date TEXT NOT NULL,
  deleted_at   TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE INDEX invoices_customer ON invoices(customer);

CREATE TABLE invoice_lines (
  invoice    TEXT NOT NULL REFERENCES invoices(invoice) ON DELETE CASCADE,
  line_no    INTEGER NOT NULL,
  item       TEXT NOT NULL,
  sku        TEXT NOT NULL DEFAULT '',
  quantity   INTEGER NOT NULL,
  unit_price INTEGER NOT NULL,
  discount   INTEGER,
  tax        INTEGER,
  freight    INTEGER,
  PRIMARY KEY (invoice, line_no)
) WITHOUT ROWID;

-- Stock per item/SKU, warehouse and location; available = on_hand - reserved.
-- threshold NULL or 0 means every change of available triggers a download.
CREATE TABLE inventory (
  item        TEXT NOT NULL,
  sku         TEXT NOT NULL DEFAULT '',
  warehouse   TEXT NOT NULL REFERENCES warehouses(warehouse),
  location    TEXT NOT NULL DEFAULT '',
  on_hand     INTEGER NOT NULL DEFAULT 0,
  reserved    INTEGER NOT NULL DEFAULT 0,
  backordered INTEGER NOT NULL DEFAULT 0,
  threshold   INTEGER,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (item, sku, warehouse, location),
  FOREIGN KEY (item, sku) REFERENCES skus(item, sku) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX inventory_warehouse ON inventory(warehouse);

-- Outbound triggers: the to-do list of what partners must be told.
-- record_key is the record's number (item, vendor, invoice, customer);
-- sub_key is the SKU code for SKU and ITW triggers, '' otherwise.
-- AUTOINCREMENT: an id is never reused, so an id in a log or a note
-- always means the same trigger (likewise for runs and files).
CREATE TABLE triggers (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  file_code    TEXT NOT NULL CHECK (file_code IN ('SKU','VND','IHD','CST','ITW')),
  record_key   TEXT NOT NULL,
  sub_key      TEXT NOT NULL DEFAULT '',
  capture      TEXT NOT NULL CHECK (capture IN ('A','C','D')),
  status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','processing','processed','error')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT NOT NULL DEFAULT '',
  run_id       INTEGER,
  file_id      INTEGER,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  processed_at TEXT
);
-- At most one pending (not yet claimed) trigger per record: new changes fold into it.
CREATE UNIQUE INDEX triggers_pending ON triggers(file_code, record_key, sub_key) WHERE status IN ('ready','error');
-- No index on status or id: an export claims ready triggers through
-- triggers_pending (in key order, which groups an item's SKUs), and every
-- extra index costs a B-tree insert per trigger on a million-row load.

-- Every command that changed state.
CREATE TABLE runs (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  command    TEXT NOT NULL,
  job        TEXT NOT NULL DEFAULT '',
  status     TEXT NOT NULL CHECK (status IN ('running','ok','rejects','failed')),
  started_at TEXT NOT NULL,
  ended_at   TEXT,
  counts     TEXT NOT NULL DEFAULT '{}',
  error      TEXT NOT NULL DEFAULT '',
  host       TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0
);

-- Every file in or out.
CREATE TABLE files (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  direction  TEXT NOT NULL CHECK (direction IN ('in','out')),
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  path       TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  records    INTEGER NOT NULL DEFAULT 0,
  rejected   INTEGER NOT NULL DEFAULT 0,
  status     TEXT NOT NULL,
  mode       TEXT NOT NULL DEFAULT '',
  run_id     INTEGER REFERENCES runs(id),
  created_at TEXT NOT NULL
);
CREATE INDEX files_sha ON files(sha256);
CREATE INDEX files_kind ON files(direction, kind, id);
