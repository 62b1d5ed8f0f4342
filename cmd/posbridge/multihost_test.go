package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// The multi-host tests of issue 17: posbridge processes with different
// host names (each in a UTS namespace of its own, under unshare --uts) and
// data folders of their own, sharing one PostgreSQL database. Exports of
// one kind on ten hosts at once, of four kinds on four hosts, imports of
// one folder on two hosts, hosts killed mid-export, mid-import and holding
// a job's locks, the database's sessions cut in the middle of a job, and
// its server stopped and started again in the middle of one.
// They need PostgreSQL (pgtest.Start) and the right to make namespaces
// (root); without either they skip, except under CI=true, where they fail.

// unshareProbe is whether this machine lets a process take a host name of
// its own, probed once.
var unshareProbe struct {
	sync.Once
	err error
}

// requireUnshare skips t (fails it under CI=true) when a process cannot
// run under a host name of its own.
func requireUnshare(t *testing.T) {
	t.Helper()
	unshareProbe.Do(func() {
		out, err := exec.Command("unshare", "--uts", "sh", "-c", "hostname pbprobe && hostname").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) != "pbprobe" {
			err = fmt.Errorf("the host name in the namespace is %q", out)
		}
		if err != nil {
			unshareProbe.err = fmt.Errorf("unshare --uts: %v: %s", err, bytes.TrimSpace(out))
		}
	})
	if unshareProbe.err == nil {
		return
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%v; CI runs the multi-host tests as root", unshareProbe.err)
	}
	t.Skipf("%v; the multi-host tests need to set a host name (root)", unshareProbe.err)
}

