package main

import (
	"bufio"
	"bytes"
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
// moments while imports keep adding orders (and cancelling some, and every
// tenth without a city, whose events are held), then runs it normally:
// every event that can go out must be in exactly one complete file, its
// messageId unique and equal to its id, its omsSubOrderId the same in
// every event of its order; the held ones ready and in no file; the ledger
// and the outbox in agreement, and no temporary file left.
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
	// is sent again cancelled, which makes a second event. Every tenth has
	// no city (nor has its customer, made from its mobile number): its
	// events are held (exit 3), and must never stop the others.
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
			city := "Provo"
			if next%10 == 0 {
				city = ""
			}
			fmt.Fprintf(&b, `{"onlineReferenceNo": "K%06d", "createdAt": "2026-03-01 10:00:00", "status": %q, "paymentMode": 1,
 "customerName": "Kim Lee", "customerMobile": "555%07d", "customerEmail": "kim@example.com",
 "shippingName": "Kim Lee", "shippingAddress1": "1 Main St", "shippingPlace": %q, "shippingState": "UT",
 "shippingCountry": "US", "shippingPincode": 84601,
 "orderItems": [{"rowNo": 1, "itemReferenceCode": "SH-RED-S", "salePrice": 179, "quantity": 1},
                {"rowNo": 2, "itemReferenceCode": "SH-BLK-L", "salePrice": 179, "quantity": 2}]}`, next, status, next%50, city)
		}
		b.WriteString("]\n")
		return write(fmt.Sprintf("orders-%06d.json", next), b.String())
	}
	// held runs export order-events, which must exit 3 (the events of
	// the orders without a city are held), and returns its stdout.
	held := func(args ...string) []byte {
		t.Helper()
		var out, errs bytes.Buffer
		cmd := e.cmd(append([]string{"export", "order-events", "--partner", "shop"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errs
		if err := cmd.Run(); cmd.ProcessState.ExitCode() != 3 || !strings.Contains(errs.String(), "not sent: event ") {
			t.Fatalf("export order-events %s: %v, want exit 3 and the held events\n%s%s", strings.Join(args, " "), err, out.Bytes(), errs.Bytes())
		}
		return out.Bytes()
	}
	e.ok("import", "orders", "--partner", "shop", orders(600), "-q")
	start := time.Now()
	held("--dry-run", "-q")
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
		err := cmd.Wait()
		switch ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); {
		case ok && ws.Signaled():
			killed++
		case cmd.ProcessState.ExitCode() == 3:
			window = max(time.Since(begin), idle)
		default:
			t.Fatalf("export %d: %v, want exit 3 (held events) or killed\n%s", i, err, out.Bytes())
		}
		e.ok("import", "orders", "--partner", "shop", orders(150), "-q")
	}
	held("--max-records", "100", "-q")
	if again := held(); string(again) != "order-events shop: nothing to export\n" {
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
	subOrders := map[string]int64{}
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
			// The ids are JSON numbers (a string does not decode into
			// int64), omsSubOrderId the same in every event of an order.
			var ev struct {
				MessageID     int64  `json:"messageId"`
				EventType     string `json:"eventType"`
				OrderCode     string `json:"orderCode"`
				OmsSubOrderID int64  `json:"omsSubOrderId"`
				SubOrderItems []struct {
					OmsSubOrderItemID int64 `json:"omsSubOrderItemId"`
				} `json:"subOrderItems"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.MessageID == 0 || ev.EventType == "" || ev.OmsSubOrderID == 0 {
				t.Fatalf("%s line %d: %v: %s", d.Name(), lines, err, sc.Bytes())
			}
			if id, ok := subOrders[ev.OrderCode]; ok && id != ev.OmsSubOrderID {
				t.Errorf("order %s: omsSubOrderId %d in one event, %d in another", ev.OrderCode, id, ev.OmsSubOrderID)
			}
			subOrders[ev.OrderCode] = ev.OmsSubOrderID
			for _, it := range ev.SubOrderItems {
				if it.OmsSubOrderItemID/1_000_000 != ev.OmsSubOrderID {
					t.Errorf("order %s: omsSubOrderItemId %d is not of omsSubOrderId %d", ev.OrderCode, it.OmsSubOrderItemID, ev.OmsSubOrderID)
				}
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

	// The state: every event processed and in the file that holds it,
	// but those of the orders without a city: ready, in no file.
	conn := openState(t, e.target)
	defer conn.Close()
	rows, err := conn.Query(`SELECT m.id, m.status, coalesce(f.name, ''), o.external_key FROM order_messages m JOIN orders o ON o.id = m.order_id
  LEFT JOIN files f ON f.id = m.file_id WHERE m.stream = 'events'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	events, ready := 0, 0
	for rows.Next() {
		var id, number int64
		var status, file, key string
		if err := rows.Scan(&id, &status, &file, &key); err != nil {
			t.Fatal(err)
		}
		fmt.Sscanf(key, "K%d", &number)
		want := "processed"
		if number%10 == 0 {
			want = "ready"
			ready++
		} else {
			events++
		}
		if status != want || seen[id] != file {
			t.Errorf("event %d of %s: %s in %q, found in %q; want %s", id, key, status, file, seen[id], want)
		}
	}
	if events != len(seen) || events < 1000 || ready < 200 {
		t.Errorf("%d events sent in the state, %d in the files; %d held", events, len(seen), ready)
	}
	t.Logf("%d exports killed of 12; %d events in %d files, %d abandoned; %d held", killed, events, len(complete), abandoned, ready)
	if killed < 3 {
		t.Errorf("only %d of 12 exports were killed: the kill window is off", killed)
	}
}
