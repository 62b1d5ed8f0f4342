-- Imports (issue 4): the store cross reference and the history of every
-- applied inventory transaction.

CREATE TABLE stores (
  store           TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  active          INTEGER NOT NULL CHECK (active IN (0,1)),
  address1        TEXT NOT NULL DEFAULT '',
  address2        TEXT NOT NULL DEFAULT '',
  city            TEXT NOT NULL DEFAULT '',
  state           TEXT NOT NULL DEFAULT '',
  postal_code     TEXT NOT NULL DEFAULT '',
  country         TEXT NOT NULL DEFAULT '',
  phone           TEXT NOT NULL DEFAULT '',
  email           TEXT NOT NULL DEFAULT '',
  warehouse       TEXT NOT NULL DEFAULT '',
  ship_for_pickup INTEGER NOT NULL DEFAULT 0 CHECK (ship_for_pickup IN (0,1)),
  source_code     TEXT NOT NULL DEFAULT '',
  external_id     TEXT NOT NULL DEFAULT '',
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);

-- One row per applied transaction; a transfer (T, G) has a "to" side.
CREATE TABLE inventory_txns (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  file_id       INTEGER REFERENCES files(id),
  line          INTEGER NOT NULL,
  code          TEXT NOT NULL,
  effect        TEXT NOT NULL,
  item          TEXT NOT NULL,
  sku           TEXT NOT NULL DEFAULT '',
  warehouse     TEXT NOT NULL,
  location      TEXT NOT NULL DEFAULT '',
  quantity      INTEGER NOT NULL,
  before_on_hand INTEGER NOT NULL,
  after_on_hand  INTEGER NOT NULL,
  to_item       TEXT NOT NULL DEFAULT '',
  to_sku        TEXT NOT NULL DEFAULT '',
  to_warehouse  TEXT NOT NULL DEFAULT '',
  to_location   TEXT NOT NULL DEFAULT '',
  to_before     INTEGER,
  to_after      INTEGER,
  reason        TEXT NOT NULL DEFAULT '',
  reference     TEXT NOT NULL DEFAULT '',
  txn_date      TEXT NOT NULL DEFAULT '',
  user          TEXT NOT NULL DEFAULT '',
  applied_at    TEXT NOT NULL
);
-- No index besides the id: a million-transaction file appends a million
-- rows, and a second B-tree written in key order would double the cost.

-- Uploads (and inquiries) name a SKU by its UPC or retail reference.
CREATE INDEX skus_upc ON skus(upc) WHERE upc <> '';
CREATE INDEX skus_retail_ref ON skus(retail_ref) WHERE retail_ref <> '';
