package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOrderEventsKilled kills export order-events with SIGKILL at random
// moments while imports keep adding orders (and cancelling some), then
// runs it normally: every event must be in exactly one complete file, its
// messageId unique and equal to its id, the ledger and the outbox in
// agreement, and no temporary file left.
func TestOrderEventsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := newExportEnv(t)
	write := func(name, content string) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("posbridge.yaml", "partners:\n  shop:\n    profile: store-pos\n    sku_code: xref\n    location: \"101\"\n    warehouse: S01\n")
	for _, kind := range []string{"warehouses", "vendors", "items", "inventory"} {
		e.ok("load", kind, filepath.Join(root, "testdata", "demo", kind+".csv"), "-q")
	}
	e.ok("xref", "load", "shop", write("xref.csv", "item,sku,external_code\nIT0000003,RED  S,SH-RED-S\nIT0000003,BLK  L,SH-BLK-L\n"), "-q")

	// orders writes a file of n orders from number first on; every third
	// is sent again cancelled, which makes a second event.
	next := 0
	orders := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; i < n; i++ {
			next++
			status := "Pending"
			if next%3 == 0 {
				status = "Cancel"
			}
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"onlineReferenceNo": "K%06d", "createdAt": "2026-03-01 10:00:00", "status": %q, "customerMobile": "555%07d",
 "orderItems": [{"rowNo": 1, "itemReferenceCode": "SH-RED-S", "salePrice": 179, "quantity": 1},
                {"rowNo": 2, "itemReferenceCode": "SH-BLK-L", "salePrice": 179, "quantity": 2}]}`, next, status, next%50)
		}
		b.WriteString("]\n")
		return write(fmt.Sprintf("orders-%06d.json", next), b.String())
	}
	e.ok("import", "orders", "--partner", "shop", orders(600), "-q")
	start := time.Now()
	e.ok("export", "order-events", "--partner", "shop", "--dry-run", "-q")
	idle := time.Since(start)
	window := 4 * idle

	rng := rand.New(rand.NewPCG(8, 9))
	killed := 0
	for i := 0; i < 12; i++ {
		args := []string{"export", "order-events", "--partner", "shop", "-q"}
		if i%2 == 1 {
			args = append(args, "--max-records", "40")
		}
		cmd := e.cmd(args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle*7/10 + time.Duration(rng.Int64N(int64(window))))
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
				t.Fatalf("export %d failed by itself: %v\n%s", i, err, out.Bytes())
			}
			killed++
		} else {
			window = max(time.Since(begin), idle)
		}
		e.ok("import", "orders", "--partner", "shop", orders(150), "-q")
	}
	e.ok("export", "order-events", "--partner", "shop", "--max-records", "100", "-q")
	if again := e.ok("export", "order-events", "--partner", "shop"); string(again) != "order-events shop: nothing to export\n" {
		t.Errorf("the run after the last one: %q, want nothing to export", again)
	}

	// The ledger: complete files on disk, abandoned ones not.
	var ledger []ledgerFile
	if err := json.Unmarshal(e.ok("files", "list", "--direction", "out", "--kind", "order_events", "--output", "json"), &ledger); err != nil {
		t.Fatal(err)
	}
	complete := map[string]ledgerFile{}
	abandoned := 0
	for _, f := range ledger {
		switch f.Status {
		case "complete":
			complete[f.Name] = f
		case "abandoned":
			abandoned++
			if _, err := os.Stat(f.Path); err == nil {
				t.Errorf("abandoned file %s is on disk", f.Name)
			}
		default:
			t.Errorf("ledger: %s is %s after a normal run", f.Name, f.Status)
		}
	}

	// The outbox: only complete files; every messageId once.
	dir := filepath.Join(e.dir, "data", "outbox", "partners", "shop")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]string{}
	for _, d := range entries {
		f, ok := complete[d.Name()]
		if !ok {
			t.Errorf("outbox: %s is not a complete file of the ledger", d.Name())
			continue
		}
		fh, err := os.Open(filepath.Join(dir, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		var lines int64
		for sc.Scan() {
			lines++
			var ev struct {
				MessageID int64  `json:"messageId"`
				EventType string `json:"eventType"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.MessageID == 0 || ev.EventType == "" {
				t.Fatalf("%s line %d: %v: %s", d.Name(), lines, err, sc.Bytes())
			}
			if other, dup := seen[ev.MessageID]; dup {
				t.Errorf("messageId %d in %s and in %s", ev.MessageID, other, d.Name())
			}
			seen[ev.MessageID] = d.Name()
		}
		fh.Close()
		if lines != f.Records {
			t.Errorf("%s: %d lines, the ledger says %d", d.Name(), lines, f.Records)
		}
	}
	if len(complete) != len(entries) {
		t.Errorf("%d complete files in the ledger, %d in the outbox", len(complete), len(entries))
	}

	// The state: every event processed and in the file that holds it.
	conn, err := sql.Open("sqlite", filepath.Join(e.dir, "data", "posbridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT m.id, m.status, coalesce(f.name, '') FROM order_messages m LEFT JOIN files f ON f.id = m.file_id WHERE m.stream = 'events'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	events := 0
	for rows.Next() {
		var id int64
		var status, file string
		if err := rows.Scan(&id, &status, &file); err != nil {
			t.Fatal(err)
		}
		events++
		if status != "processed" || seen[id] != file {
			t.Errorf("event %d: %s in %q, found in %q", id, status, file, seen[id])
		}
	}
	if events != len(seen) || events < 1200 {
		t.Errorf("%d events in the state, %d in the files", events, len(seen))
	}
	t.Logf("%d exports killed of 12; %d events in %d files, %d abandoned", killed, events, len(complete), abandoned)
	if killed < 3 {
		t.Errorf("only %d of 12 exports were killed: the kill window is off", killed)
	}
}
