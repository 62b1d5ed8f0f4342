package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exactly-once test of issue 4 for inventory transaction imports:
// posbridge import inventory-transactions DIR killed with SIGKILL at random
// moments while new files keep arriving in the folder, then run normally.
// Afterwards every good record of every file must have been applied
// exactly once: the on hand of every inventory row equals what an
// independent model (txnModel, written from the rules of docs/imports.md,
// not from the code) computes from the input files in name
// order; the history holds exactly the model's good records, file and line;
// every file is in the ledger once; every input file is in processed/ or
// error/; no temporary file is left.

// txnStock is one inventory row's key.
type txnStock struct{ item, sku, wh, loc string }

// txnSKU is an item and SKU.
type txnSKU struct{ item, sku string }

// txnDemo is the demo data as the test reads it from testdata/demo.
type txnDemo struct {
	skus    map[txnSKU]bool
	upc     map[string]txnSKU
	ref     map[string]txnSKU
	upcOf   map[txnSKU]string
	refOf   map[txnSKU]string
	whs     map[string]bool
	whList  []string
	stock   map[txnStock]int64
	rows    []txnStock // the inventory rows, in file order
	skuList []txnSKU
}

func readCSVFile(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func readTxnDemo(t *testing.T) *txnDemo {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(root, "testdata", "demo")
	d := &txnDemo{skus: map[txnSKU]bool{}, upc: map[string]txnSKU{}, ref: map[string]txnSKU{},
		upcOf: map[txnSKU]string{}, refOf: map[txnSKU]string{}, whs: map[string]bool{}, stock: map[txnStock]int64{}}
	for _, r := range readCSVFile(t, filepath.Join(demo, "items.csv")) {
		k := txnSKU{r["item"], r["sku"]}
		d.skus[k] = true
		d.skuList = append(d.skuList, k)
		d.upc[r["upc"]], d.upcOf[k] = k, r["upc"]
		d.ref[r["retail_ref"]], d.refOf[k] = k, r["retail_ref"]
	}
	for _, r := range readCSVFile(t, filepath.Join(demo, "warehouses.csv")) {
		d.whs[r["warehouse"]] = true
		d.whList = append(d.whList, r["warehouse"])
	}
	for _, r := range readCSVFile(t, filepath.Join(demo, "inventory.csv")) {
		k := txnStock{r["item"], r["sku"], r["warehouse"], r["location"]}
		n, err := strconv.ParseInt(r["on_hand"], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		d.stock[k] = n
		d.rows = append(d.rows, k)
	}
	return d
}

// txnRecord is one transaction as the test writes it.
type txnRecord struct {
	code, item, sku, upc, ref, wh, loc, qty, toItem, toSKU, toWh, toLoc, reference string
}

// txnModel applies transactions by the documented rules.
type txnModel struct {
	d     *txnDemo
	stock map[txnStock]int64
	codes map[string]string
}

func newTxnModel(d *txnDemo, custom map[string]string) *txnModel {
	m := &txnModel{d: d, stock: map[txnStock]int64{}, codes: map[string]string{}}
	for k, v := range d.stock {
		m.stock[k] = v
	}
	for _, c := range []string{"A", "O", "T", "G", "V", "S", "R", "P"} {
		m.codes[c] = c
	}
	for c, eff := range custom {
		m.codes[strings.ToUpper(c)] = eff
	}
	return m
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// apply applies r and says whether it was good.
func (m *txnModel) apply(r txnRecord) bool {
	eff, ok := m.codes[strings.ToUpper(r.code)]
	if !ok || r.wh == "" || (r.item == "" && r.upc == "" && r.ref == "") {
		return false
	}
	q, err := strconv.ParseInt(r.qty, 10, 64)
	if err != nil {
		return false
	}
	switch eff {
	case "A":
		if q == 0 {
			return false
		}
	case "O":
		if q < 0 {
			return false
		}
	default:
		if q <= 0 {
			return false
		}
	}
	switch eff {
	case "T":
		if r.toWh == "" && r.toLoc == "" {
			return false
		}
		if orStr(r.toWh, r.wh) == r.wh && r.toLoc == r.loc {
			return false
		}
	case "G":
		if r.toItem == "" || (r.toItem == r.item && r.toSKU == r.sku) {
			return false
		}
	}
	// The item/SKU: item and sku, else UPC, else retail reference.
	var k txnSKU
	switch {
	case r.item != "":
		k = txnSKU{r.item, r.sku}
		ok = m.d.skus[k]
	case r.upc != "":
		k, ok = m.d.upc[r.upc]
	default:
		k, ok = m.d.ref[r.ref]
	}
	if !ok || !m.d.whs[r.wh] {
		return false
	}
	src := txnStock{k.item, k.sku, r.wh, r.loc}
	type change struct {
		key           txnStock
		before, after int64
	}
	var changes []change
	switch eff {
	case "A", "R":
		changes = []change{{src, m.stock[src], m.stock[src] + q}}
	case "O":
		changes = []change{{src, m.stock[src], q}}
	case "V", "S", "P":
		changes = []change{{src, m.stock[src], m.stock[src] - q}}
	case "T", "G":
		dst := txnStock{k.item, k.sku, orStr(r.toWh, r.wh), r.toLoc}
		if eff == "G" {
			// An item transfer whose sides are one item/SKU (the from
			// side named by its UPC or retail reference) is refused.
			to := txnSKU{r.toItem, r.toSKU}
			if !m.d.skus[to] || to == k {
				return false
			}
			dst = txnStock{to.item, to.sku, orStr(r.toWh, r.wh), orStr(r.toLoc, r.loc)}
		}
		if !m.d.whs[dst.wh] {
			return false
		}
		changes = []change{{src, m.stock[src], m.stock[src] - q}, {dst, m.stock[dst], m.stock[dst] + q}}
	}
	for _, c := range changes {
		if c.after < 0 && c.after < c.before {
			return false // negative stock is not allowed
		}
	}
	for _, c := range changes {
		m.stock[c.key] = c.after
	}
	return true
}

// txnGen makes random transactions over a few hundred demo rows.
type txnGen struct {
	d      *txnDemo
	rng    *rand.Rand
	combos []txnStock
}

func newTxnGen(d *txnDemo, rng *rand.Rand, n int) *txnGen {
	g := &txnGen{d: d, rng: rng}
	perm := rng.Perm(len(d.rows))
	for _, i := range perm[:n] {
		g.combos = append(g.combos, d.rows[i])
	}
	return g
}

func (g *txnGen) record(ref string) txnRecord {
	rng := g.rng
	c := g.combos[rng.IntN(len(g.combos))]
	k := txnSKU{c.item, c.sku}
	r := txnRecord{item: c.item, sku: c.sku, wh: c.wh, loc: c.loc, reference: ref}
	switch n := rng.IntN(100); {
	case n < 15:
		r.item, r.sku, r.upc = "", "", g.d.upcOf[k]
	case n < 30:
		r.item, r.sku, r.ref = "", "", g.d.refOf[k]
	}
	other := func() txnStock { return g.combos[rng.IntN(len(g.combos))] }
	switch n := rng.IntN(100); {
	case n < 20:
		q := 1 + rng.IntN(20)
		if rng.IntN(2) == 0 {
			q = -q
		}
		r.code, r.qty = "A", strconv.Itoa(q)
	case n < 24:
		r.code, r.qty = "O", strconv.Itoa(rng.IntN(200))
	case n < 27:
		r.code, r.qty = "cnt", strconv.Itoa(rng.IntN(200)) // user-defined: O
	case n < 39:
		r.code, r.qty = "T", strconv.Itoa(1+rng.IntN(20))
		if rng.IntN(2) == 0 {
			r.toWh, r.toLoc = g.d.whList[rng.IntN(len(g.d.whList))], other().loc
		} else {
			r.toLoc = other().loc
		}
	case n < 47:
		o := other()
		r.code, r.qty = "G", strconv.Itoa(1+rng.IntN(10))
		r.toItem, r.toSKU, r.toLoc = o.item, o.sku, o.loc
		if rng.IntN(3) == 0 {
			r.toWh = o.wh
		}
	case n < 52:
		r.code, r.qty = "V", strconv.Itoa(1+rng.IntN(15))
	case n < 60:
		r.code, r.qty = "S", strconv.Itoa(1+rng.IntN(15))
	case n < 77:
		r.code, r.qty = "R", strconv.Itoa(1+rng.IntN(30))
	case n < 94:
		r.code, r.qty = "P", strconv.Itoa(1+rng.IntN(15))
		if rng.IntN(10) == 0 {
			r.qty = "500" // below zero: rejected
		}
	default: // broken on purpose
		r.code, r.qty = "R", "1"
		switch rng.IntN(8) {
		case 0:
			r.code = "Q"
		case 1:
			r.item, r.sku, r.upc, r.ref = "IT9999999", "", "", ""
		case 2:
			r.wh = "ZZ9"
		case 3:
			r.code, r.qty = "A", "0"
		case 4:
			r.code, r.toWh, r.toLoc = "T", r.wh, r.loc
		case 5:
			r.qty = ""
		case 6:
			r.qty = "many"
		case 7:
			r.item, r.sku, r.upc, r.ref = "", "", "000000000000", ""
		}
	}
	return r
}

// writeTxnFile writes records as CSV or as the OMS upload XML and returns
// the line each record starts on.
func writeTxnFile(t *testing.T, path string, recs []txnRecord, asXML bool) []int {
	t.Helper()
	var b bytes.Buffer
	line := 1
	lines := make([]int, len(recs))
	nl := func(s string) {
		b.WriteString(s)
		b.WriteByte('\n')
		line++
	}
	if !asXML {
		nl("transaction_code,item,sku,upc,retail_ref,warehouse,location,quantity,to_item,to_sku,to_warehouse,to_location,reason,reference,transaction_date,user")
		for i, r := range recs {
			lines[i] = line
			nl(strings.Join([]string{r.code, r.item, r.sku, r.upc, r.ref, r.wh, r.loc, r.qty, r.toItem, r.toSKU, r.toWh, r.toLoc,
				"crash", r.reference, "2026-05-01", "tester"}, ","))
		}
	} else {
		nl(`<?xml version="1.0" encoding="UTF-8"?>`)
		nl(`<Batch>`)
		for i, r := range recs {
			if i%50 == 0 {
				if i > 0 {
					nl(`  </Message>`)
				}
				nl(`  <Message source="POS" target="OMS" type="CWINVTXNIN">`)
			}
			lines[i] = line
			nl(fmt.Sprintf(`    <InventoryTransaction identification_nbr=%q transaction_code=%q transaction_quantity=%q transaction_reason="crash" entered_by_user="tester">`,
				r.reference, r.code, r.qty))
			nl(fmt.Sprintf(`      <Transaction company="1" item_number=%q sku_code=%q upc_code=%q retail_reference_nbr=%q warehouse=%q location=%q/>`,
				r.item, r.sku, r.upc, r.ref, r.wh, r.loc))
			if r.toItem != "" || r.toWh != "" || r.toLoc != "" {
				nl(fmt.Sprintf(`      <TransactionTo company="1" item_number=%q sku_code=%q warehouse=%q location=%q/>`,
					r.toItem, r.toSKU, r.toWh, r.toLoc))
			}
			nl(`    </InventoryTransaction>`)
		}
		nl(`  </Message>`)
		nl(`</Batch>`)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return lines
}

// txnFile is one generated input file and what the model made of it.
type txnFile struct {
	name, sha  string
	good, bad  int
	goodLines  map[int]bool
	records    int
	hasRejects bool
}

// txnEnv is a data folder, an input folder and the posbridge runs on them.
type txnEnv struct {
	t        *testing.T
	dir, in  string
	env      []string
	dbPath   string
	codesCfg string
}

func newTxnEnv(t *testing.T) *txnEnv {
	t.Helper()
	dir := t.TempDir()
	e := &txnEnv{t: t, dir: dir, in: filepath.Join(dir, "in"), codesCfg: filepath.Join(dir, "codes.yaml")}
	e.env, e.dbPath = stateEnv(t, dir, "POSBRIDGE_IMPORT_MIN_AGE=0s")
	if err := os.MkdirAll(e.in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.codesCfg, []byte("import:\n  transaction_codes:\n    CNT: O\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e.run(0, "init")
	for _, kind := range []string{"warehouses", "vendors", "items", "inventory"} {
		e.run(0, "load", kind, filepath.Join(root, "testdata", "demo", kind+".csv"), "-q")
	}
	return e
}

func (e *txnEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("posbridge", append([]string{"--config", e.codesCfg}, args...)...)
	cmd.Env = e.env
	cmd.Dir = e.dir
	return cmd
}

// run runs posbridge and fails the test unless it exits with one of codes.
func (e *txnEnv) run(codes ...any) []byte {
	e.t.Helper()
	var want []int
	var args []string
	for _, a := range codes {
		switch v := a.(type) {
		case int:
			want = append(want, v)
		case string:
			args = append(args, v)
		}
	}
	var out bytes.Buffer
	cmd := e.cmd(args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	got := cmd.ProcessState.ExitCode()
	if err != nil && got < 0 {
		e.t.Fatalf("posbridge %s: %v\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	for _, w := range want {
		if got == w {
			return out.Bytes()
		}
	}
	e.t.Fatalf("posbridge %s exited with %d, want one of %v\n%s", strings.Join(args, " "), got, want, out.Bytes())
	return nil
}

func (e *txnEnv) db() *sql.DB {
	return openState(e.t, e.dbPath).DB
}

// ledger returns per sha256 the statuses of the inventory transaction
// files recorded.
func (e *txnEnv) ledger() map[string][]string {
	e.t.Helper()
	d := e.db()
	defer d.Close()
	return txnLedger(e.t, d)
}

// txnLedger is the ledger of database d (SQLite or PostgreSQL).
func txnLedger(t *testing.T, d *sql.DB) map[string][]string {
	t.Helper()
	rows, err := d.Query(`SELECT sha256, status FROM files WHERE direction = 'in' AND kind = 'inventory-transactions'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var sum, status string
		if err := rows.Scan(&sum, &status); err != nil {
			t.Fatal(err)
		}
		out[sum] = append(out[sum], status)
	}
	return out
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// movedAfterCommit checks that every input file in processed/ (and every
// one in error/, which here could only be a file with nothing good) has
// its content in the ledger: a file is moved only after its transaction
// committed.
func (e *txnEnv) movedAfterCommit(when string) {
	e.t.Helper()
	led := e.ledger()
	for _, sub := range []string{"processed", "error"} {
		entries, _ := os.ReadDir(filepath.Join(e.in, sub))
		for _, ent := range entries {
			n := ent.Name()
			if strings.HasSuffix(n, ".rejects.csv") || strings.HasPrefix(n, ".") {
				continue
			}
			if sub == "error" {
				e.t.Errorf("%s: %s is in error/, but every input file has good records", when, n)
				continue
			}
			if len(led[fileSHA(e.t, filepath.Join(e.in, sub, n))]) == 0 {
				e.t.Errorf("%s: %s is in %s/ but its content is not in the ledger", when, n, sub)
			}
		}
	}
}

// leftovers lists the temporary files under dir.
func leftovers(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestImportKilled generates 24 files of 1,200 to 2,400 transactions over
// 300 demo inventory rows (every code, the user-defined CNT, item named by
// item/SKU, UPC or retail reference, some CSV and some XML, about one
// record in twelve rejected), drops them into the import folder a few at a
// time and kills posbridge import inventory-transactions with SIGKILL at
// random moments, 20 times; then runs it normally and checks the result
// against the model.
func TestImportKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	start := time.Now()
	demo := readTxnDemo(t)
	e := newTxnEnv(t)
	rng := rand.New(rand.NewPCG(4, 41))
	gen := newTxnGen(demo, rng, 300)
	model := newTxnModel(demo, map[string]string{"CNT": "O"})

	// The files, made in name order (the order a folder run takes them) and
	// fed to the model in that order.
	const nFiles = 24
	staging := filepath.Join(e.dir, "staging")
	os.MkdirAll(staging, 0o755)
	var files []*txnFile
	totalGood, totalBad := 0, 0
	for i := 0; i < nFiles; i++ {
		asXML := i%4 == 3
		name := fmt.Sprintf("txn-%03d.csv", i)
		if asXML {
			name = fmt.Sprintf("txn-%03d.xml", i)
		}
		n := 1200 + rng.IntN(1200)
		recs := make([]txnRecord, n)
		for j := range recs {
			recs[j] = gen.record(fmt.Sprintf("F%03d-%05d", i, j))
			// In the OMS upload P is Oracle's physical inventory, which is
			// refused; a decrease there is an S.
			if asXML && recs[j].code == "P" {
				recs[j].code = "S"
			}
		}
		path := filepath.Join(staging, name)
		lines := writeTxnFile(t, path, recs, asXML)
		f := &txnFile{name: name, sha: fileSHA(t, path), goodLines: map[int]bool{}, records: n}
		for j, r := range recs {
			if model.apply(r) {
				f.good++
				f.goodLines[lines[j]] = true
			} else {
				f.bad++
			}
		}
		f.hasRejects = f.bad > 0
		totalGood += f.good
		totalBad += f.bad
		files = append(files, f)
	}
	t.Logf("%d files, %d good and %d bad records (model)", nFiles, totalGood, totalBad)
	arrive := func(f *txnFile) {
		if err := os.Rename(filepath.Join(staging, f.name), filepath.Join(e.in, f.name)); err != nil {
			t.Fatal(err)
		}
	}

	// How long a run with nothing to do takes, and one file: the kill
	// window grows with the files waiting.
	begin := time.Now()
	e.run(0, "import", "inventory-transactions", e.in, "-q")
	idle := time.Since(begin)
	arrive(files[0])
	begin = time.Now()
	e.run(0, 3, "import", "inventory-transactions", e.in, "-q")
	perFile := time.Since(begin) - idle
	next := 1

	killed, finished := 0, 0
	for i := 0; i < 20; i++ {
		for k := 0; k < 2 && next < len(files); k++ {
			arrive(files[next])
			next++
		}
		waiting := 0
		entries, _ := os.ReadDir(e.in)
		for _, ent := range entries {
			if ent.Type().IsRegular() {
				waiting++
			}
		}
		window := idle + time.Duration(waiting)*perFile
		delay := idle/2 + time.Duration(rng.Int64N(int64(window)*11/10+1))
		cmd := e.cmd("import", "inventory-transactions", e.in, "-q")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else {
			finished++
			if code := cmd.ProcessState.ExitCode(); err != nil && code != 3 {
				t.Fatalf("run %d failed by itself (exit %d):\n%s", i, code, out.Bytes())
			}
		}
		e.movedAfterCommit(fmt.Sprintf("after run %d", i))
	}
	for next < len(files) {
		arrive(files[next])
		next++
	}
	t.Logf("%d runs killed, %d finished before the kill (idle %s, %s a file)", killed, finished,
		idle.Round(time.Millisecond), perFile.Round(time.Millisecond))

	// The last, normal runs: the second has nothing left to do.
	e.run(0, 3, "import", "inventory-transactions", e.in, "-q")
	e.run(0, "import", "inventory-transactions", e.in, "-q")

	// Every input file is in processed/ (each has good records), none left
	// in the folder; every file with rejects has its rejects file in
	// error/, with one row per reject.
	entries, err := os.ReadDir(e.in)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if !ent.IsDir() {
			t.Errorf("%s is still in the input folder", ent.Name())
		}
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(e.in, "processed", f.name)); err != nil {
			t.Errorf("%s is not in processed/: %v", f.name, err)
		}
		rj := filepath.Join(e.in, "error", f.name+".rejects.csv")
		b, err := os.ReadFile(rj)
		switch {
		case err != nil && f.hasRejects:
			t.Errorf("%s: %d records rejected, but no rejects file: %v", f.name, f.bad, err)
		case err == nil && !f.hasRejects:
			t.Errorf("%s: a rejects file, but nothing was rejected", f.name)
		case err == nil:
			r := csv.NewReader(bytes.NewReader(b))
			r.FieldsPerRecord = -1
			recs, err := r.ReadAll()
			if err != nil {
				t.Errorf("%s: %v", rj, err)
			} else if len(recs)-1 != f.bad {
				t.Errorf("%s: %d rejects in the file, the model rejects %d", rj, len(recs)-1, f.bad)
			}
		}
	}
	if left := leftovers(t, e.dir); len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}

	d := e.db()
	defer d.Close()
	checkApplied(t, d, files, model)
	checkIntegrity(t, d)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// checkApplied checks database d (SQLite or PostgreSQL) after the last
// import of files against the model: every file's content once in the
// ledger, applied or partly applied; the history holding exactly the good
// records, file and line, once each; the on hand of every inventory row
// the model's.
func checkApplied(t *testing.T, d *sql.DB, files []*txnFile, model *txnModel) {
	t.Helper()
	// The ledger: every file's content once, applied or partly applied.
	led := txnLedger(t, d)
	for _, f := range files {
		want := "applied"
		if f.hasRejects {
			want = "partial"
		}
		if got := led[f.sha]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: ledger statuses %q, want one %q", f.name, got, want)
		}
	}

	// The history: exactly the good records, file and line, once each.
	rows, err := d.Query(`SELECT f.name, t.line, count(*) FROM inventory_txns t JOIN files f ON f.id = t.file_id
  WHERE f.kind = 'inventory-transactions' GROUP BY f.name, t.line`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[int]bool{}
	for rows.Next() {
		var name string
		var line, n int
		if err := rows.Scan(&name, &line, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s line %d applied %d times", name, line, n)
		}
		if got[name] == nil {
			got[name] = map[int]bool{}
		}
		got[name][line] = true
	}
	rows.Close()
	for _, f := range files {
		missing, extra := 0, 0
		for l := range f.goodLines {
			if !got[f.name][l] {
				missing++
			}
		}
		for l := range got[f.name] {
			if !f.goodLines[l] {
				extra++
			}
		}
		if missing+extra > 0 {
			t.Errorf("%s: %d good records not in the history, %d records there that the model rejects", f.name, missing, extra)
		}
	}

	// On hand of every inventory row: the model's.
	rows, err = d.Query(`SELECT item, sku, warehouse, location, on_hand FROM inventory`)
	if err != nil {
		t.Fatal(err)
	}
	dbStock := map[txnStock]int64{}
	for rows.Next() {
		var k txnStock
		var n int64
		if err := rows.Scan(&k.item, &k.sku, &k.wh, &k.loc, &n); err != nil {
			t.Fatal(err)
		}
		dbStock[k] = n
	}
	rows.Close()
	var diffs []string
	for k, n := range model.stock {
		if m, ok := dbStock[k]; !ok || m != n {
			diffs = append(diffs, fmt.Sprintf("%v: database %d (row there: %v), model %d", k, m, ok, n))
		}
	}
	for k, n := range dbStock {
		if _, ok := model.stock[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v: database %d, not in the model", k, n))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], "...")
		}
		t.Errorf("%d inventory rows differ from the model:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// TestImportTerminated stops a folder run with SIGTERM (what a service
// manager sends) while it works through its files: the file in progress
// is rolled back, and neither it nor the files after it may be moved to
// error/ as if they had failed: they are left for the next run, which
// applies every one of them exactly once.
func TestImportTerminated(t *testing.T) {
	if testing.Short() {
		t.Skip("signals real processes; skipped with -short")
	}
	e := newTxnEnv(t)
	const nFiles, perFile = 6, 60000
	for i := 0; i < nFiles; i++ {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		fmt.Fprintln(w, "transaction_code,item,sku,warehouse,location,quantity,reference")
		for j := 0; j < perFile; j++ {
			fmt.Fprintf(w, "R,IT0000001,BLK-9,DC1,B01-02,1,T%d-%d\n", i, j)
		}
		w.Flush()
		if err := os.WriteFile(filepath.Join(e.in, fmt.Sprintf("term-%02d.csv", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := e.cmd("import", "inventory-transactions", e.in, "-q")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stop it once the first file is done, in the middle of the rest.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(e.in, "processed", "term-00.csv")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the first file was not processed in 20s:\n%s", out.Bytes())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	t.Logf("stopped with SIGTERM: exit %d\n%s", cmd.ProcessState.ExitCode(), out.Bytes())
	if cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("a run stopped by SIGTERM before its files were done exited 0")
	}
	if entries, _ := os.ReadDir(filepath.Join(e.in, "error")); len(entries) > 0 {
		var names []string
		for _, ent := range entries {
			names = append(names, ent.Name())
		}
		t.Errorf("files in error/ after SIGTERM, though none of them is bad: %q", names)
	}
	e.run(0, "import", "inventory-transactions", e.in, "-q")
	d := e.db()
	defer d.Close()
	var onHand int64
	if err := d.QueryRow(`SELECT on_hand FROM inventory WHERE item = 'IT0000001' AND sku = 'BLK-9' AND warehouse = 'DC1' AND location = 'B01-02'`).Scan(&onHand); err != nil {
		t.Fatal(err)
	}
	if want := int64(112 + nFiles*perFile); onHand != want {
		t.Errorf("on hand after the last run: %d, want %d (112 + %d received)", onHand, want, nFiles*perFile)
	}
	if left := leftovers(t, e.dir); len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}
