// Package wms reads the messages of a warehouse system serving stores
// (partner profile wms: Ongoing WMS, docs/partners.md section 5) as the partner sends
// them: the inbound transaction webhook and the purchase order GET
// (receipts), the inventory transaction webhook and the inventory
// adjustments GET (counts). They are adapters that turn the messages into
// inventory transactions for the applier of the inventory-transaction
// import, each applied once: webhooks by their event id, purchase order
// lines by their cumulative received count, adjustments by their
// inventory id.
package wms
