package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The exactly-once tests of issue 3: export processes killed with SIGKILL
// at random moments, and exports started at the same moment. After a last
// normal run, the outbox, the file ledger and the triggers must agree:
// every trigger processed and its record in exactly one complete file, no
// temporary file, no sequence number twice, every finished file in the
// ledger as complete with its sha256, and the last file of every SKU
// holding its current data.

// skuKey is an item and SKU.
type skuKey struct{ item, sku string }

// catalogState is what the test loaded: the live SKUs and their prices in
// cents, and for new rows a counter.
type catalogState struct {
	price map[skuKey]int
	next  int
}

func newCatalog(items int) *catalogState {
	c := &catalogState{price: map[skuKey]int{}}
	for i := 0; i < items; i++ {
		for s := 0; s < 5; s++ {
			c.price[skuKey{fmt.Sprintf("IT%05d", i), fmt.Sprintf("S%d", s)}] = 1000 + (i*5+s)%500
		}
	}
	return c
}

func (c *catalogState) keys() []skuKey {
	keys := make([]skuKey, 0, len(c.price))
	for k := range c.price {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].item != keys[j].item {
			return keys[i].item < keys[j].item
		}
		return keys[i].sku < keys[j].sku
	})
	return keys
}

// write writes the given SKUs (all live ones for a full load) as an items
// file.
func (c *catalogState) write(t *testing.T, path string, keys []skuKey) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "item,sku,description,sku_description,price")
	for _, k := range keys {
		p := c.price[k]
		fmt.Fprintf(w, "%s,%s,Item %s,SKU %s of %s,%d.%02d\n", k.item, k.sku, k.item, k.sku, k.item, p/100, p%100)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// change makes the next load: a delta of n price changes, or (full) the
// whole catalogue less some SKUs and one whole item, plus new ones.
func (c *catalogState) change(t *testing.T, rng *rand.Rand, path string, n int, full bool) {
	t.Helper()
	keys := c.keys()
	if !full {
		picked := map[skuKey]bool{}
		for len(picked) < n && len(picked) < len(keys) {
			k := keys[rng.IntN(len(keys))]
			picked[k] = true
			c.price[k] += 1 + rng.IntN(50)
		}
		var changed []skuKey
		for _, k := range keys {
			if picked[k] {
				changed = append(changed, k)
			}
		}
		c.write(t, path, changed)
		return
	}
	gone := keys[rng.IntN(len(keys))].item
	for i := 0; i < n; i++ {
		delete(c.price, keys[rng.IntN(len(keys))])
	}
	for k := range c.price {
		if k.item == gone {
			delete(c.price, k)
		}
	}
	for i := 0; i < n; i++ {
		c.next++
		c.price[skuKey{fmt.Sprintf("NEW%05d", c.next/3), fmt.Sprintf("S%d", c.next%3)}] = 777 + c.next
	}
	c.write(t, path, c.keys())
}

// exportEnv is a data folder and the posbridge commands run on it: on this
// host, or with host set, under that host name (multihost_test.go).
type exportEnv struct {
	t      *testing.T
	dir    string
	env    []string
	target string // the database (stateEnv)
	host   string
}

// newExportEnv makes a data folder and runs init on it, with env added to
// the commands' environment.
func newExportEnv(t *testing.T, env ...string) *exportEnv {
	dir := t.TempDir()
	e := &exportEnv{t: t, dir: dir}
	e.env, e.target = stateEnv(t, dir, env...)
	e.ok("init")
	return e
}

func (e *exportEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("posbridge", args...)
	if e.host != "" {
		cmd = onHost(e.t, e.host, args...)
	}
	cmd.Env = e.env
	cmd.Dir = e.dir
	return cmd
}

// ok runs posbridge and fails the test unless it exits 0.
func (e *exportEnv) ok(args ...string) []byte {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := e.cmd(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("posbridge %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

func (e *exportEnv) outbox() string { return filepath.Join(e.dir, "data", "outbox", "items") }

// ledgerFile is a row of files list --output json.
type ledgerFile struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Records int64  `json:"records"`
	Status  string `json:"status"`
	SHA256  string `json:"sha256"`
}

// listedTrigger is a row of trigger list --output json.
type listedTrigger struct {
	ID      int64  `json:"id"`
	Key     string `json:"key"`
	SubKey  string `json:"sub_key"`
	Capture string `json:"capture"`
	Status  string `json:"status"`
	File    string `json:"file"`
}

// itemsFile is what the check reads of an items export.
type itemsFile struct {
	Sequence int64 `xml:"sequence,attr"`
	Count    int64 `xml:"count,attr"`
	Items    []struct {
		Action string `xml:"action,attr"`
		Number string `xml:"item_number,attr"`
		SKUs   []struct {
			Action string `xml:"action,attr"`
			Code   string `xml:"sku_code,attr"`
			Price  string `xml:"price,attr"`
		} `xml:"SKUs>SKU"`
	} `xml:"Items>Item"`
}

// sent is one SKU element of a file.
type sent struct {
	seq    int64
	action string
	price  string
}

// check verifies the outbox, the ledger and the triggers against each
// other and against the catalogue, after a last normal run, and returns
// the number of complete and abandoned files. The outbox is e's, or
// together the folders outboxes (of several hosts).
func (e *exportEnv) check(c *catalogState, outboxes ...string) (files int, abandoned int) {
	t := e.t
	t.Helper()
	var ledger []ledgerFile
	if err := json.Unmarshal(e.ok("files", "list", "--direction", "out", "--kind", "items", "--output", "json"), &ledger); err != nil {
		t.Fatal(err)
	}
	var triggers []listedTrigger
	if err := json.Unmarshal(e.ok("trigger", "list", "--type", "SKU", "--limit", "0", "--output", "json"), &triggers); err != nil {
		t.Fatal(err)
	}

	// The ledger: no sequence number twice; complete files are on disk
	// with their sha256 and record count; abandoned ones are not.
	seqs := map[int64]string{}
	complete := map[string]ledgerFile{}
	for _, f := range ledger {
		m := exportFileName.FindStringSubmatch(f.Name)
		if m == nil || m[1] != "items" || m[3] != "xml" {
			t.Fatalf("ledger: %q is not an items export file name", f.Name)
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

	// The outbox: only complete files under final names and their
	// markers; no temporary file, nothing else.
	if len(outboxes) == 0 {
		outboxes = []string{e.outbox()}
	}
	onDisk := map[string]bool{}
	for _, dir := range outboxes {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range entries {
			name := d.Name()
			if base, ok := strings.CutSuffix(name, ".done"); ok {
				f, known := complete[base]
				if !known {
					t.Errorf("outbox: marker %s of no complete file", name)
					continue
				}
				b, _ := os.ReadFile(filepath.Join(dir, name))
				if want := fmt.Sprintf("count=%d sha256=%s\n", f.Records, f.SHA256); string(b) != want {
					t.Errorf("marker %s: %q, want %q", name, b, want)
				}
				continue
			}
			if _, known := complete[name]; !known {
				t.Errorf("outbox: %s is not a complete file of the ledger (a leftover temporary file?)", filepath.Join(dir, name))
				continue
			}
			onDisk[name] = true
		}
	}

	// Every complete file: on disk, its sha256, its count, its sequence;
	// collect the SKUs it sends (those with an action) and holds.
	type sentKey struct {
		file, item, sku, action string
	}
	inFiles := map[sentKey]int{}
	last := map[skuKey]sent{}
	for name, f := range complete {
		if !onDisk[name] {
			t.Errorf("complete file %s is not in the outbox", name)
			continue
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: sha256 %x, the ledger says %s", name, sum, f.SHA256)
		}
		var m itemsFile
		if err := xml.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		seq, _ := strconv.ParseInt(exportFileName.FindStringSubmatch(name)[2], 10, 64)
		if m.Sequence != seq || m.Count != int64(len(m.Items)) || f.Records != m.Count {
			t.Errorf("%s: sequence %d, count %d, %d items, ledger records %d", name, m.Sequence, m.Count, len(m.Items), f.Records)
		}
		for _, it := range m.Items {
			for _, s := range it.SKUs {
				k := skuKey{it.Number, s.Code}
				if s.Action != "" {
					inFiles[sentKey{name, it.Number, s.Code, s.Action}]++
				}
				action := s.Action
				if action == "" {
					action = it.Action
				}
				if prev, ok := last[k]; !ok || prev.seq < seq {
					last[k] = sent{seq, action, s.Price}
				}
			}
		}
		files++
	}

	// Every trigger processed, in exactly one complete file that sends
	// it; no file sends a SKU without its trigger.
	for _, tr := range triggers {
		if tr.Status != "processed" {
			t.Errorf("trigger %d %s/%s %s is %s after a normal run", tr.ID, tr.Key, tr.SubKey, tr.Capture, tr.Status)
			continue
		}
		k := sentKey{tr.File, tr.Key, tr.SubKey, tr.Capture}
		switch n := inFiles[k]; n {
		case 1:
			delete(inFiles, k)
		case 0:
			t.Errorf("trigger %d %s/%s %s: not in its file %q", tr.ID, tr.Key, tr.SubKey, tr.Capture, tr.File)
		default:
			t.Errorf("trigger %d %s/%s %s: %d times in %s", tr.ID, tr.Key, tr.SubKey, tr.Capture, n, tr.File)
		}
	}
	for k, n := range inFiles {
		t.Errorf("%s sends %s/%s %s %d times without a trigger for it (sent twice?)", k.file, k.item, k.sku, k.action, n)
	}

	// Nothing lost: the last file holding a live SKU has its current
	// price; the last one holding a deleted SKU deletes it.
	for k, p := range c.price {
		s, ok := last[k]
		if want := fmt.Sprintf("%d.%02d", p/100, p%100); !ok || s.price != want || s.action == "D" {
			t.Errorf("%s/%s: last sent %+v, want price %s", k.item, k.sku, s, want)
		}
	}
	for k, s := range last {
		if _, live := c.price[k]; !live && s.action != "D" {
			t.Errorf("%s/%s is deleted, but its last file (%d) has action %s", k.item, k.sku, s.seq, s.action)
		}
	}
	if len(triggers) == 0 || files == 0 {
		t.Fatalf("%d triggers, %d files: the test exported nothing", len(triggers), files)
	}
	return files, abandoned
}

// TestExportKilled kills posbridge export items with SIGKILL at random
// moments, 25 times, on 20,000 SKUs with new changes loaded between the
// kills (price changes, and every fifth time a full load that deletes and
// adds SKUs), then runs it normally and checks that every trigger went
// out exactly once (check).
func TestExportKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	e := newExportEnv(t)
	c := newCatalog(4000)
	rng := rand.New(rand.NewPCG(11, 12))
	load := filepath.Join(e.dir, "load.csv")
	c.write(t, load, c.keys())
	start := time.Now()
	e.ok("load", "items", load, "-q")
	// The first kill window: about what a load of everything takes.
	window := time.Since(start)
	// Kills before the process has even opened the database prove
	// little: most kills fall after the time a run with nothing to do takes.
	start = time.Now()
	e.ok("export", "vendors")
	idle := time.Since(start) * 8 / 10

	killed, finished := 0, 0
	states := map[string]int{}
	for i := 0; i < 25; i++ {
		args := []string{"export", "items", "-q"}
		switch i % 3 {
		case 1:
			args = append(args, "--max-records", "700")
		case 2:
			args = append(args, "--max-records", "1500", "--marker")
		}
		lastID := e.lastFileID()
		cmd := e.cmd(args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(window) * 12 / 10))
		if i%4 != 0 {
			delay = idle + time.Duration(rng.Int64N(int64(max(window-idle, time.Millisecond))*12/10))
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
				t.Fatalf("export %d failed by itself: %v\n%s", i, err, out.Bytes())
			}
			killed++
			state := e.deadState(lastID)
			states[state]++
			if state == "before a claim" || state == "before recovering the last one" {
				// Killed before it did anything: the work grows while
				// runs are killed, so must the window.
				window = window * 5 / 4
			}
		} else {
			finished++
			// Spread the next kills over what a whole run takes now.
			window = time.Since(begin)
		}
		full := i%5 == 4
		n := 1500
		if full {
			n = 40
		}
		c.change(t, rng, load, n, full)
		mode := "delta"
		if full {
			mode = "full"
		}
		e.ok("load", "items", load, "--mode", mode, "--force", "-q")
	}
	out := e.ok("export", "items", "--max-records", "1500", "--marker")
	again := e.ok("export", "items")
	if string(again) != "items: nothing to export\n" {
		t.Errorf("the run after the last one: %q, want nothing to export", again)
	}
	files, abandoned := e.check(c)
	t.Logf("%d exports killed (%v), %d finished before the kill; last run: %s; %d files, %d abandoned",
		killed, states, finished, strings.TrimSpace(string(out)), files, abandoned)
	if killed < 5 {
		t.Errorf("only %d of 25 exports were killed: the kill window is off", killed)
	}
}

// deadState says where a killed run left its current file: nowhere
// (killed before a claim or between files), "writing" with or without a
// temporary file, or "written" (not yet renamed, or renamed); or that it
// died before it recovered the file of the run before. lastID is the
// newest ledger row before the run.
func (e *exportEnv) deadState(lastID int64) string {
	e.t.Helper()
	d := openState(e.t, e.target)
	defer d.Close()
	var path, status string
	err := d.QueryRow(`SELECT path, status FROM files WHERE direction = 'out' AND status IN ('writing', 'written')`).Scan(&path, &status)
	if errors.Is(err, sql.ErrNoRows) {
		var n int64
		d.QueryRow(`SELECT count(*) FROM files WHERE id > ?`, lastID).Scan(&n)
		if n == 0 {
			return "before a claim"
		}
		return "between files"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var newer int64
	d.QueryRow(`SELECT count(*) FROM files WHERE id > ?`, lastID).Scan(&newer)
	if newer == 0 {
		return "before recovering the last one"
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	switch _, tmpErr := os.Stat(tmp); {
	case tmpErr == nil:
		return status + ", temp file"
	case status == "written":
		return "written, renamed"
	}
	return status + ", no temp file"
}

// lastFileID is the id of the newest row of the file ledger.
func (e *exportEnv) lastFileID() int64 {
	e.t.Helper()
	d := openState(e.t, e.target)
	defer d.Close()
	var id int64
	if err := d.QueryRow(`SELECT coalesce(max(id), 0) FROM files`).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestConcurrentExports starts two exports of items at the same moment,
// with a load of changes running at the same time, several times: both
// exports succeed (the second waits for the first's lock), neither says
// the database is locked or busy, and every trigger goes out exactly once.
func TestConcurrentExports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	e := newExportEnv(t)
	c := newCatalog(4000)
	rng := rand.New(rand.NewPCG(21, 22))
	load := filepath.Join(e.dir, "load.csv")
	c.write(t, load, c.keys())
	e.ok("load", "items", load, "-q")
	wrote := 0
	for round := 0; round < 4; round++ {
		next := filepath.Join(e.dir, fmt.Sprintf("change-%d.csv", round))
		c.change(t, rng, next, 2000, round == 2)
		mode := "delta"
		if round == 2 {
			mode = "full"
		}
		cmds := []*exec.Cmd{
			e.cmd("export", "items", "--max-records", "1000"),
			e.cmd("export", "items", "--max-records", "1000"),
			e.cmd("load", "items", next, "--mode", mode, "-q"),
		}
		outs := make([]bytes.Buffer, len(cmds))
		var wg sync.WaitGroup
		errs := make([]error, len(cmds))
		for i, cmd := range cmds {
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = cmd.Run()
			}()
		}
		wg.Wait()
		for i, err := range errs {
			o := outs[i].String()
			if err != nil {
				t.Fatalf("round %d: posbridge %s: %v\n%s", round, strings.Join(cmds[i].Args[1:], " "), err, o)
			}
			if strings.Contains(o, "locked") || strings.Contains(o, "busy") {
				t.Errorf("round %d: posbridge %s: %s", round, strings.Join(cmds[i].Args[1:], " "), o)
			}
			if i < 2 {
				wrote += strings.Count(o, "items: wrote ")
			}
		}
	}
	e.ok("export", "items")
	files, _ := e.check(c)
	t.Logf("%d files written by the concurrent exports, %d in all", wrote, files)
}
