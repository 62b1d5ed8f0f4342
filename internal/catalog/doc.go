// Package catalog loads master data (warehouses, items and SKUs, vendors,
// customers, invoices, inventory) from upstream extracts into the state,
// and captures every real change as an outbound trigger.
//
// A load streams the file into a temporary staging table, validating each
// row; checks that need the whole file or the state (duplicate keys,
// item-level fields that disagree, unknown references) run in SQL over the
// staging table; then one write transaction merges the good rows with
// set-based statements, folds triggers and records the file. Memory does not
// grow with the size of the file.
//
// A first load of items from CSV (no items or SKUs yet) skips the staging
// table when it can: its write transaction takes the rows as they are read,
// checking an item's rows against its first one in Go, and falls back to
// the staged load, from a rolled-back start, at the first row that needs it
// (loader.loadDirect).
package catalog
