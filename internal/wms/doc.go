// Package wms reads the uploads of a warehouse system serving stores
// (partner profile wms, PARTNERS.md C): purchase order receptions and
// stock counts. Both are adapters that turn the partner's events into
// inventory transactions for the applier of the inventory-transaction
// import, de-duplicated on the partner's event id.
package wms
