package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

func openDB(t *testing.T) *db.DB {
	t.Helper()
	d := dbtest.Open(t)
	return d
}

// row is a runs row as the tests insert it by SQL, with a process of
// their choice.
type row struct {
	command, job, status string
	parent               int64
	step                 int
	started              string
	host                 string
	pid                  int
	pidStart             string
}

func insert(t *testing.T, d *db.DB, r row) int64 {
	t.Helper()
	if r.status == "" {
		r.status = ledger.RunRunning
	}
	if r.started == "" {
		r.started = db.Now()
	}
	if r.host == "" {
		r.host = ledger.Hostname()
	}
	var parent any
	if r.parent > 0 {
		parent = r.parent
	}
	var ended any
	if r.status != ledger.RunRunning {
		ended = r.started
	}
	var id int64
	err := d.QueryRowContext(context.Background(), `INSERT INTO runs(command, job, parent_id, step, status, started_at, ended_at, host, pid, pid_start)
VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id`, r.command, r.job, parent, r.step, r.status, r.started, ended, r.host, r.pid, r.pidStart).Scan(&id)
	if err != nil {
		t.Fatalf("insert run %+v: %v", r, err)
	}
	return id
}

func getRun(t *testing.T, d *db.DB, id int64) ledger.Run {
	t.Helper()
	r, err := ledger.GetRun(context.Background(), d, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(runs []ledger.Run) []int64 {
	out := []int64{}
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

// deadPID is the pid of a child process that has exited and been waited
// for, and so no longer exists.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

// liveChild starts a child process that lives until the test ends.
func liveChild(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("process start times come from /proc on Linux")
	}
}

func TestInsertAdoptEndExitCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)

	id, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "export items", Job: "ignored-by-nobody"})
	if err != nil {
		t.Fatal(err)
	}
	r := getRun(t, d, id)
	if r.Command != "export items" || r.Job != "ignored-by-nobody" || r.Status != ledger.RunRunning {
		t.Errorf("new run = %+v", r)
	}
	if r.Host != ledger.Hostname() || r.PID != os.Getpid() || r.PIDStart != ledger.ProcessStart(os.Getpid()) {
		t.Errorf("new run process = %s/%d/%q, want this process %s/%d/%q", r.Host, r.PID, r.PIDStart,
			ledger.Hostname(), os.Getpid(), ledger.ProcessStart(os.Getpid()))
	}
	if r.Parent != 0 || r.Step != 0 || r.ExitCode != nil || r.Ended != "" || string(r.Counts) != "{}" || r.Error != "" {
		t.Errorf("new run = %+v, want no parent, step, exit code, end, counts or error", r)
	}
	if _, err := time.Parse(db.TimeLayout, r.Started); err != nil {
		t.Errorf("started_at %q: %v", r.Started, err)
	}

	// A step of it.
	step, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "push", Job: "nightly", Parent: id, Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := getRun(t, d, step); s.Parent != id || s.Step != 2 || s.Job != "nightly" {
		t.Errorf("step run = %+v, want parent %d step 2 job nightly", s, id)
	}

	if err := ledger.AdoptRun(ctx, d, step, "sftp push --site pos"); err != nil {
		t.Fatal(err)
	}
	if s := getRun(t, d, step); s.Command != "sftp push --site pos" || s.Parent != id || s.Status != ledger.RunRunning {
		t.Errorf("adopted run = %+v", s)
	}

	if err := ledger.EndRun(ctx, d, id, ledger.RunRejects, map[string]int{"records": 7, "rejected": 2}, errors.New("2 records rejected")); err != nil {
		t.Fatal(err)
	}
	r = getRun(t, d, id)
	var counts map[string]int
	if err := json.Unmarshal(r.Counts, &counts); err != nil {
		t.Fatalf("counts %s: %v", r.Counts, err)
	}
	if r.Status != ledger.RunRejects || r.Ended == "" || r.Error != "2 records rejected" ||
		!reflect.DeepEqual(counts, map[string]int{"records": 7, "rejected": 2}) {
		t.Errorf("ended run = %+v (counts %v)", r, counts)
	}
	if r.Duration() < 0 {
		t.Errorf("duration %s", r.Duration())
	}

	// Nil counts are stored as an empty object.
	if err := ledger.EndRun(ctx, d, step, ledger.RunOK, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s := getRun(t, d, step); string(s.Counts) != "{}" || s.Error != "" || s.Status != ledger.RunOK {
		t.Errorf("run ended with nil counts = %+v", s)
	}

	// The first exit code stays.
	if err := ledger.SetExitCode(ctx, d, 3, id, step); err != nil {
		t.Fatal(err)
	}
	if err := ledger.SetExitCode(ctx, d, 1, id); err != nil {
		t.Fatal(err)
	}
	for _, x := range []int64{id, step} {
		if r := getRun(t, d, x); r.ExitCode == nil || *r.ExitCode != 3 {
			t.Errorf("run %d exit code = %v, want 3 (set once)", x, r.ExitCode)
		}
	}

	// StartRun is InsertRun of a command.
	other, err := ledger.StartRun(ctx, d, "load items", "")
	if err != nil {
		t.Fatal(err)
	}
	if o := getRun(t, d, other); o.Command != "load items" || o.Status != ledger.RunRunning || o.Parent != 0 {
		t.Errorf("StartRun = %+v", o)
	}

	if _, err := ledger.GetRun(ctx, d, 999); !errors.Is(err, ledger.ErrNoRun) {
		t.Errorf("GetRun of a missing run: %v, want ErrNoRun", err)
	}
}

func TestFailRunOnlyFailsRunningRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	running := insert(t, d, row{command: "load items", pid: 1})
	done := insert(t, d, row{command: "load items", pid: 1, status: ledger.RunOK})
	for _, id := range []int64{running, done} {
		if err := ledger.FailRun(ctx, d, id, "gone"); err != nil {
			t.Fatal(err)
		}
	}
	if r := getRun(t, d, running); r.Status != ledger.RunFailed || r.Error != "gone" || r.Ended == "" {
		t.Errorf("failed run = %+v", r)
	}
	if r := getRun(t, d, done); r.Status != ledger.RunOK || r.Error != "" {
		t.Errorf("finished run after FailRun = %+v, want it unchanged", r)
	}
}

func TestReapDead(t *testing.T) {
	t.Parallel()
	needProc(t)
	ctx := context.Background()
	d := openDB(t)

	dead := deadPID(t)
	child := liveChild(t, "sleep")
	childPID := child.Process.Pid
	childStart := ledger.ProcessStart(childPID)
	if childStart == "" {
		t.Fatalf("no start time of live child %d", childPID)
	}

	self, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "run nightly", Job: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	deadRun := insert(t, d, row{command: "export items", pid: dead, pidStart: "4242"})
	deadStep := insert(t, d, row{command: "push", job: "nightly", parent: self, step: 2, pid: dead})
	liveRun := insert(t, d, row{command: "import stores", pid: childPID, pidStart: childStart})
	reused := insert(t, d, row{command: "load items", pid: childPID, pidStart: childStart + "0"})
	elsewhere := insert(t, d, row{command: "export items", host: "elsewhere.invalid", pid: dead})
	finished := insert(t, d, row{command: "export items", pid: dead, status: ledger.RunOK})

	got, err := ledger.ReapDead(ctx, d, self)
	if err != nil {
		t.Fatal(err)
	}
	var reaped []int64
	for _, x := range got {
		reaped = append(reaped, x.Run.ID)
		if !strings.Contains(x.Reason, strconv.Itoa(x.Run.PID)) || !strings.Contains(x.Reason, "noticed by run "+strconv.FormatInt(self, 10)) {
			t.Errorf("reason %q should name pid %d and the run that noticed (%d)", x.Reason, x.Run.PID, self)
		}
		if r := getRun(t, d, x.Run.ID); r.Status != ledger.RunFailed || r.Error != x.Reason || r.Ended == "" {
			t.Errorf("reaped run = %+v, want failed with the reason", r)
		}
	}
	// ListRuns is newest first.
	want := []int64{reused, deadStep, deadRun}
	if !reflect.DeepEqual(reaped, want) {
		t.Errorf("reaped %v, want %v (dead pid, dead step, reused pid)", reaped, want)
	}
	for id, status := range map[int64]string{self: ledger.RunRunning, liveRun: ledger.RunRunning,
		elsewhere: ledger.RunRunning, finished: ledger.RunOK} {
		if r := getRun(t, d, id); r.Status != status {
			t.Errorf("run %d (%s pid %d) status %s, want %s", id, r.Host, r.PID, r.Status, status)
		}
	}

	// Nothing more to reap, and by 0 names no run.
	if got, err := ledger.ReapDead(ctx, d, 0); err != nil || len(got) != 0 {
		t.Errorf("second ReapDead = %v, %v; want nothing", got, err)
	}
	gone := insert(t, d, row{command: "export items", pid: dead})
	got, err = ledger.ReapDead(ctx, d, 0)
	if err != nil || len(got) != 1 || got[0].Run.ID != gone || strings.Contains(got[0].Reason, "noticed by") {
		t.Errorf("ReapDead(by 0) = %+v, %v; want run %d without 'noticed by'", got, err, gone)
	}
}

