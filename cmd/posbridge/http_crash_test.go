package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kill test of issue 14: a push of 1,000 order events (NDJSON, one
// request per record, keyed by messageId) to an HTTPS partner server is
// killed with SIGKILL at random moments, round after round; a round whose
// push got to the end starts a new file of 1,000 events. After a final
// run the server has received every event at least once, each key has one
// done row in the delivery ledger (so it is acknowledged exactly once),
// every file is in sent/, no row is left other than done, and a record
// sent again carried the same Idempotency-Key.
func TestHTTPPushKilled(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	dir := t.TempDir()
	srv, err := newPartnerServer(dir, "pos", "ca")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.setAuth("bearer", "t0ken-for-the-kill-test")
	cfg := fmt.Sprintf(`sites:
  pos:
    type: http
    base_url: %s
    ca_file: %s
    bearer_env: POS_TOKEN
    parallel: 4
    retries: 3
    timeout: 10s
    backoff: 50ms
    backoff_max: 200ms
`, srv.URL, srv.CAFile)
	if err := os.WriteFile(filepath.Join(dir, "posbridge.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env, target := stateEnv(t, dir, "POS_TOKEN=t0ken-for-the-kill-test")
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command("posbridge", append([]string{"--config", filepath.Join(dir, "posbridge.yaml"), "-q"}, args...)...)
		cmd.Env, cmd.Dir = env, dir
		return cmd
	}
	ok := func(args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		if out, err := command(args...).CombinedOutput(); err != nil {
			t.Fatalf("posbridge %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start)
	}
	ok("init")
	d := openState(t, target)
	t.Cleanup(func() { d.Close() })
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := d.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	const perFile = 1000
	files := 0
	var want []string // every messageId written
	newFile := func() string {
		t.Helper()
		files++
		var b bytes.Buffer
		for i := 0; i < perFile; i++ {
			id := fmt.Sprintf("%d", files*100000+i)
			want = append(want, id)
			fmt.Fprintf(&b, `{"messageId":%s,"eventType":"SUBORDER_CREATE","orderCode":"SO%s","omsSubOrderId":%s,"locationCode":"101","channelType":"ERP","isPriority":false,"subOrderItems":[{"omsSubOrderItemId":%s,"channelSkuCode":"SKU-%d","orderedQuantity":1,"sellingPricePerUnit":10.5}]}`+"\n",
				id, id, id, id, i%97)
		}
		p := filepath.Join(out, fmt.Sprintf("events-%02d.ndjson", files))
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rng := rand.New(rand.NewPCG(14, 1))
	push := func(file string) []string {
		return []string{"push", "--site", "pos", "--endpoint", "/pos/sales", file}
	}

	// A first file pushed whole sets how long a run takes.
	file := newFile()
	whole := ok(push(file)...)
	t.Logf("a push of %d records: %v", perFile, whole)
	killed, finished, answerLost := 0, 0, 0
	deadline := time.Now().Add(25 * time.Second)
	for round := 1; round <= rounds && time.Now().Before(deadline); round++ {
		if _, err := os.Stat(file); err != nil {
			file = newFile()
		}
		cmd := command(push(file)...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(whole)*6/5 + 1)))
		cmd.Process.Kill()
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
			// Records the server got whose answer the ledger does not
			// hold: the next run sends them again, with the same key.
			received, _, _ := srv.counts()
			if n := count(`SELECT count(*) FROM http_deliveries WHERE status = 'done'`); len(received) > n {
				answerLost++
			}
			whole = whole * 21 / 20
			continue
		}
		if err != nil {
			t.Fatalf("round %d: posbridge push failed by itself: %v\n%s", round, err, buf.Bytes())
		}
		finished++
		whole = whole * 3 / 4
	}
	// The final run finishes whatever a kill left.
	if _, err := os.Stat(file); err == nil {
		ok(push(file)...)
	}

	received, acked, requests := srv.counts()
	var missing, unacked []string
	resent := 0
	for _, id := range want {
		switch {
		case received[id] == 0:
			missing = append(missing, id)
		case acked[id] == 0:
			unacked = append(unacked, id)
		}
		if received[id] > 1 {
			resent++
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d records never reached the server: %v", len(missing), len(want), firstFew(missing))
	}
	if len(unacked) > 0 {
		t.Errorf("%d records reached the server but were never answered with success: %v", len(unacked), firstFew(unacked))
	}
	if n := count(`SELECT count(*) FROM http_deliveries WHERE status = 'done'`); n != len(want) {
		t.Errorf("%d done rows in the delivery ledger, want %d", n, len(want))
	}
	if n := count(`SELECT count(*) FROM http_deliveries WHERE status <> 'done'`); n != 0 {
		t.Errorf("%d delivery rows not done after the final run", n)
	}
	// Each key once, and exactly the keys written.
	rows, err := d.Query(`SELECT key, count(*) FROM http_deliveries WHERE status = 'done' GROUP BY key`)
	if err != nil {
		t.Fatal(err)
	}
	inLedger := map[string]bool{}
	for rows.Next() {
		var key string
		var n int
		if err := rows.Scan(&key, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("key %s acknowledged %d times in the ledger", key, n)
		}
		inLedger[key] = true
	}
	rows.Close()
	for _, id := range want {
		if !inLedger[id] {
			t.Errorf("messageId %s has no done row in the ledger", id)
			break
		}
	}
	// A record sent twice carried the same Idempotency-Key each time.
	if bad := srv.keyMismatches(); len(bad) > 0 {
		t.Errorf("records sent again with another Idempotency-Key: %v", firstFew(bad))
	}
	// Every file in sent/, nothing left beside them.
	des, _ := os.ReadDir(out)
	for _, de := range des {
		if de.Name() != "sent" {
			t.Errorf("%s left in the outbox after the final run", de.Name())
		}
	}
	des, _ = os.ReadDir(filepath.Join(out, "sent"))
	var sent []string
	for _, de := range des {
		sent = append(sent, de.Name())
	}
	sort.Strings(sent)
	if len(sent) != files {
		t.Errorf("sent/ holds %v, want the %d files pushed", sent, files)
	}
	if n := count(`SELECT count(*) FROM transfers WHERE direction = 'push' AND status = 'done'`); n != files {
		t.Errorf("%d done push rows in the transfer ledger, want %d (one per file)", n, files)
	}
	t.Logf("%d files of %d records, %d runs killed (%d of them between a request and the ledger row of its answer), %d finished before their kill; %d requests for %d records (%d records sent more than once: answers lost to a kill)",
		files, perFile, killed, answerLost, finished, requests, len(want), resent)
	if killed == 0 {
		t.Errorf("no run was killed before its end: the kill times are off")
	}
	// Over 50 rounds some kills land between a request and its ledger row.
	if !testing.Short() && (answerLost == 0 || resent == 0) {
		t.Errorf("no kill landed between a request and its ledger row (%d), or none made a record go twice (%d): the kill times are off", answerLost, resent)
	}
}

// firstFew is the first few of a list, for messages.
func firstFew(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
