// Package stores keeps the store cross reference: the retail stores a POS
// system knows by number, with their address, the warehouse that holds
// their stock and whether they ship orders for pickup. Records come from
// the store upload (CSV, or XML of Stores/Store elements) or are kept by
// hand; both are validated by one function whose messages use the wording
// of the OMS store upload.
package stores
