-- Partner profiles (issue 8): the SKU cross reference of each partner, and
-- a change sequence on inventory rows for the partner inventory exports.
--
-- inventory.change_seq is stamped by every transaction that writes a stock
-- row (the inventory load, the inventory-transaction import, reservations
-- of orders) with the next number of the same counter the loads use for
-- the engagement feed (sequences.kind = 'catalog_changes'), so one counter
-- orders all changes: catalog.NextChangeSeq, catalog.StampInventorySQL.
-- No index, as for the feed: an export reads the partner's warehouse once
-- per run.
ALTER TABLE inventory ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- sku_xref maps our item/SKU to a partner's own code (its channelSkuCode
-- or itemReferenceCode): the listing of an external system, loaded with
-- posbridge xref load. One code per SKU and partner, and a code names one
-- SKU of a partner. change_seq is stamped when a mapping is added or
-- changed, so a SKU that an export skipped for want of a code goes out in
-- the next delta once it has one. partner is the config's partner name.
CREATE TABLE sku_xref (
  partner        text NOT NULL,
  item           text NOT NULL,
  sku            text NOT NULL DEFAULT '',
  external_code  text NOT NULL,
  serial         text NOT NULL DEFAULT '',
  barcode        text NOT NULL DEFAULT '',
  tolerance_days bigint,
  change_seq     bigint NOT NULL DEFAULT 0,
  created_at     text NOT NULL,
  updated_at     text NOT NULL,
  PRIMARY KEY (partner, item, sku),
  UNIQUE (partner, external_code),
  FOREIGN KEY (item, sku) REFERENCES skus(item, sku) ON DELETE CASCADE
);
