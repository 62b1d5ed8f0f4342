package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"slices"
)

// ---- inventory transactions ----
//
// Transactions name the SKUs of `pbgen -kind items -rows M` (-item-rows)
// in the warehouses W1..W3, S01, S02 (pbgen -kind warehouses -rows 5), so
// M SKUs give 5*M item/SKU/warehouse combinations. The mix: 30% receipts
// (R), 30% signed adjustments (A), 20% POS sales (P), 10% transfers (T) to
// another warehouse, 5% counts (O), 5% negative adjustments (S). Sales and
// decreases can take stock below zero: import with
// import.allow_negative_on_hand to apply every record.

type txnGen struct {
	r    *rand.Rand
	skus []itemSKU
	n    int64
}

// itemSKU is a copy of a SKU's keys: the item generator reuses its rows.
type itemSKU struct{ item, sku string }

func newTxnGen(o options) *txnGen {
	g := &txnGen{r: newRand(o.seed, streamTransactions)}
	items := newItemGen(o.seed, o.itemRows)
	for range o.itemRows {
		s, _ := items.next()
		g.skus = append(g.skus, itemSKU{s.it.number, s.sku})
	}
	return g
}

// txn draws the next transaction: code, SKU, warehouse, quantity, target.
func (g *txnGen) txn() (code string, s itemSKU, wh string, qty int64, to string) {
	r := g.r
	s = g.skus[r.IntN(len(g.skus))]
	wh = inventoryWarehouses[r.IntN(len(inventoryWarehouses))]
	switch p := r.IntN(100); {
	case p < 30:
		code, qty = "R", 1+r.Int64N(50)
	case p < 60:
		code, qty = "A", r.Int64N(41)-20
		if qty == 0 {
			qty = 1
		}
	case p < 80:
		code, qty = "P", 1+r.Int64N(3)
	case p < 90:
		code, qty = "T", 1+r.Int64N(10)
		to = inventoryWarehouses[(slices.Index(inventoryWarehouses, wh)+1+r.IntN(len(inventoryWarehouses)-1))%len(inventoryWarehouses)]
	case p < 95:
		code, qty = "O", r.Int64N(200)
	default:
		code, qty = "S", 1+r.Int64N(5)
	}
	g.n++
	return
}

func (g *txnGen) row(rec []string, change bool) {
	code, s, wh, qty, to := g.txn()
	if change {
		qty++
	}
	rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = code, s.item, s.sku, wh, itoa(qty), to
	rec[6], rec[7] = "bench", fmt.Sprintf("TX%09d", g.n)
	rec[8], rec[9] = fmt.Sprintf("2026-%02d-%02d", 1+g.n%12, 1+g.n%28), "pbgen"
}

// generateXML writes the transactions as the OMS inventory transaction
// upload: one Message per 1,000 transactions under a Batch root.
func generateXML(w *bufio.Writer, o options) error {
	g := newTxnGen(o)
	w.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Batch>\n")
	for i := range o.rows {
		if i%1000 == 0 {
			if i > 0 {
				w.WriteString("  </Message>\n")
			}
			w.WriteString(`  <Message source="POS" target="OMS" type="CWInventoryTransaction">` + "\n")
		}
		code, s, wh, qty, to := g.txn()
		// In the OMS upload P is Oracle's physical inventory, which is
		// refused; a sale there is an S.
		if code == "P" {
			code = "S"
		}
		fmt.Fprintf(w, `    <InventoryTransaction identification_nbr="TX%09d" transaction_code="%s" transaction_quantity="%d" transaction_reason="bench" entered_by_user="pbgen">`+"\n",
			g.n, code, qty)
		fmt.Fprintf(w, `      <Transaction item_number="%s" sku_code="%s" warehouse="%s"/>`+"\n", esc(s.item), esc(s.sku), wh)
		if to != "" {
			fmt.Fprintf(w, `      <TransactionTo warehouse="%s"/>`+"\n", to)
		}
		w.WriteString("    </InventoryTransaction>\n")
	}
	if o.rows > 0 {
		w.WriteString("  </Message>\n")
	}
	w.WriteString("</Batch>\n")
	return w.Flush()
}

func esc(s string) string {
	var b []byte
	w := &byteWriter{&b}
	xml.EscapeText(w, []byte(s))
	return string(b)
}

type byteWriter struct{ b *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
