-- Stock figures that could drift (issue 13).
--
-- Codes a partner's cross reference no longer has: xref delete, a full
-- xref load that drops a mapping, or a load that gives a SKU a new code.
-- The partner still sells the last figure it was sent under the old code,
-- so the next partner inventory export sends a zero under it: a row goes
-- out in the export whose watermark is below its change_seq, stamped from
-- the same counter as every other change (catalog.NextChangeSeq). A code
-- mapped again loses its row: the mapping sends its figure.
CREATE TABLE xref_dropped (
  partner       text NOT NULL,
  external_code text NOT NULL,
  item          text NOT NULL,
  sku           text NOT NULL DEFAULT '',
  change_seq    bigint NOT NULL,
  dropped_at    text NOT NULL,
  PRIMARY KEY (partner, external_code)
);

-- An order line's short is computed when it is read, from the stock as it
-- is then and the open lines of its SKU (orders.lineShort): the open lines
-- of a SKU are found by this index.
CREATE INDEX order_lines_open ON order_lines(item, sku, order_id, line_no) WHERE ordered > cancelled + fulfilled;