// onHost is the command posbridge args under the host name host: unshare
// makes a UTS namespace, sh names the host in it and then becomes
// posbridge, so that the command's process is posbridge itself (a SIGKILL
// kills posbridge, its exit code is posbridge's).
func onHost(t *testing.T, host string, args ...string) *exec.Cmd {
	t.Helper()
	requireUnshare(t)
	bin, err := exec.LookPath("posbridge")
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command("unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, host, bin}, args...)...)
}

// cluster is several hosts sharing one PostgreSQL database, and a
// connection of the test's own to it.
type cluster struct {
	t     *testing.T
	url   string
	db    *sql.DB
	hosts []*exportEnv
}

// newCluster makes n hosts, host1 to hostN, each with a data folder of its
// own and env added to its commands' environment, on a new database.
func newCluster(t *testing.T, n int, env ...string) *cluster {
	t.Helper()
	return newClusterOn(t, pgtest.Start, n, env...)
}

// newClusterOn is newCluster on the database that database makes for t.
func newClusterOn(t *testing.T, database func(testing.TB) string, n int, env ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real processes on PostgreSQL; skipped with -short")
	}
	requireUnshare(t)
	c := &cluster{t: t, url: database(t)}
	d, err := sql.Open("pgx", c.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// One session, so that cutting all the others (cutDuring) never cuts
	// the test's own.
	d.SetMaxOpenConns(1)
	c.db = d
	for i := 0; i < n; i++ {
		e := newExportEnv(t, append([]string{"POSBRIDGE_DATABASE=" + c.url}, env...)...)
		e.host = fmt.Sprintf("host%d", i+1)
		c.hosts = append(c.hosts, e)
	}
	return c
}

// count runs a query of one integer on the database.
func (c *cluster) count(query string, args ...any) int64 {
	c.t.Helper()
	var n int64
	if err := c.db.QueryRow(query, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ran checks that the runs of the database were recorded by each of hosts:
// the processes did run under the host names given.
func (c *cluster) ran(hosts ...*exportEnv) {
	c.t.Helper()
	for _, h := range hosts {
		if c.count(`SELECT count(*) FROM runs WHERE host = $1`, h.host) == 0 {
			c.t.Errorf("no run of %s in the database: did the command run under its host name?", h.host)
		}
	}
}

// outcome is how one posbridge process ended.
type outcome struct {
	host   string
	args   string
	code   int
	killed bool
	out    string
	took   time.Duration
}

func (o outcome) String() string {
	return fmt.Sprintf("%s: posbridge %s: exit %d after %s\n%s", o.host, o.args, o.code, o.took.Round(time.Millisecond), o.out)
}

// started is a posbridge process running.
type started struct {
	t     *testing.T
	host  string
	args  []string
	cmd   *exec.Cmd
	out   bytes.Buffer
	begin time.Time
}

// start starts posbridge args on host h.
func start(h *exportEnv, args ...string) *started {
	h.t.Helper()
	s := &started{t: h.t, host: h.host, args: args, cmd: h.cmd(args...)}
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.begin = time.Now()
	if err := s.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// wait waits for the process to end.
func (s *started) wait() outcome {
	s.t.Helper()
	err := s.cmd.Wait()
	o := outcome{host: s.host, args: strings.Join(s.args, " "), took: time.Since(s.begin), out: s.out.String()}
	if s.cmd.ProcessState == nil {
		s.t.Fatalf("%s: %v", o.args, err)
	}
	o.code = s.cmd.ProcessState.ExitCode()
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		o.killed = true
	}
	return o
}

// runAll starts a command on every host at the same moment, args(i) on
// the i-th, and waits for them all.
func runAll(hosts []*exportEnv, args func(i int) []string) []outcome {
	var runs []*started
	for i, h := range hosts {
		runs = append(runs, start(h, args(i)...))
	}
	outs := make([]outcome, len(runs))
	for i, s := range runs {
		outs[i] = s.wait()
	}
	return outs
}

// run runs posbridge args on host h and fails the test unless it exits
// with one of codes.
func run(h *exportEnv, codes []int, args ...string) outcome {
	h.t.Helper()
	o := start(h, args...).wait()
	expectExit(h.t, o, codes...)
	return o
}

// expectExit fails t unless o exited with one of codes, and says nothing
// of a constraint or a panic.
func expectExit(t *testing.T, o outcome, codes ...int) {
	t.Helper()
	ok := false
	for _, c := range codes {
		ok = ok || o.code == c
	}
	if !ok || o.killed {
		t.Errorf("want exit %v; %s", codes, o)
	}
	for _, bad := range []string{"constraint", "duplicate key", "SQLSTATE 23", "panic:"} {
		if strings.Contains(o.out, bad) {
			t.Errorf("output says %q; %s", bad, o)
		}
	}
}

// poll calls cond every few milliseconds until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// outboxes is the items outboxes of the hosts, those that exist.
func (c *cluster) outboxes() []string {
	var dirs []string
	for _, h := range c.hosts {
		if _, err := os.Stat(h.outbox()); err == nil {
			dirs = append(dirs, h.outbox())
		}
	}
	return dirs
}

// gapFree checks the out files of kind in the ledger: all complete, their
// sequence numbers 1 to N in the order the files were recorded.
func (c *cluster) gapFree(kind string) int {
	c.t.Helper()
	rows, err := c.db.Query(`SELECT name, status FROM files WHERE direction = 'out' AND kind = $1 ORDER BY id`, kind)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, status string
		if err := rows.Scan(&name, &status); err != nil {
			c.t.Fatal(err)
		}
		n++
		m := exportFileName.FindStringSubmatch(name)
		if m == nil || m[1] != kind {
			c.t.Errorf("ledger: %q is not a %s export file name", name, kind)
			continue
		}
		if seq, _ := strconv.Atoi(m[2]); seq != n || status != "complete" {
			c.t.Errorf("ledger: %s file %d is %s with sequence %d, want complete with %d", kind, n, status, seq, n)
		}
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return n
}

// loadItems writes a catalogue of n items into a file in h's folder and
// loads it on h; it returns the catalogue and the file, which a change of
// the catalogue rewrites.
func loadItems(t *testing.T, h *exportEnv, n int) (*catalogState, string) {
	t.Helper()
	cat := newCatalog(n)
	load := filepath.Join(h.dir, "items.csv")
	cat.write(t, load, cat.keys())
	h.ok("load", "items", load, "-q")
	return cat, load
}

// TestMultiHostExportSameKind starts export items on ten hosts at the same
// moment, each writing into its own outbox, three times with a load of
// changes between: the runs that find the kind's export busy exit 75,
// those with nothing left exit 0, and every trigger goes out in exactly one
// complete file, the sequence gap-free in the order the files were made.
func TestMultiHostExportSameKind(t *testing.T) {
	c := newCluster(t, 10)
	h1 := c.hosts[0]
	rng := rand.New(rand.NewPCG(17, 1))
	cat, load := loadItems(t, h1, 2000)
	codes := map[int]int{}
	for round := 0; round < 3; round++ {
		if round > 0 {
			cat.change(t, rng, load, 3000, false)
			h1.ok("load", "items", load, "--mode", "delta", "-q")
		}
		wrote := 0
		for _, o := range runAll(c.hosts, func(int) []string {
			return []string{"export", "items", "--max-records", "500"}
		}) {
			expectExit(t, o, 0, 75)
			codes[o.code]++
			wrote += strings.Count(o.out, "items: wrote ")
		}
		if wrote == 0 {
			t.Errorf("round %d: no host wrote a file", round)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	files, _ := h1.check(cat, c.outboxes()...)
	if n := c.gapFree("items"); n != files {
		t.Errorf("%d files in the ledger, %d complete ones checked", n, files)
	}
	c.ran(c.hosts...)
	t.Logf("%d files; exit codes of the 30 runs: %v", files, codes)
}

// writeCSV writes a CSV file of a header and n rows made by row.
func writeCSV(t *testing.T, path, header string, n int, row func(i int) string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for i := 0; i < n; i++ {
		b.WriteString(row(i) + "\n")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeVendors writes a vendors file of n vendors.
func writeVendors(t *testing.T, path string, n int) {
	writeCSV(t, path, "vendor,name,address1,address2,city,state,postal_code,country,contact,email,phone", n, func(i int) string {
		return fmt.Sprintf("V%05d,Vendor %d,%d Main St,,Denver,CO,80202,US,Contact %d,v%d@example.com,303-555-0100", i, i, i, i, i)
	})
}

// writeCustomers writes a customers file of n customers.
func writeCustomers(t *testing.T, path string, n int) {
	writeCSV(t, path, "customer,alt_customer,customer_class,first_name,last_name,company_name,address1,address2,city,state,postal_code,country,email,phone,email_opt_in", n, func(i int) string {
		return fmt.Sprintf("%d,,RT,First%d,Last%d,,%d Main St,,Denver,CO,80202,US,c%d@example.com,303-555-0100,Y", 200000+i, i, i, i, i)
	})
}

// TestMultiHostExportFourKinds exports items, vendors, customers and
// inventory, each on a host of its own, all four at once: every run
// succeeds, every trigger is processed, and each kind's sequence is
// gap-free. It logs how much faster the four at once were than the same
// four one after another; the figure (three times with four
// processes) is make bench's to measure, not a test's on a shared
// machine. Both timed rounds send triggers made by trigger generate, after
// a first round of the loads' triggers, so that they do the same work on
// tables in the same state.
func TestMultiHostExportFourKinds(t *testing.T) {
	c := newCluster(t, 4)
	h1 := c.hosts[0]
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	h1.ok("load", "warehouses", filepath.Join(root, "testdata", "demo", "warehouses.csv"), "-q")
	cat := newCatalog(2000)
	keys := cat.keys()
	files := map[string]string{}
	for _, kind := range []string{"items", "vendors", "customers", "inventory"} {
		files[kind] = filepath.Join(h1.dir, kind+".csv")
	}
	cat.write(t, files["items"], keys)
	writeVendors(t, files["vendors"], 3000)
	writeCustomers(t, files["customers"], 10000)
	writeCSV(t, files["inventory"], "item,sku,warehouse,location,on_hand,reserved,threshold", len(keys), func(i int) string {
		return fmt.Sprintf("%s,%s,DC1,A%02d,%d,0,0", keys[i].item, keys[i].sku, i%50, 1+i%90)
	})
	kinds := []string{"items", "vendors", "customers", "inventory"}
	for _, kind := range kinds {
		h1.ok("load", kind, files[kind], "-q")
	}
	export := func(i int) []string { return []string{"export", kinds[i], "--max-records", "1000"} }
	// again makes a trigger for every record of the four kinds.
	again := func() int64 {
		for _, typ := range []string{"item", "vendor", "customer", "inventory"} {
			h1.ok("trigger", "generate", "--type", typ, "-q")
		}
		return c.count(`SELECT count(*) FROM triggers WHERE status = 'ready'`)
	}

	outs := runAll(c.hosts, export)
	again()
	begin := time.Now()
	for i, h := range c.hosts {
		run(h, []int{0}, export(i)...)
	}
	serial := time.Since(begin)
	if t.Failed() {
		t.FailNow()
	}
	ready := again()
	begin = time.Now()
	outs = append(outs, runAll(c.hosts, export)...)
	parallel := time.Since(begin)
	for i, o := range outs {
		expectExit(t, o, 0)
		if kind := kinds[i%4]; !strings.Contains(o.out, kind+": wrote ") {
			t.Errorf("%s wrote nothing; %s", kind, o)
		}
	}
	if n := c.count(notSent); n != 0 {
		t.Errorf("%d triggers not processed after the exports", n)
	}
	for _, kind := range kinds {
		c.gapFree(kind)
	}
	c.ran(c.hosts...)
	t.Logf("4 kinds one after another: %s; at once (%d triggers): %s; %.1fx as fast",
		serial.Round(time.Millisecond), ready, parallel.Round(time.Millisecond), float64(serial)/float64(parallel))
}

// txnFiles writes n files of recs receipts and positive adjustments each
// (whose effect does not depend on the order in which hosts apply the
// files) over the demo inventory rows into dir, named prefix-NN.csv, and
// applies them to the model.
func txnFiles(t *testing.T, dir, prefix string, n, recs int, demo *txnDemo, model *txnModel, rng *rand.Rand) []*txnFile {
	t.Helper()
	var out []*txnFile
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%02d.csv", prefix, i)
		rs := make([]txnRecord, recs)
		for j := range rs {
			k := demo.rows[rng.IntN(len(demo.rows))]
			code := []string{"R", "A"}[rng.IntN(2)]
			rs[j] = txnRecord{code: code, item: k.item, sku: k.sku, wh: k.wh, loc: k.loc,
				qty: strconv.Itoa(1 + rng.IntN(20)), reference: fmt.Sprintf("%s-%02d-%05d", prefix, i, j)}
		}
		path := filepath.Join(dir, name)
		lines := writeTxnFile(t, path, rs, false)
		f := &txnFile{name: name, sha: fileSHA(t, path), goodLines: map[int]bool{}, records: recs}
		for j, r := range rs {
			if !model.apply(r) {
				t.Fatalf("%s line %d: the model rejects %+v", name, lines[j], r)
			}
			f.good++
			f.goodLines[lines[j]] = true
		}
		out = append(out, f)
	}
	return out
}

// newImportCluster is a cluster of n hosts, env added to their commands'
// environment, with the demo master data and
// inventory loaded, and a folder for inventory transaction files that all
// of them read (a shared mount).
func newImportCluster(t *testing.T, n int, env ...string) (c *cluster, in string, demo *txnDemo, model *txnModel) {
	c = newCluster(t, n, append([]string{"POSBRIDGE_IMPORT_MIN_AGE=0s"}, env...)...)
	in, demo, model = importFolder(t, c.hosts[0])
	return c, in, demo, model
}

// importFolder loads the demo master data and inventory on h and makes a
// folder for inventory transaction files.
func importFolder(t *testing.T, h *exportEnv) (in string, demo *txnDemo, model *txnModel) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"warehouses", "vendors", "items", "inventory"} {
		h.ok("load", kind, filepath.Join(root, "testdata", "demo", kind+".csv"), "-q")
	}
	demo = readTxnDemo(t)
	in = filepath.Join(t.TempDir(), "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	return in, demo, newTxnModel(demo, nil)
}

// checkFolder checks that every one of files is in processed/ and nothing
// is left in the folder but processed/.
func checkFolder(t *testing.T, in string, files []*txnFile) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(in, "processed", f.name)); err != nil {
			t.Errorf("%s is not in processed/: %v", f.name, err)
		}
	}
	entries, err := os.ReadDir(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if ent.Name() != "processed" {
			t.Errorf("%s is left in the input folder", ent.Name())
		}
	}
}

// TestMultiHostImportSameFolder starts import inventory-transactions of
// one folder on two hosts at the same moment, three times with new files
// arriving between (importSameFolder).
func TestMultiHostImportSameFolder(t *testing.T) {
	c, in, demo, model := newImportCluster(t, 2)
	importSameFolder(t, c.hosts, c.db, in, demo, model)
	c.ran(c.hosts...)
}

// TestImportSameFolderTwoProcesses is TestMultiHostImportSameFolder with
// two processes on one host sharing the suite's database: a SQLite file
// (or PostgreSQL under POSBRIDGE_TEST_BACKEND=postgres), where a folder
// run of cron overlapping a job's is the same race.
func TestImportSameFolderTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	h1 := newExportEnv(t, "POSBRIDGE_IMPORT_MIN_AGE=0s")
	h2 := newExportEnv(t, "POSBRIDGE_IMPORT_MIN_AGE=0s", "POSBRIDGE_DATABASE="+h1.target)
	in, demo, model := importFolder(t, h1)
	d := openState(t, h1.target)
	defer d.Close()
	importSameFolder(t, []*exportEnv{h1, h2}, d.DB, in, demo, model)
}

// importSameFolder runs import inventory-transactions of the folder in on
// two hosts at the same moment, three times with new files arriving
// between: each exits 0 or 75, neither reports a constraint error nor
// fails on a file the other took, and every file is applied exactly
// once: one ledger row each, each record once in the history, the on hand
// what one application makes.
func importSameFolder(t *testing.T, hosts []*exportEnv, d *sql.DB, in string, demo *txnDemo, model *txnModel) {
	t.Helper()
	rng := rand.New(rand.NewPCG(17, 3))
	var files []*txnFile
	codes := map[int]int{}
	taken := 0
	for round := 0; round < 3; round++ {
		files = append(files, txnFiles(t, in, fmt.Sprintf("r%d", round), 4, 400, demo, model, rng)...)
		for _, o := range runAll(hosts, func(int) []string {
			return []string{"import", "inventory-transactions", in, "-q"}
		}) {
			expectExit(t, o, 0, 75)
			codes[o.code]++
			taken += strings.Count(o.out, "by another run")
		}
	}
	// What a run that found the folder busy left, the next one does.
	run(hosts[1], []int{0}, "import", "inventory-transactions", in, "-q")
	checkFolder(t, in, files)
	checkApplied(t, d, files, model)
	t.Logf("exit codes of the 6 concurrent runs: %v; %d files taken or moved by the other run", codes, taken)
}

// leaseTTL is the lease of the killed hosts' locks and claims
// (locks.ttl): short, so that the others take over soon.
const leaseTTL = "POSBRIDGE_LOCKS_TTL=2s"

// kill kills s with SIGKILL once cond holds, and fails the test if the
// process ended before.
func kill(t *testing.T, s *started, what string, cond func() bool) {
	t.Helper()
	if !poll(30*time.Second, cond) {
		s.cmd.Process.Kill()
		t.Fatalf("%s did not happen within 30s; %s", what, s.wait())
	}
	s.cmd.Process.Kill()
	if o := s.wait(); !o.killed {
		t.Fatalf("the process ended by itself before %s: make its work larger; %s", what, o)
	}
}

// untilDone runs posbridge args on h, which may exit 75 while what another
// host left is not its yet, again and again until it exits 0 and done
// holds, for at most 30s.
func untilDone(t *testing.T, h *exportEnv, done func() bool, args ...string) (runs int) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		o := run(h, []int{0, 75}, args...)
		runs++
		if t.Failed() {
			t.FailNow()
		}
		if o.code == 0 && done() {
			return runs
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not finish what the killed host left within 30s; last run: %s", h.host, o)
		}
	}
}

