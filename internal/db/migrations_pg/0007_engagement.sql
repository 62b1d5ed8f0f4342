-- The Customer Engagement feed (issue 7): a change sequence on the records
-- the feed sends, and the feed's watermarks.
--
-- Every load transaction that writes customers, items/SKUs or invoices
-- takes the next number of the counter sequences.kind = 'catalog_changes'
-- (so the row is created by the first such load) and stamps it on each row
-- it adds, changes or deletes: change_seq. SQLite runs one writer at a time
-- and the counter is taken inside the transaction, so a transaction that
-- commits later always has a larger number: "change_seq > watermark" finds
-- every change a feed has not sent, which updated_at (one-second
-- resolution, stamped before the commit) cannot promise. On PostgreSQL,
-- with concurrent writers, that holds only while the counter row stays
-- locked from its increment to the commit (an UPDATE of the row, never a
-- read of it then a write): issue 17 asks for a test of it.
--
-- added_seq is the number of the transaction that added the row (or
-- brought a deleted one back): a feed sends the row with action A when it
-- was added after the feed's watermark, C otherwise.
--
-- An invoice's change_seq is the number of the transaction that added it
-- (or brought it back after a delete); later changes keep it, because the
-- feed sends an invoice once.
--
-- No index on change_seq: a feed reads the whole table once per run (one
-- sequential scan), while an index would cost every load a B-tree insert
-- per changed row (docs/exports.md, "Customer Engagement feed").
ALTER TABLE customers ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN added_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE skus ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE skus ADD COLUMN added_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- The change sequence an engagement file covers: when the file becomes
-- complete, the watermark of its kind moves up to it, in the same
-- transaction. NULL for every other file, and for a resend (--since).
ALTER TABLE files ADD COLUMN change_to bigint;

-- One row per feed file kind (engagement_customers, engagement_items,
-- engagement_sales, engagement_returns), created before the kind's first
-- feed reads anything. change_seq is the largest change sequence the kind
-- has sent (NULL until its first feed is complete); file_id the file that
-- moved it. While a row exists, deleted customers and SKUs the feed has
-- not sent yet are kept as tombstones (trigger.PurgeTombstones).
CREATE TABLE feed_watermarks (
  kind       text PRIMARY KEY,
  change_seq bigint,
  file_id    bigint REFERENCES files(id),
  updated_at text NOT NULL
);
