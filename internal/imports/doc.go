// Package imports applies uploads from stores and warehouses: inventory
// transactions (CSV, or the OMS inventory transaction upload XML) and the
// store cross reference. Each file is validated record by record; the good
// records and the file's ledger entry commit in one transaction, the bad
// ones go to a reject file, and the file's sha256 keeps the same content
// from being applied twice.
package imports
