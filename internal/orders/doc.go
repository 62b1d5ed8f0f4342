// Package orders keeps the online-store sales orders of partners: their
// import from the store POS shape (docs/partners.md, store-pos), the stock they reserve,
// the operator's cancel and complete, and the outbound order messages
// (order events and order status) that the exports send (docs/orders.md).
package orders
