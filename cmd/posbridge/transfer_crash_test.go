package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The transfer tests of issue 13 that kill real runs: pushes and pulls of
// a local site and of an SFTP site (the OpenSSH sshd) are killed with
// SIGKILL at random moments, round after round, while a partner takes the
// pushed files from the site and a consumer takes the pulled ones from the
// local folder. In the end every file has arrived exactly once with its
// bytes, the ledger holds one done row per file and nothing started, and
// no temporary file is left on either side. Each kill is classified by the
// state it left (docs/transfers.md, "Recovery after a kill").

// transferRig is a data folder, a posbridge.yaml with the site "s" whose
// folders inbox, outbox and archive are under siteDir on this machine,
// and the posbridge commands run there.
type transferRig struct {
	t       *testing.T
	dir     string
	siteDir string
	env     []string
	db      *sql.DB
	rng     *rand.Rand
	// kills counts the states the kills left, by name.
	kills map[string]int
}

func newTransferRig(t *testing.T, dir, siteDir, site string) *transferRig {
	t.Helper()
	for _, d := range []string{"inbox", "outbox", "archive"} {
		if err := os.MkdirAll(filepath.Join(siteDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "sites:\n  s:\n" + site + "    parallel: 4\n    folders: {inbox: inbox, outbox: outbox, archive: archive}\n"
	if err := os.WriteFile(filepath.Join(dir, "posbridge.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env, target := stateEnv(t, dir)
	r := &transferRig{t: t, dir: dir, siteDir: siteDir, rng: rand.New(rand.NewPCG(13, 1)), kills: map[string]int{},
		env: append(env, "SSH_AUTH_SOCK=")}
	r.ok("init")
	d := openState(t, target)
	t.Cleanup(func() { d.Close() })
	r.db = d.DB
	return r
}

func (r *transferRig) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("posbridge", append([]string{"--config", filepath.Join(r.dir, "posbridge.yaml"), "-q"}, args...)...)
	cmd.Env, cmd.Dir = r.env, r.dir
	return cmd
}

func (r *transferRig) ok(args ...string) time.Duration {
	r.t.Helper()
	start := time.Now()
	if out, err := r.cmd(args...).CombinedOutput(); err != nil {
		r.t.Fatalf("posbridge %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

func (r *transferRig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.QueryRow(q, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// killed runs args and kills it with SIGKILL after a random part of up to
// 1.2 times *whole; it reports whether the kill came before the end.
// *whole follows how long runs take: shorter after a run that ended
// before its kill, longer after one that did not.
func (r *transferRig) killed(whole *time.Duration, args ...string) bool {
	r.t.Helper()
	if r.killedAt(*whole, args...) {
		*whole = *whole * 21 / 20
		return true
	}
	*whole = *whole * 3 / 4
	return false
}

func (r *transferRig) killedAt(whole time.Duration, args ...string) bool {
	r.t.Helper()
	cmd := r.cmd(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	time.Sleep(time.Duration(r.rng.Int64N(int64(whole)*6/5 + 1)))
	cmd.Process.Kill()
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true
	}
	if err != nil {
		r.t.Fatalf("posbridge %s failed by itself: %v\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return false
}

// classify counts the state a killed run left: for each started row, how
// far it got, looking at the files it names.
func (r *transferRig) classify(out string) {
	r.t.Helper()
	rows, err := r.db.Query(`SELECT direction, remote_path, local_path, stage FROM transfers WHERE status = 'started'`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	pending := map[string]bool{}
	for rows.Next() {
		var dir, remote, local, stage string
		if err := rows.Scan(&dir, &remote, &local, &stage); err != nil {
			r.t.Fatal(err)
		}
		final := filepath.Join(r.siteDir, filepath.FromSlash(remote))
		if dir == "pull" {
			final = local
		}
		tmp := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".tmp")
		pending[tmp] = true
		switch {
		case stage != "rename":
			r.kills[dir+" in the transfer"]++
		case exists(final) && !exists(tmp):
			r.kills[dir+" after the rename, before the ledger"]++
		default:
			r.kills[dir+" before the rename"]++
		}
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	// Killed in the upload or download: a temporary file of no row.
	for dir, folder := range map[string]string{"push": filepath.Join(r.siteDir, "inbox"), "pull": filepath.Join(r.dir, "in")} {
		des, _ := os.ReadDir(folder)
		for _, de := range des {
			if p := filepath.Join(folder, de.Name()); strings.HasSuffix(p, ".tmp") && !pending[p] {
				r.kills[dir+" in the transfer"]++
			}
		}
	}
	// Recorded done, not yet deleted or archived on the site.
	des, _ := os.ReadDir(filepath.Join(r.siteDir, "outbox"))
	for _, de := range des {
		if r.count(`SELECT count(*) FROM transfers WHERE direction = 'pull' AND status = 'done' AND remote_path = ?`, "outbox/"+de.Name()) > 0 {
			r.kills["pull after the ledger, before --after"]++
		}
	}
	// Recorded done, not yet moved to sent/.
	des, _ = os.ReadDir(out)
	for _, de := range des {
		if !de.IsDir() && r.count(`SELECT count(*) FROM transfers WHERE direction = 'push' AND status = 'done' AND local_path = ?`,
			filepath.Join(out, de.Name())) > 0 {
			r.kills["push after the ledger, before sent/"]++
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// take moves the files of folder (not the temporary ones) away, as a
// partner or an import would, each with a probability; it counts each
// name and checks its bytes.
func (r *transferRig) take(folder string, p float64, want map[string]string, got map[string]int) {
	r.t.Helper()
	des, err := os.ReadDir(folder)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || strings.HasPrefix(name, ".") || r.rng.Float64() >= p {
			continue
		}
		b, err := os.ReadFile(filepath.Join(folder, name))
		if err != nil {
			r.t.Fatal(err)
		}
		if w, ok := want[name]; !ok || sum(b) != w {
			r.t.Errorf("%s in %s: %d bytes that are not the file's (known %v)", name, folder, len(b), ok)
		}
		got[name]++
		if err := os.Remove(filepath.Join(folder, name)); err != nil {
			r.t.Fatal(err)
		}
	}
}

// files writes n new files named PREFIX_ROUND_I.csv into folder, one in
// seven with a marker, and records their sha256 in want.
func (r *transferRig) files(folder, prefix string, round, n int, want map[string]string, old bool) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s_%02d_%03d.csv", prefix, round, i)
		b := bytes.Repeat([]byte(fmt.Sprintf("%s,%d\n", name, r.rng.IntN(1000))), 1+r.rng.IntN(3000))
		names := map[string][]byte{name: b}
		if i%7 == 0 {
			names[name+".done"] = nil
		}
		for nm, body := range names {
			p := filepath.Join(folder, nm)
			if err := os.WriteFile(p, body, 0o644); err != nil {
				r.t.Fatal(err)
			}
			if old {
				t := time.Now().Add(-time.Hour)
				os.Chtimes(p, t, t)
			}
			want[nm] = sum(body)
		}
	}
}

// check says that every file arrived once, the ledger holds one done row
// of the direction for each and nothing started or failed, and no
// temporary file is left in the folders.
func (r *transferRig) check(direction string, want map[string]string, got map[string]int, folders ...string) {
	r.t.Helper()
	var twice, missing []string
	for name := range want {
		switch got[name] {
		case 1:
		case 0:
			missing = append(missing, name)
		default:
			twice = append(twice, fmt.Sprintf("%s (%d times)", name, got[name]))
		}
	}
	sort.Strings(missing)
	sort.Strings(twice)
	if len(missing) > 0 || len(twice) > 0 {
		r.t.Errorf("%s: %d of %d files never arrived %v; arrived more than once: %v", direction, len(missing), len(want), missing, twice)
	}
	if n := r.count(`SELECT count(*) FROM transfers WHERE direction = ? AND status = 'done'`, direction); n != len(want) {
		r.t.Errorf("%s: %d done rows, want %d", direction, n, len(want))
	}
	if n := r.count(`SELECT count(*) FROM (SELECT remote_path FROM transfers WHERE direction = ? GROUP BY remote_path HAVING count(*) > 1) AS d`, direction); n != 0 {
		r.t.Errorf("%s: %d files with more than one ledger row", direction, n)
	}
	if n := r.count(`SELECT count(*) FROM transfers WHERE status <> 'done'`); n != 0 {
		r.t.Errorf("%d ledger rows started or failed after the last run", n)
	}
	for _, f := range folders {
		des, _ := os.ReadDir(f)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".") {
				r.t.Errorf("temporary file %s left in %s", de.Name(), f)
			}
		}
	}
}

// pushAndPullKilled is the test of one site: rounds of pushes and then
// rounds of pulls, each killed at a random moment.
func pushAndPullKilled(t *testing.T, r *transferRig, rounds, perRound int) {
	out := filepath.Join(r.dir, "out")
	in := filepath.Join(r.dir, "in")
	inbox := filepath.Join(r.siteDir, "inbox")
	outbox := filepath.Join(r.siteDir, "outbox")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(in, 0o755)

	// First the state a kill right after the rename leaves, made exactly:
	// the site holds the file, its row is started at stage rename, the
	// local file is not in sent/ (over SFTP this is also a rename whose
	// reply was lost). The next push finishes it from the ledger.
	k := filepath.Join(out, "k.csv")
	os.WriteFile(k, []byte("k,1\n"), 0o644)
	r.ok("push", "--site", "s", k)
	if err := os.Rename(filepath.Join(out, "sent", "k.csv"), k); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.Exec(`UPDATE transfers SET status = 'started' WHERE stage = 'rename'`); err != nil {
		t.Fatal(err)
	}
	if b, err := r.cmd("push", "--site", "s", k).CombinedOutput(); err != nil || !strings.Contains(string(b), "got as far as the rename") {
		t.Fatalf("push after a kill after the rename: %v\n%s", err, b)
	}
	if b, _ := os.ReadFile(filepath.Join(inbox, "k.csv")); string(b) != "k,1\n" || exists(k) {
		t.Fatalf("site file %q, local file left %v", b, exists(k))
	}
	os.Remove(filepath.Join(inbox, "k.csv"))
	os.Remove(filepath.Join(out, "sent", "k.csv"))
	if _, err := r.db.Exec(`DELETE FROM transfers`); err != nil {
		t.Fatal(err)
	}

	// push: each round adds files; what a killed round left is finished by
	// the next. Between rounds the partner takes about half the files.
	want, got := map[string]string{}, map[string]int{}
	r.files(out, "p", 0, perRound, want, false)
	whole := r.ok("push", "--site", "s", "--from", out)
	killed := 0
	for round := 1; round <= rounds; round++ {
		r.take(inbox, 0.5, want, got)
		r.files(out, "p", round, perRound, want, false)
		if r.killed(&whole, "push", "--site", "s", "--from", out) {
			killed++
			r.classify(out)
		}
	}
	r.take(inbox, 0.5, want, got)
	r.ok("push", "--site", "s", "--from", out)
	r.take(inbox, 1, want, got)
	r.check("push", want, got, inbox, out)
	if des, _ := os.ReadDir(out); len(des) != 1 || des[0].Name() != "sent" {
		t.Errorf("files left in the outbox after the last push: %v", des)
	}
	if des, _ := os.ReadDir(filepath.Join(out, "sent")); len(des) != len(want) {
		t.Errorf("%d files in sent/, want %d", len(des), len(want))
	}
	t.Logf("push: %d files, %d of %d runs killed before their end", len(want), killed, rounds)

	// pull --after archive: each round the partner puts files in the
	// outbox; between rounds an import takes about half the pulled ones.
	pulled, taken := map[string]string{}, map[string]int{}
	r.files(outbox, "q", 0, perRound, pulled, true)
	args := []string{"pull", "--site", "s", "--from", "outbox", "--to", in, "--after", "archive", "--min-age", "0s", "--stable-wait", "0s"}
	whole = r.ok(args...)
	killed = 0
	for round := 1; round <= rounds; round++ {
		r.take(in, 0.5, pulled, taken)
		r.files(outbox, "q", round, perRound, pulled, true)
		if r.killed(&whole, args...) {
			killed++
			r.classify(out)
		}
	}
	r.take(in, 0.5, pulled, taken)
	r.ok(args...)
	r.take(in, 1, pulled, taken)
	r.check("pull", pulled, taken, in)
	if des, _ := os.ReadDir(outbox); len(des) != 0 {
		t.Errorf("%d files left in the site's outbox", len(des))
	}
	// Archived once each: no second copy with a time appended.
	archived := map[string]int{}
	des, _ := os.ReadDir(filepath.Join(r.siteDir, "archive"))
	for _, de := range des {
		archived[de.Name()]++
	}
	if len(archived) != len(pulled) {
		t.Errorf("%d files in the archive, want %d", len(archived), len(pulled))
	}
	for name := range pulled {
		if archived[name] != 1 {
			t.Errorf("%s archived %d times", name, archived[name])
		}
	}
	t.Logf("pull: %d files, %d of %d runs killed before their end", len(pulled), killed, rounds)

	var states []string
	for k, n := range r.kills {
		states = append(states, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(states)
	t.Logf("states the kills left (files): %s", strings.Join(states, "; "))
	// The kills are random; over both directions some land between a
	// rename and its ledger row (the exact state is made above).
	if r.kills["push after the rename, before the ledger"]+r.kills["pull after the rename, before the ledger"] == 0 {
		t.Errorf("no kill landed between a rename and its ledger row: the kill times are off")
	}
}

// Pushes to and pulls from a local site, killed at random.
func TestTransferKilledLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	r := newTransferRig(t, dir, site, "    type: local\n    dir: "+site+"\n")
	pushAndPullKilled(t, r, 30, 10)
}

// Pushes to and pulls from an SFTP site served by the OpenSSH sshd,
// killed at random: a kill right after the rename request is the rename
// whose reply was lost.
func TestTransferKilledSFTP(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	port, key, kh := realSSHD(t, dir, site)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	r := newTransferRig(t, dir, site, fmt.Sprintf("    type: sftp\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key_file: %s\n    known_hosts: %s\n",
		port, u.Username, key, kh))
	pushAndPullKilled(t, r, 30, 10)
}
