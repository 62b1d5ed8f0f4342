package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The exactly-once test of the Customer Engagement feed (issue 7): feed
// runs killed with SIGKILL at random moments while loads change, add and
// delete customers and SKUs and add invoices and credits between the
// kills (and the trigger exports and the tombstone purge run now and
// then). After a last normal run: every file of the ledger is complete
// (or abandoned and gone), on disk with its sha256, count and sequence;
// no sequence number twice; no leftover; every invoice in exactly one
// complete file; no customer or SKU record sent twice; and the last file
// holding each customer and SKU has its current data, or its delete.

// customerModel is what the test loaded: live customers and their email
// (which changes with every change), and the deleted ones.
type customerModel struct {
	email   map[string]string
	deleted map[string]bool
	next    int
	version int
}

func (m *customerModel) touch(c string) {
	m.version++
	m.email[c] = fmt.Sprintf("%s.v%d@example.com", strings.ToLower(c), m.version)
	delete(m.deleted, c)
}

// write writes the given customers as a customers file.
func (m *customerModel) write(t *testing.T, path string, keys []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("customer,last_name,email\n")
	sort.Strings(keys)
	for _, c := range keys {
		fmt.Fprintf(&b, "%s,Name %s,%s\n", c, c, m.email[c])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (m *customerModel) live() []string {
	keys := make([]string, 0, len(m.email))
	for c := range m.email {
		keys = append(keys, c)
	}
	sort.Strings(keys)
	return keys
}

// change makes the next customer load: a delta of n changed customers, n/4
// new ones and a few deleted ones back; or (full) every live customer less
// n/10, with a few changed.
func (m *customerModel) change(t *testing.T, rng *rand.Rand, path string, n int, full bool) {
	t.Helper()
	keys := m.live()
	if full {
		for i := 0; i < n/10; i++ {
			c := keys[rng.IntN(len(keys))]
			if _, ok := m.email[c]; ok {
				delete(m.email, c)
				m.deleted[c] = true
			}
		}
		for i := 0; i < n/20; i++ {
			if c := keys[rng.IntN(len(keys))]; !m.deleted[c] {
				m.touch(c)
			}
		}
		m.write(t, path, m.live())
		return
	}
	picked := map[string]bool{}
	for len(picked) < n {
		picked[keys[rng.IntN(len(keys))]] = true
	}
	for i := 0; i < n/4; i++ {
		m.next++
		picked[fmt.Sprintf("C%06d", m.next)] = true
	}
	back := 0
	for c := range m.deleted {
		if back++; back > 5 {
			break
		}
		picked[c] = true
	}
	var out []string
	for c := range picked {
		m.touch(c)
		out = append(out, c)
	}
	m.write(t, path, out)
}

// writeInvoices writes n new invoices (every fifth a credit) of live
// customers and SKUs, numbered from *next, and records their types.
func writeInvoices(t *testing.T, rng *rand.Rand, path string, n int, next *int, customers []string, skus []skuKey, types map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price\n")
	for i := 0; i < n; i++ {
		*next++
		inv := fmt.Sprintf("N%07d", *next)
		typ, qty := "I", 1+rng.IntN(3)
		if *next%5 == 0 {
			typ, qty = "C", -1
		}
		types[inv] = typ
		c := customers[rng.IntN(len(customers))]
		for line := 1; line <= 1+rng.IntN(2); line++ {
			k := skus[rng.IntN(len(skus))]
			fmt.Fprintf(&b, "%s,O%s,%s,%s,2026-05-01,%d,%s,%s,%d,12.50\n", inv, inv, c, typ, line, k.item, k.sku, qty)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEngagementKilled kills posbridge export engagement with SIGKILL at
// random moments, 30 times, on 20,000 customers, 10,000 SKUs and a growing
// number of invoices, loading changes between the kills, then runs it
// normally and checks that every change went out exactly once (checkFeed).
func TestEngagementKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	e := newExportEnv(t)
	rng := rand.New(rand.NewPCG(31, 32))
	cm := &customerModel{email: map[string]string{}, deleted: map[string]bool{}}
	for i := 0; i < 20000; i++ {
		cm.next++
		cm.touch(fmt.Sprintf("C%06d", cm.next))
	}
	cat := newCatalog(2000)
	types := map[string]string{}
	nextInvoice := 0
	custFile := filepath.Join(e.dir, "customers.csv")
	itemFile := filepath.Join(e.dir, "items.csv")
	invFile := filepath.Join(e.dir, "invoices.csv")
	cm.write(t, custFile, cm.live())
	cat.write(t, itemFile, cat.keys())
	writeInvoices(t, rng, invFile, 2000, &nextInvoice, cm.live(), cat.keys(), types)
	start := time.Now()
	e.ok("load", "customers", custFile, "-q")
	e.ok("load", "items", itemFile, "-q")
	e.ok("load", "invoices", invFile, "-q")
	// The first kill window: about what loading everything takes.
	window := time.Since(start)
	start = time.Now()
	e.ok("export", "vendors")
	idle := time.Since(start) * 8 / 10

	killed, finished := 0, 0
	states := map[string]int{}
	for i := 0; i < 30; i++ {
		args := []string{"export", "engagement", "-q"}
		if i%3 == 1 {
			args = append(args, "--marker")
		}
		lastID := e.lastFileID()
		cmd := e.cmd(args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := idle + time.Duration(rng.Int64N(int64(max(window-idle, time.Millisecond))*12/10))
		if i%4 == 0 {
			delay = time.Duration(rng.Int64N(int64(window)))
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
				t.Fatalf("feed %d failed by itself: %v\n%s", i, err, out.Bytes())
			}
			killed++
			states[e.deadState(lastID)]++
		} else {
			finished++
			window = time.Since(begin)
		}

		full := i%5 == 3
		cm.change(t, rng, custFile, 1500, full)
		mode := map[bool]string{true: "full", false: "delta"}[full]
		e.ok("load", "customers", custFile, "--mode", mode, "--force", "-q")
		cat.change(t, rng, itemFile, map[bool]int{true: 40, false: 800}[i%4 == 2], i%4 == 2)
		e.ok("load", "items", itemFile, "--mode", map[bool]string{true: "full", false: "delta"}[i%4 == 2], "--force", "-q")
		writeInvoices(t, rng, invFile, 300, &nextInvoice, cm.live(), cat.keys(), types)
		e.ok("load", "invoices", invFile, "-q")
		if i%3 == 2 {
			// The trigger exports send the deletes too, and the purge
			// would drop the tombstones the feed has not sent yet.
			e.ok("export", "customers", "-q")
			e.ok("export", "items", "-q")
			e.ok("trigger", "purge", "--older-than", "0s", "-q")
		}
	}
	out := e.ok("export", "engagement", "--marker")
	again := e.ok("export", "engagement")
	if want := "engagement_customers: nothing to export\nengagement_items: nothing to export\n" +
		"engagement_sales: nothing to export\nengagement_returns: nothing to export\n"; string(again) != want {
		t.Errorf("the run after the last one: %q, want nothing to export", again)
	}
	files, abandoned := e.checkFeed(cm, cat, types)
	t.Logf("%d feeds killed (%v), %d finished before the kill; last run:\n%s%d files, %d abandoned",
		killed, states, finished, out, files, abandoned)
	if killed < 5 {
		t.Errorf("only %d of 30 feeds were killed: the kill window is off", killed)
	}
}

// feedRecord is one record of a feed file as the check reads it.
type feedRecord struct {
	seq    int64
	action string
	data   string // email, price, or the invoice type
}

// checkFeed verifies the engagement outbox and the ledger against each
// other and against the models, and returns the number of complete and
// abandoned files.
func (e *exportEnv) checkFeed(cm *customerModel, cat *catalogState, types map[string]string) (files, abandoned int) {
	t := e.t
	t.Helper()
	dir := filepath.Join(e.dir, "data", "outbox", "engagement")
	complete := map[string]ledgerFile{}
	for _, kind := range []string{"engagement_customers", "engagement_items", "engagement_sales", "engagement_returns"} {
		var ledger []ledgerFile
		if err := json.Unmarshal(e.ok("files", "list", "--direction", "out", "--kind", kind, "--output", "json"), &ledger); err != nil {
			t.Fatal(err)
		}
		seqs := map[int64]string{}
		for _, f := range ledger {
			m := exportFileName.FindStringSubmatch(f.Name)
			if m == nil || m[1] != kind || m[3] != "xml" {
				t.Fatalf("ledger: %q is not an %s file name", f.Name, kind)
			}
			seq, _ := strconv.ParseInt(m[2], 10, 64)
			if other, dup := seqs[seq]; dup {
				t.Errorf("sequence number %d twice: %s and %s", seq, other, f.Name)
			}
			seqs[seq] = f.Name
			switch f.Status {
			case "complete":
				complete[f.Name] = f
			case "abandoned":
				abandoned++
				if _, err := os.Stat(f.Path); err == nil {
					t.Errorf("abandoned file %s is on disk under its final name", f.Name)
				}
			default:
				t.Errorf("ledger: %s is %s after a normal run", f.Name, f.Status)
			}
		}
	}

	// The outbox holds the complete files and markers, nothing else.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, d := range entries {
		name := d.Name()
		if base, ok := strings.CutSuffix(name, ".done"); ok {
			f, known := complete[base]
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if want := fmt.Sprintf("count=%d sha256=%s\n", f.Records, f.SHA256); !known || string(b) != want {
				t.Errorf("marker %s: %q, want %q", name, b, want)
			}
			continue
		}
		if _, known := complete[name]; !known {
			t.Errorf("outbox: %s is not a complete file of the ledger (a leftover temporary file?)", name)
		}
		onDisk[name] = true
	}

	// Read every complete file: its sha256, count and sequence, and the
	// records it sends.
	sent := map[string][]feedRecord{} // by kind letter and key
	twice := map[string]int{}
	for name, f := range complete {
		if !onDisk[name] {
			t.Errorf("complete file %s is not in the outbox", name)
			continue
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: sha256 %x, the ledger says %s", name, sum, f.SHA256)
		}
		var m struct {
			Sequence int64 `xml:"sequence,attr"`
			Count    int64 `xml:"count,attr"`
			Wrapper  struct {
				Records []struct {
					Attrs []xml.Attr `xml:",any,attr"`
				} `xml:",any"`
			} `xml:",any"`
		}
		if err := xml.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		match := exportFileName.FindStringSubmatch(name)
		seq, _ := strconv.ParseInt(match[2], 10, 64)
		if m.Sequence != seq || m.Count != int64(len(m.Wrapper.Records)) || f.Records != m.Count {
			t.Errorf("%s: sequence %d, count %d, %d records, ledger records %d", name, m.Sequence, m.Count, len(m.Wrapper.Records), f.Records)
		}
		for _, r := range m.Wrapper.Records {
			a := map[string]string{}
			for _, x := range r.Attrs {
				a[x.Name.Local] = x.Value
			}
			var key string
			var rec feedRecord
			switch match[1] {
			case "engagement_customers":
				key, rec = "C "+a["customer_number"], feedRecord{seq, a["action"], a["email"]}
			case "engagement_items":
				key, rec = "S "+a["item_number"]+"/"+a["sku_code"], feedRecord{seq, a["action"], a["price"]}
			case "engagement_sales":
				key, rec = "I "+a["invoice_number"], feedRecord{seq, "", "I"}
			default:
				key, rec = "I "+a["invoice_number"], feedRecord{seq, "", "C"}
			}
			sent[key] = append(sent[key], rec)
			twice[fmt.Sprintf("%s %s %s", key, rec.action, rec.data)]++
		}
		files++
	}
	for k, n := range twice {
		if n > 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	for _, recs := range sent {
		sort.Slice(recs, func(i, j int) bool { return recs[i].seq < recs[j].seq })
	}
	last := func(key string) (feedRecord, bool) {
		recs := sent[key]
		if len(recs) == 0 {
			return feedRecord{}, false
		}
		return recs[len(recs)-1], true
	}

	// Nothing lost: every live customer and SKU last sent with its current
	// data; every deleted one that was sent last sent as a delete; every
	// invoice in exactly one file of its type.
	for c, email := range cm.email {
		if r, ok := last("C " + c); !ok || r.data != email || r.action == "D" {
			t.Errorf("customer %s: last sent %+v, want email %s", c, r, email)
		}
	}
	for c := range cm.deleted {
		if r, ok := last("C " + c); ok && r.action != "D" {
			t.Errorf("deleted customer %s: last sent %+v", c, r)
		}
	}
	for k, p := range cat.price {
		if r, ok := last("S " + k.item + "/" + k.sku); !ok || r.data != fmt.Sprintf("%d.%02d", p/100, p%100) || r.action == "D" {
			t.Errorf("SKU %s/%s: last sent %+v, want price %d", k.item, k.sku, r, p)
		}
	}
	for key, recs := range sent {
		if strings.HasPrefix(key, "S ") {
			item, sku, _ := strings.Cut(strings.TrimPrefix(key, "S "), "/")
			if _, live := cat.price[skuKey{item, sku}]; !live && recs[len(recs)-1].action != "D" {
				t.Errorf("SKU %s is deleted, but its last record is %+v", key, recs[len(recs)-1])
			}
		}
	}
	for inv, typ := range types {
		recs := sent["I "+inv]
		if len(recs) != 1 || recs[0].data != typ {
			t.Errorf("invoice %s (%s): sent %+v, want once", inv, typ, recs)
		}
	}
	if len(sent) == 0 || files == 0 {
		t.Fatalf("%d files: the test sent nothing", files)
	}
	return files, abandoned
}
