// Command pbgen writes large, realistic, deterministic master data load files
// in the CSV formats that `posbridge load <kind>` reads (docs/formats.md,
// section 2). It is a test and benchmark tool: the same flags always give
// byte-identical output, and memory does not grow with the number of rows.
//
// Usage:
//
//	pbgen -kind KIND -rows N [-seed S] [-change-pct P] [-item-rows M] [-o FILE]
//
// KIND is one of warehouses, items, vendors, customers, invoices, inventory;
// -rows defaults to 1000 and -seed to 1.
// The output (stdout unless -o is given) is a header row with every column of
// the kind, required and optional, in the documented order, then exactly N
// data rows; UTF-8, LF line endings, RFC 4180 quoting.
//
// What each kind holds:
//
//   - warehouses: W1, W2, W3, S01, S02, then W4, W5, ... so that -rows 5 gives
//     exactly the warehouses the inventory kind uses. W3 is a returns
//     centre (allocatable N); S01 and S02 are stores (store Y).
//   - items: N SKU rows. Items IT0000001, IT0000002, ... have 1 to 12 SKUs
//     (colour x size matrix, SKU codes like "RED  M" or "BLU-XL"); about 10%
//     have no SKUs (one row with an empty sku). Item-level columns (item,
//     description, item_class, vendor, status) repeat on every row of the
//     item; item_class is TOP, BOT, FTW, OUT, ACC or EQP, status A (about 6%
//     I). The last item is cut short if N ends inside it. UPC (12 digits,
//     valid check digit) and retail_ref are unique per row. Vendors are
//     V00001 .. V(max(N/200, 5)), so `pbgen -kind vendors` with at least
//     that many rows produces every vendor referenced.
//   - vendors: V00001 .. V(N), every field filled except some address2.
//   - customers: 100001 .. 100000+N, classes RT, WH and EM; about 30% have a
//     unique alt_customer S####-nnn; wholesale customers have a company name
//     and half of them no person name.
//   - invoices: N lines; invoice numbers from 1000001 with 1 to 5 consecutive
//     lines each; about 10% are credits (invoice_type C, negative quantity,
//     negative discount and tax) that refer to the order of an earlier
//     invoice and its customer. Customers are 100001 .. 100000+max(N/10, 10).
//     Dates run from 2026-01-01 to 2026-10-31 in non-decreasing order.
//     Each line names an item/SKU that `pbgen -kind items -rows M` with the
//     same seed produces (M is -item-rows, default N), with that SKU's price
//     as unit_price. Freight is on the first line of an invoice, 0.00 on the
//     others.
//   - inventory: N rows spread evenly over the M item/SKU rows that
//     `pbgen -kind items -rows M` with the same seed produces (M is
//     -item-rows, default N), in warehouses W1, W2, W3, S01, S02. When N > 5M
//     a SKU gets several locations in a warehouse, so item+sku+warehouse+
//     location stays unique. on_hand 0..500, reserved 0..on_hand, threshold
//     0 or 5..20.
//
// -change-pct P (0 to 100, up to two decimals) writes the same file except
// that floor(N*P/100) data rows, spread evenly (with P=10 every 10th row),
// have one non-key field changed, so a reload of the changed file after the
// original changes exactly that many records. Keys never change, and the
// other rows are byte-identical. The field changed per kind:
//
//   - warehouses: name gets " Annex" appended.
//   - items: price is raised by 1.00 (a SKU-level field, so only that SKU
//     changes; cost stays below price).
//   - vendors: phone (its last four digits change).
//   - customers: phone (its last four digits change).
//   - invoices: unit_price of the line is raised by 1.00 (discount and tax
//     are left as they were).
//   - inventory: on_hand is raised by 1 (so it may reach 501).
//
// Bad flags print a message on stderr and exit with status 2; an output
// error exits with status 1.
package main
