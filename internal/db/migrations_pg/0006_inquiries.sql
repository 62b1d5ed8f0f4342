-- Inquiries (issue 7): the indexes that customer searches and order
-- histories look rows up by, so that an answer on a million customers takes
-- milliseconds whatever the search (BENCHMARKS.md, "Inquiries").
--
-- A search matches the start of a field without regard to case (SQLite's
-- lower(), which folds A-Z only, as PostgreSQL's does in a database of the
-- C locale: migration 1) and lists customers in the order of the
-- field, then of the customer number: each index holds the folded field,
-- then the customer number, so a search reads its page in index order and
-- a page cursor (the last row's key) starts the next page with one seek.
-- Empty fields are left out of the indexes: no search matches them, and
-- most customers have no company name or alternate number.

CREATE INDEX customers_name ON customers(lower(last_name), lower(first_name), customer) WHERE last_name <> '';
CREATE INDEX customers_postal_code ON customers(lower(postal_code), customer) WHERE postal_code <> '';
CREATE INDEX customers_email ON customers(lower(email), customer) WHERE email <> '';
CREATE INDEX customers_company ON customers(lower(company_name), customer) WHERE company_name <> '';
-- Phones compare by their digits: "(303) 555-0101", "303.555.0101" and
-- "303-555-0101" are the same phone. internal/inquiry builds the same
-- expression; the two must stay identical for the index to be used.
CREATE INDEX customers_phone ON customers(replace(replace(replace(replace(replace(replace(replace(phone, '-', ''), ' ', ''), '(', ''), ')', ''), '.', ''), '+', ''), '/', ''), customer) WHERE phone <> '';
-- The alternate (store) number is searched like the other fields; the
-- index of schema version 1 on the raw value served no query, and this one
-- replaces it.
DROP INDEX customers_alt;
CREATE INDEX customers_alt ON customers(lower(alt_customer), customer) WHERE alt_customer <> '';

-- A customer's orders: the invoices of the customer grouped by order, from
-- the index alone. It replaces the index on the customer only, of which it
-- is an extension, so an invoice load writes no more index entries.
DROP INDEX invoices_customer;
CREATE INDEX invoices_customer ON invoices(customer, order_no, invoice_date);
