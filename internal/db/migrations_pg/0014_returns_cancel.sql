-- Return cancellations (issue 12): Increff's return events
-- RETURN_ORDER_CANCEL (the whole return) and RETURN_ORDER_PARTIAL_CANCEL
-- (some items) cancel return items that were not received. A cancelled
-- item can no longer be received: it never raises stock.
--
-- A return is cancelled when all its items are (returns.cancelled_at);
-- its status column keeps the progress of its live items, and posbridge
-- shows the status "cancelled" for a cancelled return. Columns are added
-- rather than the status CHECK widened: on SQLite that would mean rebuilding
-- returns, which return_items references with ON DELETE CASCADE (a DROP
-- inside the migration's transaction would delete every item).
ALTER TABLE returns ADD COLUMN cancelled_at text;
-- An item is received or cancelled, never both.
ALTER TABLE return_items ADD COLUMN cancelled_at text CHECK (cancelled_at IS NULL OR received = 0);
CREATE INDEX returns_cancelled ON returns(cancelled_at) WHERE cancelled_at IS NOT NULL;
