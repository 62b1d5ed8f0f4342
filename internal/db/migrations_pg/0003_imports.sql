-- Imports (issue 4): the store cross reference and the history of every
-- applied inventory transaction.

CREATE TABLE stores (
  store           text PRIMARY KEY,
  name            text NOT NULL,
  active          integer NOT NULL CHECK (active IN (0,1)),
  address1        text NOT NULL DEFAULT '',
  address2        text NOT NULL DEFAULT '',
  city            text NOT NULL DEFAULT '',
  state           text NOT NULL DEFAULT '',
  postal_code     text NOT NULL DEFAULT '',
  country         text NOT NULL DEFAULT '',
  phone           text NOT NULL DEFAULT '',
  email           text NOT NULL DEFAULT '',
  warehouse       text NOT NULL DEFAULT '',
  ship_for_pickup integer NOT NULL DEFAULT 0 CHECK (ship_for_pickup IN (0,1)),
  source_code     text NOT NULL DEFAULT '',
  external_id     text NOT NULL DEFAULT '',
  created_at      text NOT NULL,
  updated_at      text NOT NULL
);

-- One row per applied transaction; a transfer (T, G) has a "to" side.
-- "user" is quoted: USER is a reserved word in PostgreSQL, and the
-- statements that name the column must quote it too (SQLite accepts that).
CREATE TABLE inventory_txns (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_id       bigint REFERENCES files(id),
  line          bigint NOT NULL,
  code          text NOT NULL,
  effect        text NOT NULL,
  item          text NOT NULL,
  sku           text NOT NULL DEFAULT '',
  warehouse     text NOT NULL,
  location      text NOT NULL DEFAULT '',
  quantity      bigint NOT NULL,
  before_on_hand bigint NOT NULL,
  after_on_hand  bigint NOT NULL,
  to_item       text NOT NULL DEFAULT '',
  to_sku        text NOT NULL DEFAULT '',
  to_warehouse  text NOT NULL DEFAULT '',
  to_location   text NOT NULL DEFAULT '',
  to_before     bigint,
  to_after      bigint,
  reason        text NOT NULL DEFAULT '',
  reference     text NOT NULL DEFAULT '',
  txn_date      text NOT NULL DEFAULT '',
  "user"        text NOT NULL DEFAULT '',
  applied_at    text NOT NULL
);
-- No index besides the id: a million-transaction file appends a million
-- rows, and a second B-tree written in key order would double the cost.

-- Uploads (and inquiries) name a SKU by its UPC or retail reference.
CREATE INDEX skus_upc ON skus(upc) WHERE upc <> '';
CREATE INDEX skus_retail_ref ON skus(retail_ref) WHERE retail_ref <> '';