// A run whose pid is this process's but whose start time is not was
// started by an earlier process with the same pid (containers start every
// process as pid 1): it is dead.
func TestReapDeadOwnPIDReused(t *testing.T) {
	t.Parallel()
	needProc(t)
	ctx := context.Background()
	d := openDB(t)
	start := ledger.ProcessStart(os.Getpid())
	old := insert(t, d, row{command: "run nightly", job: "nightly", pid: os.Getpid(), pidStart: start + "0"})
	got, err := ledger.ReapDead(ctx, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Run.ID != old {
		t.Errorf("ReapDead = %+v; want run %d of an earlier process with this pid (start %s0, this process %s)",
			got, old, start, start)
	}
	if alive, known := ledger.Alive(ledger.Hostname(), os.Getpid(), start+"0"); alive || !known {
		t.Errorf("Alive(this host, own pid, other start) = %v, %v; want false, true", alive, known)
	}
}

func TestAlive(t *testing.T) {
	t.Parallel()
	needProc(t)
	host, self := ledger.Hostname(), os.Getpid()
	child := liveChild(t, "sleep")
	cpid := child.Process.Pid
	cstart := ledger.ProcessStart(cpid)
	dead := deadPID(t)
	for _, c := range []struct {
		name        string
		host        string
		pid         int
		start       string
		alive, know bool
	}{
		{"this process", host, self, ledger.ProcessStart(self), true, true},
		{"this process, no start", host, self, "", true, true},
		{"live child", host, cpid, cstart, true, true},
		{"live child, no start recorded", host, cpid, "", true, true},
		{"live child, other start", host, cpid, cstart + "7", false, true},
		{"dead child", host, dead, "", false, true},
		{"other host", "elsewhere.invalid", self, "", false, false},
		{"no pid", host, 0, "", false, false},
	} {
		alive, known := ledger.Alive(c.host, c.pid, c.start)
		if alive != c.alive || known != c.know {
			t.Errorf("%s: Alive(%s, %d, %q) = %v, %v; want %v, %v", c.name, c.host, c.pid, c.start, alive, known, c.alive, c.know)
		}
	}
}

func TestProcessStart(t *testing.T) {
	t.Parallel()
	needProc(t)
	self := ledger.ProcessStart(os.Getpid())
	if self == "" {
		t.Fatal("ProcessStart(own pid) is empty")
	}
	selfTicks, err := strconv.ParseUint(self, 10, 64)
	if err != nil {
		t.Fatalf("ProcessStart(own pid) = %q, not a number of clock ticks", self)
	}
	if again := ledger.ProcessStart(os.Getpid()); again != self {
		t.Errorf("ProcessStart(own pid) changed: %q then %q", self, again)
	}
	if s := ledger.ProcessStart(deadPID(t)); s != "" {
		t.Errorf("ProcessStart(dead pid) = %q, want empty", s)
	}

	// A command name with spaces and a parenthesis does not shift the
	// fields: the child started after this process, and within uptime.
	exe := filepath.Join(t.TempDir(), "a) b c d e")
	src, err := os.ReadFile("/usr/bin/sleep")
	if err != nil {
		src, err = os.ReadFile("/bin/sleep")
	}
	if err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	if err := os.WriteFile(exe, src, 0o755); err != nil {
		t.Fatal(err)
	}
	child := liveChild(t, exe)
	cs := ledger.ProcessStart(child.Process.Pid)
	ticks, err := strconv.ParseUint(cs, 10, 64)
	if err != nil {
		t.Fatalf("ProcessStart of %q = %q, not a number", exe, cs)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	// USER_HZ is 100 on Linux.
	if ticks < selfTicks || float64(ticks) > secs*100+100 {
		t.Errorf("start of child %q = %d ticks, want between this process's %d and uptime %.0f", exe, ticks, selfTicks, secs*100)
	}
}

func TestListRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	ago := func(h int) string { return time.Now().UTC().Add(-time.Duration(h) * time.Hour).Format(db.TimeLayout) }
	other := "elsewhere.invalid"

	load := insert(t, d, row{command: "load items", status: ledger.RunOK, started: ago(72), host: other, pid: 1})
	night1 := insert(t, d, row{command: "run nightly", job: "nightly", status: ledger.RunFailed, started: ago(48), host: other, pid: 1})
	// Steps inserted out of order: a parent lists them by step.
	n1s2 := insert(t, d, row{command: "push", job: "nightly", parent: night1, step: 2, status: ledger.RunFailed, started: ago(48), host: other, pid: 1})
	n1s1 := insert(t, d, row{command: "export items", job: "nightly", parent: night1, step: 1, status: ledger.RunOK, started: ago(48), host: other, pid: 1})
	hourly := insert(t, d, row{command: "run hourly", job: "hourly", status: ledger.RunOK, started: ago(1), host: other, pid: 1})
	h1s1 := insert(t, d, row{command: "pull", job: "hourly", parent: hourly, step: 1, status: ledger.RunOK, started: ago(1), host: other, pid: 1})
	night2 := insert(t, d, row{command: "run nightly", job: "nightly", started: ago(0), host: other, pid: 1})

	for _, c := range []struct {
		name string
		f    ledger.RunFilter
		want []int64
	}{
		{"top level", ledger.RunFilter{}, []int64{night2, hourly, night1, load}},
		{"with steps", ledger.RunFilter{Steps: true}, []int64{night2, h1s1, hourly, n1s1, n1s2, night1, load}},
		{"job", ledger.RunFilter{Job: "nightly"}, []int64{night2, night1}},
		{"job with steps", ledger.RunFilter{Job: "nightly", Steps: true}, []int64{night2, n1s1, n1s2, night1}},
		{"failed", ledger.RunFilter{Failed: true}, []int64{night1}},
		{"failed ignores status", ledger.RunFilter{Failed: true, Status: ledger.RunOK}, []int64{night1}},
		{"failed with steps", ledger.RunFilter{Failed: true, Steps: true}, []int64{n1s2, night1}},
		{"status", ledger.RunFilter{Status: ledger.RunOK}, []int64{hourly, load}},
		{"running", ledger.RunFilter{Status: ledger.RunRunning}, []int64{night2}},
		{"since", ledger.RunFilter{Since: time.Now().Add(-36 * time.Hour)}, []int64{night2, hourly}},
		{"since with steps", ledger.RunFilter{Since: time.Now().Add(-2 * time.Hour), Steps: true}, []int64{night2, h1s1, hourly}},
		{"parent in step order", ledger.RunFilter{Parent: night1}, []int64{n1s1, n1s2}},
		{"parent and status", ledger.RunFilter{Parent: night1, Failed: true}, []int64{n1s2}},
		{"parent without steps", ledger.RunFilter{Parent: load}, []int64{}},
		{"limit", ledger.RunFilter{Limit: 2}, []int64{night2, hourly}},
		{"job and limit", ledger.RunFilter{Job: "nightly", Limit: 1}, []int64{night2}},
		{"unknown job", ledger.RunFilter{Job: "nope"}, []int64{}},
	} {
		got, err := ledger.ListRuns(ctx, d, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if g := ids(got); !reflect.DeepEqual(g, c.want) {
			t.Errorf("%s: ListRuns(%+v) = %v, want %v", c.name, c.f, g, c.want)
		}
	}

	if _, err := ledger.ListRuns(ctx, d, ledger.RunFilter{Status: "bogus'"}); err == nil {
		t.Error("ListRuns with an unknown status: no error")
	}

	got, err := ledger.ListRuns(ctx, d, ledger.RunFilter{Parent: night1})
	if err != nil {
		t.Fatal(err)
	}
	if s := got[1]; s.Command != "push" || s.Job != "nightly" || s.Parent != night1 || s.Step != 2 || s.Status != ledger.RunFailed || s.Host != other {
		t.Errorf("step row = %+v", s)
	}
}

// TestListRunsNestedJob: a job run as a step of another job ran too, as
// jobs list and status count it (LastJobRuns), so --job lists that step's
// row among the job's runs, and with --steps the steps it ran.
func TestListRunsNestedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	other := "elsewhere.invalid"
	out := insert(t, d, row{command: "run vendors-out", job: "vendors-out", status: ledger.RunOK, host: other, pid: 1})
	outStep := insert(t, d, row{command: "export vendors", job: "vendors-out", parent: out, step: 1, status: ledger.RunOK, host: other, pid: 1})
	weekly := insert(t, d, row{command: "run weekly", job: "weekly", status: ledger.RunFailed, host: other, pid: 1})
	nested := insert(t, d, row{command: "run vendors-out", job: "weekly", parent: weekly, step: 1, status: ledger.RunFailed, host: other, pid: 1})
	nestedStep := insert(t, d, row{command: "export vendors", job: "vendors-out", parent: nested, step: 1, status: ledger.RunFailed, host: other, pid: 1})
	// A command of a job step that merely starts with the name is no run of it.
	insert(t, d, row{command: "run vendors-out-2", job: "weekly", parent: weekly, step: 2, status: ledger.RunOK, host: other, pid: 1})

	for _, c := range []struct {
		name string
		f    ledger.RunFilter
		want []int64
	}{
		{"job", ledger.RunFilter{Job: "vendors-out"}, []int64{nested, out}},
		{"job with steps", ledger.RunFilter{Job: "vendors-out", Steps: true}, []int64{nestedStep, nested, outStep, out}},
		{"job failed", ledger.RunFilter{Job: "vendors-out", Failed: true}, []int64{nested}},
		{"outer job", ledger.RunFilter{Job: "weekly"}, []int64{weekly}},
		{"top level", ledger.RunFilter{}, []int64{weekly, out}},
	} {
		got, err := ledger.ListRuns(ctx, d, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if g := ids(got); !reflect.DeepEqual(g, c.want) {
			t.Errorf("%s: ListRuns(%+v) = %v, want %v", c.name, c.f, g, c.want)
		}
	}
}

func TestLastJobRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	last, err := ledger.LastJobRuns(ctx, d)
	if err != nil || len(last) != 0 {
		t.Fatalf("LastJobRuns of an empty table = %v, %v", last, err)
	}
	other := "elsewhere.invalid"
	insert(t, d, row{command: "run nightly", job: "nightly", status: ledger.RunOK, host: other, pid: 1})
	night2 := insert(t, d, row{command: "run nightly", job: "nightly", status: ledger.RunFailed, host: other, pid: 1})
	hourly := insert(t, d, row{command: "run hourly", job: "hourly", host: other, pid: 1})
	// Steps (with a higher id) and commands outside jobs do not count.
	insert(t, d, row{command: "export items", job: "nightly", parent: night2, step: 1, host: other, pid: 1})
	insert(t, d, row{command: "pull", job: "hourly", parent: hourly, step: 1, host: other, pid: 1})
	insert(t, d, row{command: "load items", status: ledger.RunOK, host: other, pid: 1})
	// Only the command run (bytewise, as on both engines) runs a job.
	insert(t, d, row{command: "RUN upper", job: "nightly", parent: night2, step: 3, host: other, pid: 1})
	// A step that runs a job is a run of that job: the newest of export
	// (a step of nightly, after its own run) and the only one of push.
	insert(t, d, row{command: "run export", job: "export", status: ledger.RunOK, host: other, pid: 1})
	nestedExport := insert(t, d, row{command: "run export", job: "nightly", parent: night2, step: 2, status: ledger.RunFailed, host: other, pid: 1})
	nestedPush := insert(t, d, row{command: "run push", job: "export", parent: nestedExport, step: 1, status: ledger.RunFailed, host: other, pid: 1})

	last, err = ledger.LastJobRuns(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for name, r := range last {
		got[name] = r.ID
		// A nested run's row is the step of the job that ran it.
		if r.Job != name && r.Parent == 0 {
			t.Errorf("LastJobRuns[%s].Job = %q", name, r.Job)
		}
	}
	if want := map[string]int64{"nightly": night2, "hourly": hourly, "export": nestedExport, "push": nestedPush}; !reflect.DeepEqual(got, want) {
		t.Errorf("LastJobRuns = %v, want %v", got, want)
	}
	if last["nightly"].Status != ledger.RunFailed {
		t.Errorf("last nightly run status %s, want failed", last["nightly"].Status)
	}
}

func TestRunActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	run, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "import inventory-transactions"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "export items"})
	if err != nil {
		t.Fatal(err)
	}

	a, err := ledger.RunActivity(ctx, d, run)
	if err != nil || a != (ledger.Activity{}) {
		t.Fatalf("activity of a run that moved nothing = %+v, %v", a, err)
	}
	if fs, err := ledger.RunFiles(ctx, d, run); err != nil || fs == nil || len(fs) != 0 {
		t.Errorf("RunFiles of a run without files = %#v, %v; want an empty list", fs, err)
	}
	if ts, err := ledger.RunTransfers(ctx, d, run); err != nil || ts == nil || len(ts) != 0 {
		t.Errorf("RunTransfers of a run without transfers = %#v, %v; want an empty list", ts, err)
	}

	files := []ledger.File{
		{Direction: "in", Kind: "inventory-transactions", Name: "a.csv", Path: "/in/a.csv", SHA256: "aa", Size: 10, Records: 5, Rejected: 1, Status: "applied", RunID: run},
		{Direction: "in", Kind: "inventory-transactions", Name: "b.csv", Path: "/in/b.csv", SHA256: "bb", Size: 20, Records: 7, Rejected: 0, Status: "applied", RunID: run},
		{Direction: "out", Kind: "rejects", Name: "a.rejects.csv", Path: "/in/a.rejects.csv", SHA256: "cc", Size: 3, Records: 1, Status: "written", RunID: run},
		{Direction: "out", Kind: "items", Name: "items.xml", Path: "/out/items.xml", SHA256: "dd", Size: 99, Records: 100, Status: "written", RunID: other},
	}
	for _, f := range files {
		if err := ledger.RecordFile(ctx, d, f); err != nil {
			t.Fatal(err)
		}
	}
	// A remote file of its own each: a file is pulled once (migration 0020).
	n := 0
	transfer := func(runID int64, status string) {
		t.Helper()
		n++
		remote := fmt.Sprintf("/out/x%d", n)
		id, err := ledger.StartTransfer(ctx, ledger.On(d), ledger.Transfer{Site: "pos", Direction: "pull", LocalPath: "/in/x", RemotePath: remote, RunID: runID})
		if err != nil {
			t.Fatal(err)
		}
		if status != ledger.TransferStarted {
			if err := ledger.EndTransfer(ctx, d, id, status, 1, "ee", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	transfer(run, ledger.TransferDone)
	transfer(run, ledger.TransferDone)
	transfer(run, ledger.TransferFailed)
	transfer(run, ledger.TransferStarted)
	transfer(run, ledger.TransferSkipped)
	transfer(other, ledger.TransferDone)

	a, err = ledger.RunActivity(ctx, d, run)
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.Activity{FilesIn: 2, FilesOut: 1, Records: 13, Rejected: 1, Transfers: 2, TransfersFailed: 1}
	if a != want {
		t.Errorf("RunActivity = %+v, want %+v", a, want)
	}
	b, err := ledger.RunActivity(ctx, d, other)
	if err != nil {
		t.Fatal(err)
	}
	if wantB := (ledger.Activity{FilesOut: 1, Records: 100, Transfers: 1}); b != wantB {
		t.Errorf("RunActivity(other) = %+v, want %+v", b, wantB)
	}
	if sum := a.Add(b); sum != (ledger.Activity{FilesIn: 2, FilesOut: 2, Records: 113, Rejected: 1, Transfers: 3, TransfersFailed: 1}) {
		t.Errorf("Add = %+v", sum)
	}

	fs, err := ledger.RunFiles(ctx, d, run)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
		if f.RunID != run {
			t.Errorf("file %s of run %d, want %d", f.Name, f.RunID, run)
		}
	}
	if want := []string{"a.csv", "b.csv", "a.rejects.csv"}; !reflect.DeepEqual(names, want) {
		t.Errorf("RunFiles = %v, want %v", names, want)
	}
	ts, err := ledger.RunTransfers(ctx, d, run)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, x := range ts {
		statuses = append(statuses, x.Status)
	}
	if want := []string{"done", "done", "failed", "started", "skipped"}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("RunTransfers statuses = %v, want %v", statuses, want)
	}
}