// claimedFiles counts the out files of the ledger that a run has claimed
// and not finished.
const claimedFiles = `SELECT count(*) FROM files WHERE direction = 'out' AND status IN ('writing', 'written')`

// notSent counts the triggers not processed in a complete file. A claim
// stores a trigger processed; it is processing until its file is complete.
const notSent = `SELECT count(*) FROM triggers t LEFT JOIN files f ON f.id = t.file_id
WHERE t.status <> 'processed' OR f.status IS DISTINCT FROM 'complete'`

// TestMultiHostKilledExport kills export items on host1 with SIGKILL
// in the middle of its files, with a file claimed; host2 runs the export
// until it is done (exit 75 while host1's claim is not yet its), then
// host1 comes back and exports too: every trigger is in exactly one
// complete file, no file is left unfinished, no temporary file is left in
// either outbox.
func TestMultiHostKilledExport(t *testing.T) {
	c := newCluster(t, 2, leaseTTL)
	h1, h2 := c.hosts[0], c.hosts[1]
	cat, _ := loadItems(t, h2, 2000)
	args := []string{"export", "items", "--max-records", "100"}
	kill(t, start(h1, args...), "three files and a claim", func() bool {
		return c.count(`SELECT count(*) FROM files WHERE direction = 'out' AND status = 'complete'`) >= 3 && c.count(claimedFiles) > 0
	})
	left := leftovers(t, h1.outbox())
	runs := untilDone(t, h2, func() bool {
		return c.count(claimedFiles) == 0 && c.count(notSent) == 0
	}, args...)
	run(h1, []int{0}, args...)
	files, abandoned := h2.check(cat, c.outboxes()...)
	c.ran(h1, h2)
	t.Logf("host1 killed with temporary files %q; host2 finished after %d runs: %d files, %d abandoned", left, runs, files, abandoned)
}

