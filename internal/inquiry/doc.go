// Package inquiry answers the questions a store asks the OMS from the
// state: the stock of an item or SKU by warehouse (Inventory), who a
// customer is (SearchCustomers, with keyset paging), and what a customer
// has ordered (History, from invoices). Request answers every inquiry
// request file of a folder with a response file (requests.go).
//
// Every lookup goes through an index, so that an answer on a million
// customers and a million SKUs takes milliseconds (BENCHMARKS.md).
package inquiry
