package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPartnerInventoryKilled kills posbridge export inventory --partner
// with SIGKILL at random moments while inventory loads change the stock of
// random SKUs between the kills, then runs it normally and checks: every
// ledger file is complete (on disk, its sha256) or abandoned (gone); no
// leftover temporary file; no (code, quantity) sent twice, every quantity
// sent is one the SKU had; the last file holding each SKU has its current
// quantity; SKUs without a code never appear.
func TestPartnerInventoryKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	e := newExportEnv(t)
	const skus = 12000
	write := func(name, content string) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("posbridge.yaml", "partners:\n  p1:\n    profile: external-oms\n    location: L1\n    warehouse: W1\n")
	var items, xref strings.Builder
	items.WriteString("item,sku,description,price\n")
	xref.WriteString("item,sku,external_code\n")
	code := map[string]string{} // SKU key → code; every 50th SKU has none
	for i := 0; i < skus; i++ {
		k := fmt.Sprintf("IT%05d/S%d", i/4, i%4)
		fmt.Fprintf(&items, "IT%05d,S%d,Item,1.00\n", i/4, i%4)
		if i%50 != 49 {
			code[k] = fmt.Sprintf("C%05d", i)
			fmt.Fprintf(&xref, "IT%05d,S%d,C%05d\n", i/4, i%4, i)
		}
	}
	e.ok("load", "warehouses", write("wh.csv", "warehouse,name\nW1,One\n"), "-q")
	e.ok("load", "items", write("items.csv", items.String()), "-q")
	e.ok("xref", "load", "p1", write("xref.csv", xref.String()), "-q")

	rng := rand.New(rand.NewPCG(81, 82))
	// history holds every quantity each SKU had; values are unique per
	// round (round*100000 + i), so a value names one change.
	history, current := map[string]map[int64]bool{}, map[string]int64{}
	change := func(round, n int) {
		var b strings.Builder
		b.WriteString("item,sku,warehouse,on_hand\n")
		picked := map[int]bool{}
		for len(picked) < n {
			picked[rng.IntN(skus)] = true
		}
		for i := range picked {
			k := fmt.Sprintf("IT%05d/S%d", i/4, i%4)
			v := int64(round*100000 + i)
			if history[k] == nil {
				history[k] = map[int64]bool{0: true}
			}
			history[k][v], current[k] = true, v
			fmt.Fprintf(&b, "IT%05d,S%d,W1,%d\n", i/4, i%4, v)
		}
		e.ok("load", "inventory", write("inv.csv", b.String()), "-q")
	}
	change(1, skus)
	run := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := e.cmd(append([]string{"export", "inventory", "--partner", "p1", "-q"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd, &out
	}
	finished := func(cmd *exec.Cmd, err error) bool {
		var xe *exec.ExitError
		return err == nil || errors.As(err, &xe) && xe.ExitCode() == 3
	}
	start := time.Now()
	cmd, out := run()
	if err := cmd.Run(); !finished(cmd, err) {
		t.Fatalf("first export: %v\n%s", err, out)
	}
	window := time.Since(start)
	full := window
	start = time.Now()
	e.ok("export", "vendors", "-q")
	idle := time.Since(start) * 8 / 10
	killed := 0
	for i := 0; i < 25; i++ {
		change(i+2, 1000+rng.IntN(4000))
		var args []string
		if i%3 == 0 {
			args = append(args, "--marker")
		}
		cmd, out := run(args...)
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// After the start-up of the process, up to one and a half times
		// the first (full) export: a delta reads as much, writes less.
		time.Sleep(idle + time.Duration(rng.Int64N(int64(max(window-idle, time.Millisecond))*15/10)))
		cmd.Process.Kill()
		if err := cmd.Wait(); !finished(cmd, err) {
			if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
				t.Fatalf("export %d failed by itself: %v\n%s", i, err, out)
			}
			killed++
			window = min(window+window/5, full*2)
		} else {
			// The window follows what an export takes on this machine now.
			window = time.Since(begin)
		}
	}
	if cmd, out := run(); !finished(cmd, cmd.Run()) {
		t.Fatalf("last export failed\n%s", out)
	}
	if got := e.ok("export", "inventory", "--partner", "p1"); string(got) != "partner_inventory_p1: nothing to export\n" {
		t.Errorf("the run after the last one: %q", got)
	}

	d := openState(t, e.target)
	defer d.Close()
	rows, err := d.Query(`SELECT path, status, sha256, records FROM files WHERE direction = 'out' AND kind = 'partner_inventory_p1' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	byCode := map[string]string{}
	for k, c := range code {
		byCode[c] = k
	}
	sent := map[string]bool{}  // code=quantity
	last := map[string]int64{} // SKU → quantity of the last file holding it
	files, abandoned := 0, 0
	for rows.Next() {
		var path, status, sum string
		var records int64
		if err := rows.Scan(&path, &status, &sum, &records); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if status == "abandoned" {
			abandoned++
			if err == nil {
				t.Errorf("abandoned file %s is on disk", path)
			}
			continue
		}
		if status != "complete" {
			t.Fatalf("file %s is %s after the last run", path, status)
		}
		files++
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: sha256 differs from the ledger", path)
		}
		var n int64
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var batch struct {
				LocationCode string `json:"locationCode"`
				Products     []struct {
					Code string `json:"channelSkuCode"`
					Qty  int64  `json:"quantity"`
				} `json:"products"`
			}
			if err := json.Unmarshal(sc.Bytes(), &batch); err != nil || batch.LocationCode != "L1" || len(batch.Products) > 300 {
				t.Fatalf("%s: bad batch (%v): %.100s", path, err, sc.Text())
			}
			for _, p := range batch.Products {
				n++
				k, ok := byCode[p.Code]
				if !ok {
					t.Fatalf("%s: unknown code %s", path, p.Code)
				}
				if !history[k][p.Qty] {
					t.Errorf("%s: %s sent with quantity %d, which it never had", path, p.Code, p.Qty)
				}
				if sent[p.Code+"="+fmt.Sprint(p.Qty)] {
					t.Errorf("%s: %s with quantity %d sent twice", path, p.Code, p.Qty)
				}
				sent[p.Code+"="+fmt.Sprint(p.Qty)] = true
				last[k] = p.Qty
			}
		}
		if n != records {
			t.Errorf("%s: %d products, the ledger says %d", path, n, records)
		}
	}
	for k, v := range current {
		if _, ok := code[k]; !ok {
			if _, seen := last[k]; seen {
				t.Errorf("%s has no code but was sent", k)
			}
			continue
		}
		if last[k] != v {
			t.Errorf("%s: last sent %d, has %d", k, last[k], v)
		}
	}
	left, _ := filepath.Glob(filepath.Join(e.dir, "data", "outbox", "partners", "p1", ".*.tmp"))
	if len(left) > 0 {
		t.Errorf("leftover temporary files: %v", left)
	}
	t.Logf("%d of 25 exports killed; %d complete files, %d abandoned", killed, files, abandoned)
	if killed < 5 || files < 4 {
		t.Errorf("%d of 25 exports were killed, %d files complete: the kill window is off", killed, files)
	}
}