// TestMultiHostKilledImport kills import inventory-transactions on host1
// with SIGKILL after it applied some of the folder's files; host2 imports
// the same folder until it is done: every file is applied exactly once.
func TestMultiHostKilledImport(t *testing.T) {
	c, in, demo, model := newImportCluster(t, 2, leaseTTL)
	rng := rand.New(rand.NewPCG(17, 4))
	files := txnFiles(t, in, "k", 12, 2000, demo, model, rng)
	args := []string{"import", "inventory-transactions", in, "-q"}
	kill(t, start(c.hosts[0], args...), "two files applied", func() bool {
		return c.count(`SELECT count(*) FROM files WHERE direction = 'in' AND kind = 'inventory-transactions'`) >= 2
	})
	applied := c.count(`SELECT count(*) FROM files WHERE direction = 'in' AND kind = 'inventory-transactions'`)
	runs := untilDone(t, c.hosts[1], func() bool {
		entries, _ := os.ReadDir(in)
		return len(entries) == 1 // processed/
	}, args...)
	checkFolder(t, in, files)
	checkApplied(t, c.db, files, model)
	c.ran(c.hosts...)
	t.Logf("host1 killed after %d of %d files; host2 finished after %d runs", applied, len(files), runs)
}

// writeJobs writes the jobs config on every host, as posbridge.yaml in
// the folder its commands run in.
func (c *cluster) writeJobs(config string) {
	c.t.Helper()
	for _, h := range c.hosts {
		if err := os.WriteFile(filepath.Join(h.dir, "posbridge.yaml"), []byte(config), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestMultiHostKilledJobLock kills a run of a job on host1 with SIGKILL
// while it holds the job's locks, in the middle of its export: host2's run
// of the job exits 75 at once while host1's lease lasts, and with --wait
// takes the locks over once it has run out (locks.ttl 2s) and finishes the
// export; host1 comes back and runs the job too: every trigger in exactly
// one complete file, no temporary file left.
func TestMultiHostKilledJobLock(t *testing.T) {
	c := newCluster(t, 2, leaseTTL)
	h1, h2 := c.hosts[0], c.hosts[1]
	c.writeJobs("jobs:\n  items-out:\n    steps:\n      - command: export items\n        flags: {max-records: 100}\n")
	cat, _ := loadItems(t, h2, 2000)
	kill(t, start(h1, "run", "items-out"), "the job's locks and two files", func() bool {
		return c.count(`SELECT count(*) FROM locks WHERE job = 'items-out' AND host = 'host1'`) > 0 &&
			c.count(`SELECT count(*) FROM files WHERE direction = 'out' AND status = 'complete'`) >= 2
	})
	if o := run(h2, []int{75}, "run", "items-out"); !strings.Contains(o.out, "held by another run") {
		t.Errorf("host2's run while host1's lease lasts: %s", o)
	}
	o := run(h2, []int{0}, "run", "items-out", "--wait", "30s")
	if !strings.Contains(o.out, "took over a lock of a dead run") {
		t.Errorf("host2 finished without saying it took host1's locks over; %s", o)
	}
	if n := c.count(`SELECT count(*) FROM locks`); n != 0 {
		t.Errorf("%d locks left after host2's run", n)
	}
	run(h1, []int{0}, "run", "items-out")
	files, abandoned := h2.check(cat, c.outboxes()...)
	c.ran(h1, h2)
	t.Logf("host2 took over after %s: %d files, %d abandoned", o.took.Round(time.Millisecond), files, abandoned)
}

// cutDuring runs posbridge args on h and, from the moment its job runs
// the step command until it ends, cuts every session of the database but
// the test's own every 50ms, as a restart of PostgreSQL does (a new
// connection it opens meanwhile is cut too). It returns how the run ended
// and how many times the sessions were cut.
func (c *cluster) cutDuring(h *exportEnv, command string, args ...string) (o outcome, cuts int) {
	c.t.Helper()
	after := c.count(`SELECT coalesce(max(id), 0) FROM runs`)
	done := make(chan outcome, 1)
	s := start(h, args...)
	go func() { done <- s.wait() }()
	for stepping := false; !stepping; {
		select {
		case o = <-done:
			c.t.Errorf("the job ended before its step %s; %s", command, o)
			return o, 0
		case <-time.After(5 * time.Millisecond):
			stepping = c.count(`SELECT count(*) FROM runs WHERE id > $1 AND status = 'running' AND command LIKE $2`, after, command+"%") > 0
		}
	}
	for {
		select {
		case o = <-done:
			return o, cuts
		case <-time.After(50 * time.Millisecond):
			if _, err := c.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
				c.t.Fatal(err)
			}
			cuts++
		}
	}
}

// TestMultiHostDatabaseRestart cuts every session of the database (what a
// restart of PostgreSQL does) while a job loads and exports items, once
// in its load and once, in the next run, in its export: each run exits 75
// saying the database is unavailable; the run after them completes, and
// the items and the files are what one load and one export make.
func TestMultiHostDatabaseRestart(t *testing.T) {
	c := newCluster(t, 1)
	h1 := c.hosts[0]
	cat := newCatalog(2000)
	load := filepath.Join(h1.dir, "items.csv")
	cat.write(t, load, cat.keys())
	c.writeJobs(fmt.Sprintf("jobs:\n  big:\n    steps:\n      - command: load items\n        args: [%s]\n"+
		"      - command: export items\n        flags: {max-records: 500}\n", load))
	for _, step := range []string{"load items", "export items"} {
		o, cuts := c.cutDuring(h1, step, "run", "big")
		if o.code != 75 || !strings.Contains(o.out, "database unavailable") {
			t.Errorf("the run whose database went away during its %s (%d cuts): want exit 75 saying the database is unavailable; %s", step, cuts, o)
		}
	}
	last := run(h1, []int{0}, "run", "big")
	if n := c.count(`SELECT count(*) FROM skus WHERE deleted_at IS NULL`); n != int64(len(cat.price)) {
		t.Errorf("%d live SKUs after the last run, want %d", n, len(cat.price))
	}
	files, abandoned := h1.check(cat)
	t.Logf("the last run took %s; the export has %d files, %d abandoned", last.took.Round(time.Millisecond), files, abandoned)
}

// TestMultiHostServerRestart stops the PostgreSQL server itself (a fast
// shutdown, as pg_ctl stop -m fast) in the middle of a job's export, on a
// server of the test's own, and starts it again: the run exits 75 saying
// the database is unavailable, and so does a run started while the server
// is down, at once; the run after the restart takes over the dead run's
// locks and completes the export. Every trigger is in exactly one
// complete file, the sequence numbers 1 to N are each used once (the file
// the restart cut short abandoned, or finished by the next run), and no
// run is left running in the ledger.
func TestMultiHostServerRestart(t *testing.T) {
	var srv *pgtest.Server
	c := newClusterOn(t, func(t testing.TB) string {
		srv = pgtest.OwnServer(t)
		return srv.URL
	}, 1)
	h1 := c.hosts[0]
	cat, _ := loadItems(t, h1, 2000)
	c.writeJobs("jobs:\n  items-out:\n    steps:\n      - command: export items\n        flags: {max-records: 50}\n")
	complete := `SELECT count(*) FROM files WHERE direction = 'out' AND status = 'complete'`

	s := start(h1, "run", "items-out")
	if !poll(30*time.Second, func() bool { return c.count(complete) >= 2 }) {
		s.cmd.Process.Kill()
		t.Fatalf("no two files within 30s; %s", s.wait())
	}
	srv.Stop()
	cut := s.wait()
	down := run(h1, []int{75}, "run", "items-out")
	srv.Start()
	expectExit(t, cut, 75)
	for _, o := range []outcome{cut, down} {
		if !strings.Contains(o.out, "database unavailable") || strings.Contains(o.out, "goroutine ") {
			t.Errorf("want a message saying the database is unavailable; %s", o)
		}
	}
	// The job's end names the step the stop cut short and its error, not
	// only the failure to record it that follows. (The step's error says
	// "database unavailable" first when the step itself saw the stop as a
	// lost connection, rather than as the server's own error.)
	stepFailed := regexp.MustCompile(`step 1 \(export items\) failed: (database unavailable: )?export items`)
	if !strings.Contains(cut.out, "ran=1 failed=1") || !stepFailed.MatchString(cut.out) {
		t.Errorf("the cut run's end does not name its step and the step's error; %s", cut)
	}
	if down.took > 5*time.Second {
		t.Errorf("the run with the server down took %s to give up, want at once", down.took)
	}
	if t.Failed() {
		t.FailNow()
	}
	if !poll(10*time.Second, func() bool { return c.db.Ping() == nil }) {
		t.Fatal("the test's connection does not come back after the restart")
	}
	beforeLast := c.count(complete)

	last := run(h1, []int{0}, "run", "items-out")
	if !strings.Contains(last.out, "took over a lock of a dead run") {
		t.Errorf("the run after the restart does not say it took the cut run's locks over; %s", last)
	}
	files, abandoned := h1.check(cat)
	var n, seqs, top int64
	if err := c.db.QueryRow(`SELECT count(*), count(DISTINCT sequence), coalesce(max(sequence), 0) FROM files WHERE direction = 'out' AND kind = 'items'`).Scan(&n, &seqs, &top); err != nil {
		t.Fatal(err)
	}
	if n != top || seqs != n {
		t.Errorf("%d items files with %d sequence numbers up to %d, want 1 to %d each once", n, seqs, top, n)
	}
	if r := c.count(`SELECT count(*) FROM runs WHERE status = 'running'`); r != 0 {
		t.Errorf("%d runs left running", r)
	}
	if r := c.count(`SELECT count(*) FROM locks`); r != 0 {
		t.Errorf("%d locks left", r)
	}
	t.Logf("cut after %d complete files (%s); the run with the server down gave up after %s; the last run took %s; %d files, %d abandoned",
		beforeLast, cut.took.Round(time.Millisecond), down.took.Round(time.Millisecond), last.took.Round(time.Millisecond), files, abandoned)
}

// deadPID is a process ID no process has (above Linux's largest pid_max).
const deadPID = 1<<31 - 1

// sharedFolder checks dir, into which exports of kinds wrote with
// markers: each kind's files are complete with sequence numbers 1 to N,
// every one is in dir with its sha256 and its marker, and dir holds
// nothing else but the names of keep (no temporary or probe file).
func (c *cluster) sharedFolder(dir string, kinds []string, keep ...string) (files int) {
	c.t.Helper()
	want := map[string]bool{}
	for _, name := range keep {
		want[name] = true
	}
	for _, kind := range kinds {
		files += c.gapFree(kind)
		rows, err := c.db.Query(`SELECT name, sha256, records FROM files WHERE direction = 'out' AND kind = $1 AND status = 'complete'`, kind)
		if err != nil {
			c.t.Fatal(err)
		}
		for rows.Next() {
			var name, sum string
			var records int64
			if err := rows.Scan(&name, &sum, &records); err != nil {
				c.t.Fatal(err)
			}
			want[name], want[name+".done"] = true, true
			if got := fileSHA(c.t, filepath.Join(dir, name)); got != sum {
				c.t.Errorf("%s: sha256 %s, the ledger says %s", name, got, sum)
			}
			if b, err := os.ReadFile(filepath.Join(dir, name+".done")); err != nil || string(b) != fmt.Sprintf("count=%d sha256=%s\n", records, sum) {
				c.t.Errorf("marker of %s: %q, %v", name, b, err)
			}
		}
		if err := rows.Close(); err != nil {
			c.t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			c.t.Errorf("%s: %s is no complete file of %v nor its marker", dir, e.Name(), kinds)
		}
		delete(want, e.Name())
	}
	for name := range want {
		c.t.Errorf("%s: %s is missing", dir, name)
	}
	return files
}

// TestMultiHostSharedOutbox has two hosts export into one outbox folder
// (a network mount in production), with markers: vendors on host1 and
// customers on host2 at once into one folder, then items on both at once,
// three rounds with changes between, into the shared outbox's items
// folder. Every run exits 0 (or 75, the items export being busy on the
// other host), nothing is left but complete files and their markers,
// every trigger is in exactly one file, each kind's sequence is gap-free.
// Each host removes only the probe files its own dead processes left:
// that of a third host stays.
func TestMultiHostSharedOutbox(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "outbox")
	c := newCluster(t, 2, "POSBRIDGE_EXPORT_OUTBOX="+shared, "POSBRIDGE_EXPORT_MARKER=true")
	h1 := c.hosts[0]
	vendors, customers := filepath.Join(h1.dir, "vendors.csv"), filepath.Join(h1.dir, "customers.csv")
	writeVendors(t, vendors, 2000)
	writeCustomers(t, customers, 2000)
	h1.ok("load", "vendors", vendors, "-q")
	h1.ok("load", "customers", customers, "-q")

	mixed := filepath.Join(shared, "mixed")
	if err := os.MkdirAll(mixed, 0o755); err != nil {
		t.Fatal(err)
	}
	probes := []string{".posbridge-probe-host1-%d-1", ".posbridge-probe-host2-%d-2", ".posbridge-probe-host3-%d-3"}
	for i, p := range probes {
		probes[i] = fmt.Sprintf(p, deadPID)
		if err := os.WriteFile(filepath.Join(mixed, probes[i]), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kinds := []string{"vendors", "customers"}
	for _, o := range runAll(c.hosts, func(i int) []string {
		return []string{"export", kinds[i], "--max-records", "50", "--out", mixed}
	}) {
		expectExit(t, o, 0)
	}
	files := c.sharedFolder(mixed, kinds, probes[2])

	rng := rand.New(rand.NewPCG(17, 5))
	cat, load := loadItems(t, h1, 2000)
	codes := map[int]int{}
	for round := 0; round < 3; round++ {
		if round > 0 {
			cat.change(t, rng, load, 1000, false)
			h1.ok("load", "items", load, "--mode", "delta", "-q")
		}
		for _, o := range runAll(c.hosts, func(int) []string { return []string{"export", "items", "--max-records", "200"} }) {
			expectExit(t, o, 0, 75)
			codes[o.code]++
		}
		// What a run that found the export busy left, the next one does.
		run(h1, []int{0}, "export", "items")
	}
	items, _ := h1.check(cat, filepath.Join(shared, "items"))
	if n := c.gapFree("items"); n != items {
		t.Errorf("%d items files in the ledger, %d complete ones checked", n, items)
	}
	if n := c.count(notSent); n != 0 {
		t.Errorf("%d triggers not processed", n)
	}
	c.ran(c.hosts...)
	t.Logf("%d vendors and customers files in one folder; %d items files; exit codes of the items runs: %v", files, items, codes)
}

// blockRename makes the items file number seq of h fail to go into place,
// as a host that dies between recording a file written and renaming it
// does: a folder under each name the file may have (any second of the
// next minute and a half). unblock removes them.
func blockRename(t *testing.T, h *exportEnv, seq int64) (unblock func()) {
	t.Helper()
	if err := os.MkdirAll(h.outbox(), 0o755); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for now, i := time.Now().UTC(), -1; i <= 90; i++ {
		dir := filepath.Join(h.outbox(), fmt.Sprintf("items_%s_%06d.xml", now.Add(time.Duration(i)*time.Second).Format("20060102T150405Z"), seq))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	return func() {
		for _, dir := range dirs {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// awayDuring runs fn with h's data folder out of sight (another host's
// disk), and puts it back.
func awayDuring(t *testing.T, h *exportEnv, fn func()) {
	t.Helper()
	outbox := filepath.Join(h.dir, "data", "outbox")
	if err := os.Rename(outbox, outbox+".away"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.Rename(outbox+".away", outbox); err != nil {
			t.Fatal(err)
		}
	}()
	fn()
}

// TestMultiHostOutboxPerHost has each of two hosts export into an outbox
// of its own (the layout of operations.md section 15) and host1 fail
// between recording an items file written and renaming it into place,
// the file under its temporary name in host1's outbox; newer changes of
// items are loaded then. host2, which does not see that outbox, stops
// (exit 1) naming the file, host1 and the remedy, and writes nothing: a
// file of the newer changes would arrive ahead of host1's older one. host1
// back finishes its file and sends the newer changes after it. The second
// time host1 does not come back: host2 stops again until the operator
// gives host1 up (--lost-host host1), when the file is undone and host2
// sends its records. Every trigger ends in exactly one complete file.
func TestMultiHostOutboxPerHost(t *testing.T) {
	c := newCluster(t, 2)
	h1, h2 := c.hosts[0], c.hosts[1]
	rng := rand.New(rand.NewPCG(17, 6))
	cat, load := loadItems(t, h1, 200)
	claimed := `SELECT count(*) FROM triggers t JOIN files f ON f.id = t.file_id WHERE t.status = 'processed' AND f.status IN ('writing', 'written')`
	ready := `SELECT count(*) FROM triggers WHERE status = 'ready'`
	files := `SELECT count(*) FROM files WHERE direction = 'out'`
	newer := func() {
		t.Helper()
		cat.change(t, rng, load, 50, false)
		h1.ok("load", "items", load, "--mode", "delta", "-q")
	}
	// crash has host1's export of file seq fail to rename it.
	crash := func(seq int64) {
		t.Helper()
		unblock := blockRename(t, h1, seq)
		if o := run(h1, []int{1}, "export", "items"); !strings.Contains(o.out, "rename into place") {
			t.Fatalf("host1's export does not fail to rename its file; %s", o)
		}
		unblock()
		if held := c.count(claimed); held == 0 || len(leftovers(t, h1.outbox())) != 1 {
			t.Fatalf("host1 left %d claimed triggers, temporary files %q; want its file's", held, leftovers(t, h1.outbox()))
		}
	}
	// stops runs host2's export, which must stop at host1's file seq,
	// changing nothing.
	stops := func(seq int64) {
		t.Helper()
		held, waiting, before := c.count(claimed), c.count(ready), c.count(files)
		o := run(h2, []int{1}, "export", "items")
		msg := fmt.Sprintf(`_%06d.xml, written by a run on host host1 that died, is not finished and not in this host's outbox: `+
			`host1's next run of this export finishes it; if host1 will not come back, run this export with --lost-host host1, `+
			`which undoes the file and sends its records again`, seq)
		if !strings.Contains(o.out, `level=ERROR msg="export items: items_`) || !strings.Contains(o.out, msg) {
			t.Errorf("host2 does not stop naming host1's file, host1 and the remedy; %s", o)
		}
		if c.count(claimed) != held || c.count(ready) != waiting || c.count(files) != before {
			t.Errorf("host2's run that stopped changed triggers or files: %d claimed, %d ready, %d files; want %d, %d, %d",
				c.count(claimed), c.count(ready), c.count(files), held, waiting, before)
		}
	}

	crash(1)
	newer()
	awayDuring(t, h1, func() { stops(1) })
	if o := run(h1, []int{0}, "export", "items"); !strings.Contains(o.out, "1 files it had written are now complete") ||
		!strings.Contains(o.out, "_000002.xml") {
		t.Errorf("host1 back does not finish its file and send the newer changes after it; %s", o)
	}
	h2.check(cat, h1.outbox()) // host2 wrote nothing

	newer()
	crash(3)
	newer()
	awayDuring(t, h1, func() {
		stops(3)
		o := run(h2, []int{0}, "export", "items", "--lost-host", "host1")
		if !strings.Contains(o.out, "1 unfinished files undone") || !strings.Contains(o.out, "_000004.xml") {
			t.Errorf("host2 with host1 given up does not undo its file and send its records; %s", o)
		}
	})
	// host1's disk, and the temporary file on it, are thrown away.
	for _, tmp := range leftovers(t, h1.outbox()) {
		os.Remove(tmp)
	}
	n, abandoned := h2.check(cat, h1.outbox(), h2.outbox())
	if abandoned != 1 {
		t.Errorf("%d files abandoned, want host1's second", abandoned)
	}
	c.ran(h1, h2)
	t.Logf("%d files, %d abandoned", n, abandoned)
}
