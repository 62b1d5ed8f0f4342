package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// ---- plans ----

// fakeCommands are the commands of fakeTree with what each declares. The
// locks are fixed here, not derived from flags: the CLI's commands
// declare theirs from their options, tested in internal/cli.
var fakeCommands = map[string]Command{
	"export items":                  {Step: true, DryRun: true, Locks: []string{"export:items", FolderLock("outbox")}},
	"export customers":              {Step: true, DryRun: true, Locks: []string{"export:customers"}},
	"load items":                    {Step: true, DryRun: true, Locks: []string{"load:items"}},
	"import inventory-transactions": {Step: true, DryRun: true, Locks: []string{"import:inventory-transactions", "folder:/srv/inbox"}},
	"import stores":                 {Step: true, DryRun: true, Locks: []string{"import:stores"}},
	"push":                          {Step: true, DryRun: true, Locks: []string{"site:pos", "folder:/srv/outbox/items"}},
	"pull":                          {Step: true, DryRun: true, Locks: []string{"site:wms", "folder:/srv/inbox"}},
	"run":                           {Step: true, DryRun: true},
	"trigger generate":              {Step: true, Locks: []string{"triggers"}},
	"db backup":                     {Step: true},
	"inquire inventory":             {},
	"status":                        {},
}

// fakeTree is a command tree of fakeCommands: the longest known command
// the leading words name, the other words positional; a flag named bogus
// is unknown, a flag whose value is "bad" a *FlagError, "run" takes
// exactly one job, and only --config and --data-dir are global.
type fakeTree struct{}

func (fakeTree) Resolve(argv []string) (Command, error) {
	var words []string
	var bad []error
	for _, a := range argv {
		if f, ok := strings.CutPrefix(a, "--"); ok {
			name, value, _ := strings.Cut(f, "=")
			if name == "bogus" {
				return Command{}, fmt.Errorf("unknown flag: --bogus")
			}
			if value == "bad" {
				bad = append(bad, &FlagError{Flag: name, Err: errors.New("bad value")})
			}
			continue
		}
		words = append(words, a)
	}
	for n := min(2, len(words)); n >= 1; n-- {
		path := strings.Join(words[:n], " ")
		c, ok := fakeCommands[path]
		if !ok {
			continue
		}
		c.Path, c.Positional = path, words[n:]
		if path == "run" {
			if len(c.Positional) != 1 {
				return Command{}, fmt.Errorf("accepts 1 arg(s), received %d", len(c.Positional))
			}
			c.Job = c.Positional[0]
		}
		return c, errors.Join(bad...)
	}
	return Command{}, fmt.Errorf("unknown command %q", strings.Join(words[:min(2, len(words))], " "))
}

func (fakeTree) Steps() []string {
	var names []string
	for name, c := range fakeCommands {
		if c.Step {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (fakeTree) Global(flag string) bool { return flag == "config" || flag == "data-dir" }

var fake fakeTree

func step(command string, flags map[string]any, args ...string) JobStep {
	return JobStep{Command: command, Flags: flags, Args: args}
}

func validJobs() map[string]Job {
	return map[string]Job{
		"export-push": {Schedule: "*/5 * * * *", Steps: []JobStep{
			step("export items", map[string]any{"out": "outbox", "max-records": 500}),
			{Command: "push", Flags: map[string]any{"site": "pos", "from": "/srv/outbox/items"}, OnFailure: Continue},
		}},
		"pickup": {OnFailure: Continue, Steps: []JobStep{
			step("pull", map[string]any{"site": "wms", "to": "/srv/inbox/", "from": "outbox"}),
			step("import inventory-transactions", nil, "/srv/inbox"),
			step("trigger generate", map[string]any{"kind": []any{"items", "customers"}}),
			{Command: "load items ./extracts/items.csv", OnFailure: Stop},
		}},
		"nightly": {Schedule: "@daily", Steps: []JobStep{
			step("run export-push", nil),
			step("run", nil, "pickup"),
			step("db backup", nil),
		}},
	}
}

func TestBuildPlan(t *testing.T) {
	jobs := validJobs()
	if errs := Validate(jobs, fake); len(errs) != 0 {
		t.Fatalf("Validate of a valid config: %v", errs)
	}
	outbox, err := filepath.Abs("outbox")
	if err != nil {
		t.Fatal(err)
	}

	p, err := build(jobs, "export-push", fake)
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{Index: 1, Path: "export items", Argv: []string{"export", "items", "--max-records=500", "--out=outbox"},
			OnFailure: Stop, DryRun: true, Locks: []string{"export:items", FolderLock(outbox)}},
		{Index: 2, Path: "push", Argv: []string{"push", "--from=/srv/outbox/items", "--site=pos"},
			OnFailure: Continue, DryRun: true, Locks: []string{"site:pos", "folder:/srv/outbox/items"}},
	}
	compareSteps(t, "export-push", p.Steps, want)
	wantLocks := []string{"export:items", FolderLock(outbox), "folder:/srv/outbox/items", "job:export-push", "site:pos"}
	sort.Strings(wantLocks)
	if !reflect.DeepEqual(p.Locks, wantLocks) {
		t.Errorf("export-push locks = %v, want %v", p.Locks, wantLocks)
	}
	if p.Name != "export-push" || p.Job.Schedule != "*/5 * * * *" {
		t.Errorf("plan = %+v", p)
	}
	if s := p.Steps[0].String(); s != "posbridge export items --max-records=500 --out=outbox" {
		t.Errorf("String() = %q", s)
	}

	p, err = build(jobs, "pickup", fake)
	if err != nil {
		t.Fatal(err)
	}
	want = []Step{
		{Index: 1, Path: "pull", Argv: []string{"pull", "--from=outbox", "--site=wms", "--to=/srv/inbox/"},
			OnFailure: Continue, DryRun: true, Locks: []string{"site:wms", "folder:/srv/inbox"}},
		{Index: 2, Path: "import inventory-transactions", Argv: []string{"import", "inventory-transactions", "/srv/inbox"},
			OnFailure: Continue, DryRun: true, Locks: []string{"import:inventory-transactions", "folder:/srv/inbox"}},
		{Index: 3, Path: "trigger generate", Argv: []string{"trigger", "generate", "--kind=items,customers"},
			OnFailure: Continue, Locks: []string{"triggers"}},
		{Index: 4, Path: "load items", Argv: []string{"load", "items", "./extracts/items.csv"},
			OnFailure: Stop, DryRun: true, Locks: []string{"load:items"}},
	}
	compareSteps(t, "pickup", p.Steps, want)
	wantLocks = []string{"folder:/srv/inbox", "import:inventory-transactions", "job:pickup", "load:items", "site:wms", "triggers"}
	if !reflect.DeepEqual(p.Locks, wantLocks) {
		t.Errorf("pickup locks = %v, want %v", p.Locks, wantLocks)
	}

	// A job that runs jobs holds their locks too.
	p, err = build(jobs, "nightly", fake)
	if err != nil {
		t.Fatal(err)
	}
	if p.Steps[0].Job != "export-push" || p.Steps[1].Job != "pickup" || p.Steps[2].Job != "" {
		t.Errorf("nightly step jobs = %q, %q, %q", p.Steps[0].Job, p.Steps[1].Job, p.Steps[2].Job)
	}
	if p.Steps[0].Path != "run" || !reflect.DeepEqual(p.Steps[1].Argv, []string{"run", "pickup"}) || len(p.Steps[2].Locks) != 0 {
		t.Errorf("nightly steps = %+v", p.Steps)
	}
	wantLocks = []string{"export:items", FolderLock(outbox), "folder:/srv/inbox", "folder:/srv/outbox/items",
		"import:inventory-transactions", "job:export-push", "job:nightly", "job:pickup", "load:items", "site:pos", "site:wms", "triggers"}
	sort.Strings(wantLocks)
	if !reflect.DeepEqual(p.Locks, wantLocks) {
		t.Errorf("nightly locks = %v, want %v", p.Locks, wantLocks)
	}
}

func compareSteps(t *testing.T, job string, got, want []Step) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d steps, want %d: %+v", job, len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Path != w.Path || !reflect.DeepEqual(g.Argv, w.Argv) || g.OnFailure != w.OnFailure ||
			g.DryRun != w.DryRun || g.Job != w.Job || !sameSet(g.Locks, w.Locks) {
			t.Errorf("%s step %d:\n got %+v\nwant %+v", job, i+1, g, w)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func TestValidateProblems(t *testing.T) {
	ok := step("export items", nil)
	for _, c := range []struct {
		name string
		jobs map[string]Job
		want []string // one substring per expected error, in order
	}{
		{"unknown command", map[string]Job{"x": {Steps: []JobStep{ok, step("frobnicate now", nil)}}},
			[]string{`jobs.x.steps[2]: frobnicate now: unknown command "frobnicate now"`}},
		{"unknown flag", map[string]Job{"x": {Steps: []JobStep{step("export items", map[string]any{"bogus": 1})}}},
			[]string{`jobs.x.steps[1]: export items: unknown flag: --bogus`}},
		{"not a step", map[string]Job{"x": {Steps: []JobStep{step("status", nil)}}},
			[]string{`jobs.x.steps[1].command: "status" cannot be a step`}},
		{"read-only command", map[string]Job{"x": {Steps: []JobStep{step("inquire inventory", nil)}}},
			[]string{`jobs.x.steps[1].command: "inquire inventory" cannot be a step`}},
		{"missing command", map[string]Job{"x": {Steps: []JobStep{step("  ", nil)}}},
			[]string{`jobs.x.steps[1].command: missing`}},
		{"no steps", map[string]Job{"x": {Description: "empty"}},
			[]string{`jobs.x.steps: a job needs at least one step`}},
		{"flag values", map[string]Job{"x": {Steps: []JobStep{step("pull", map[string]any{"site": "bad", "to": "bad"})}}},
			[]string{`jobs.x.steps[1].flags.site: bad value`, `jobs.x.steps[1].flags.to: bad value`}},
		{"unknown job", map[string]Job{"x": {Steps: []JobStep{step("run ghost", nil)}}},
			[]string{`jobs.x.steps[1]: runs job "ghost", which is not configured (configured: x)`}},
		{"cycle", map[string]Job{
			"a": {Steps: []JobStep{ok, step("run b", nil)}},
			"b": {Steps: []JobStep{step("run a", nil)}}},
			[]string{`jobs.a: job references form a cycle: a -> b -> a`, `jobs.b: job references form a cycle: b -> a -> b`}},
		{"self reference", map[string]Job{"a": {Steps: []JobStep{step("run a", nil)}}},
			[]string{`jobs.a: job references form a cycle: a -> a`}},
		{"runs an invalid job", map[string]Job{
			"broken": {Steps: []JobStep{step("status", nil)}},
			"outer":  {Steps: []JobStep{ok, step("run broken", nil)}}},
			[]string{`jobs.broken.steps[1].command: "status" cannot be a step`, `jobs.outer.steps[2]: runs job "broken", which is invalid`}},
		{"job on_failure, inherited by its steps", map[string]Job{"x": {OnFailure: "abort", Steps: []JobStep{ok, ok}}},
			[]string{`jobs.x.on_failure: must be stop or continue, got "abort"`}},
		{"step on_failure", map[string]Job{"x": {Steps: []JobStep{ok, {Command: "export items", OnFailure: "retry"}}}},
			[]string{`jobs.x.steps[2].on_failure: must be stop or continue, got "retry"`}},
		{"bad schedule", map[string]Job{"x": {Schedule: "every day", Steps: []JobStep{ok}}},
			[]string{`jobs.x.schedule: schedule "every day"`}},
		{"schedule out of range", map[string]Job{"x": {Schedule: "61 * * * *", Steps: []JobStep{ok}}},
			[]string{`jobs.x.schedule: schedule "61 * * * *"`}},
		{"name with a space", map[string]Job{"my job": {Steps: []JobStep{ok}}},
			[]string{`jobs.my job: a job name is lower case letters`}},
		{"name with a slash", map[string]Job{"a/b": {Steps: []JobStep{ok}}},
			[]string{`jobs.a/b: a job name is`}},
		{"name starting with a dash", map[string]Job{"-x": {Steps: []JobStep{ok}}},
			[]string{`jobs.-x: a job name is`}},
		{"global flags", map[string]Job{"x": {Steps: []JobStep{step("export items", map[string]any{"config": "/etc/p.yaml", "data-dir": "/var/p"})}}},
			[]string{`jobs.x.steps[1].flags.config: --config is a global flag`, `jobs.x.steps[1].flags.data-dir: --data-dir is a global flag`}},
		{"dry-run flag", map[string]Job{"x": {Steps: []JobStep{step("export items", map[string]any{"dry-run": true})}}},
			[]string{`jobs.x.steps[1].flags.dry-run: a step cannot be a dry run on its own: run the whole job with posbridge run x --dry-run`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := Validate(c.jobs, fake)
			if len(errs) != len(c.want) {
				t.Fatalf("Validate = %d errors, want %d:\n%v", len(errs), len(c.want), joinLines(errs))
			}
			for i, w := range c.want {
				if !errors.Is(errs[i], ErrInvalid) {
					t.Errorf("error %d %q does not wrap ErrInvalid", i, errs[i])
				}
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

func joinLines(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	return b.String()
}

func TestValidateOrder(t *testing.T) {
	jobs := map[string]Job{
		"zeta":  {Schedule: "nope", Steps: []JobStep{step("export items", nil)}},
		"alpha": {},
		"mid":   {Steps: []JobStep{step("frobnicate", nil)}},
		"fine":  {Steps: []JobStep{step("export items", nil)}},
	}
	for range 5 { // map order differs between runs
		errs := Validate(jobs, fake)
		var got []string
		for _, e := range errs {
			s := strings.TrimPrefix(e.Error(), ErrInvalid.Error()+": jobs.")
			got = append(got, s[:strings.IndexAny(s, ".:")])
		}
		if want := []string{"alpha", "mid", "zeta"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Validate errors by job = %v, want %v:\n%s", got, want, joinLines(errs))
		}
	}
}

func TestBuildErrors(t *testing.T) {
	jobs := validJobs()
	jobs["two-problems"] = Job{Schedule: "bad", Steps: []JobStep{step("status", nil)}}

	_, err := build(jobs, "nope", fake)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `no job "nope" (configured: export-push, nightly, pickup, two-problems)`) {
		t.Errorf("Build of an unknown job: %v", err)
	}

	_, err = build(jobs, "two-problems", fake)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Build of an invalid job: %v, want ErrInvalid", err)
	}
	msg := err.Error()
	if strings.Count(msg, ErrInvalid.Error()) != 1 || !strings.Contains(msg, "jobs.two-problems.schedule") ||
		!strings.Contains(msg, `jobs.two-problems.steps[1].command: "status" cannot be a step`) {
		t.Errorf("Build error %q should name both problems once prefixed", msg)
	}

	// Other jobs being invalid does not stop a valid one.
	if _, err := build(jobs, "nightly", fake); err != nil {
		t.Errorf("Build of a valid job beside an invalid one: %v", err)
	}

	if _, err := build(nil, "x", fake); err == nil || !strings.Contains(err.Error(), "(configured: none)") {
		t.Errorf("Build without jobs: %v", err)
	}
}

// A job that runs a job that runs an invalid job is invalid itself,
// whatever the names' order.
func TestBuildTransitivelyInvalid(t *testing.T) {
	for _, names := range [][3]string{{"a", "b", "c"}, {"c", "b", "a"}} {
		outer, middle, inner := names[0], names[1], names[2]
		jobs := map[string]Job{
			outer:  {Steps: []JobStep{step("run "+middle, nil)}},
			middle: {Steps: []JobStep{step("run "+inner, nil)}},
			inner:  {Steps: []JobStep{step("status", nil)}},
		}
		if p, err := build(jobs, outer, fake); err == nil {
			t.Errorf("%s runs %s runs invalid %s: build(%s) = plan with steps %v, want an error", outer, middle, inner, outer, p.Steps)
		}
		errs := Validate(jobs, fake)
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), "jobs."+outer+".")
		}
		if !found {
			t.Errorf("%s runs %s runs invalid %s: Validate names no problem of %s:\n%s", outer, middle, inner, outer, joinLines(errs))
		}
	}
}

// ---- schedules ----

func TestSchedule(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	s, err := ParseSchedule("*/5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "*/5 * * * *" {
		t.Errorf("String() = %q", s)
	}
	next := at("2026-03-14T10:02:30Z")
	for _, want := range []string{"2026-03-14T10:05:00Z", "2026-03-14T10:10:00Z", "2026-03-14T10:15:00Z"} {
		next = s.Next(next)
		if !next.Equal(at(want)) {
			t.Errorf("*/5: next %s, want %s", next, want)
		}
	}
	if n := s.Next(at("2026-03-14T23:58:00Z")); !n.Equal(at("2026-03-15T00:00:00Z")) {
		t.Errorf("*/5 across midnight: %s", n)
	}

	daily, err := ParseSchedule("@daily")
	if err != nil {
		t.Fatal(err)
	}
	if n := daily.Next(at("2026-03-14T10:00:00Z")); !n.Equal(at("2026-03-15T00:00:00Z")) {
		t.Errorf("@daily next = %s", n)
	}
	every, err := ParseSchedule("@every 10m")
	if err != nil {
		t.Fatal(err)
	}
	if n := every.Next(at("2026-03-14T10:00:00Z")); !n.Equal(at("2026-03-14T10:10:00Z")) {
		t.Errorf("@every 10m next = %s", n)
	}

	for _, bad := range []string{"", "every day", "61 * * * *", "* * * *", "* * * * * *", "@fortnightly"} {
		if _, err := ParseSchedule(bad); err == nil || !strings.Contains(err.Error(), "@daily") {
			t.Errorf("ParseSchedule(%q) = %v, want an error with the accepted forms", bad, err)
		}
	}

	grace := time.Minute
	if at, missed := s.Missed(time.Time{}, time.Now(), grace); missed || !at.IsZero() {
		t.Errorf("never ran: Missed = %s, %v; want nothing", at, missed)
	}
	last := at("2026-03-14T10:00:00Z")
	for _, c := range []struct {
		now    string
		missed bool
	}{
		{"2026-03-14T10:03:00Z", false}, // before the next run
		{"2026-03-14T10:05:30Z", false}, // late, within grace
		{"2026-03-14T10:06:00Z", false}, // exactly at the end of grace
		{"2026-03-14T10:06:01Z", true},
		{"2026-05-01T00:00:00Z", true},
	} {
		expected, missed := s.Missed(last, at(c.now), grace)
		if missed != c.missed || !expected.Equal(at("2026-03-14T10:05:00Z")) {
			t.Errorf("*/5 last %s now %s: Missed = %s, %v; want 10:05, %v", last, c.now, expected, missed, c.missed)
		}
	}
	expected, missed := daily.Missed(at("2026-01-01T00:00:04Z"), at("2026-03-01T12:00:00Z"), 30*time.Minute)
	if !missed || !expected.Equal(at("2026-01-02T00:00:00Z")) {
		t.Errorf("@daily last run in January: Missed = %s, %v; want 2026-01-02T00:00:00Z, true", expected, missed)
	}
	if _, missed := daily.Missed(at("2026-03-01T00:00:04Z"), at("2026-03-01T12:00:00Z"), 30*time.Minute); missed {
		t.Error("@daily that ran this midnight: missed")
	}
}

// ---- locks ----

func openDB(t *testing.T) *db.DB {
	t.Helper()
	d := dbtest.Open(t)
	return d
}

func sqlExec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, d *db.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// deadPID is the pid of a child process that has exited and been waited for.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

// holder is a run of another process that holds locks.
type holder struct {
	job      string
	host     string
	pid      int
	pidStart string
	expires  time.Time
	locks    []string
}

// hold records h's job run, a running and a finished step, and its locks;
// it returns the ids of the run and of the two steps.
func hold(t *testing.T, d *db.DB, h holder) (run, running, finished int64) {
	t.Helper()
	ctx := context.Background()
	ins := func(command string, parent any, step int, status string) int64 {
		var id int64
		err := d.QueryRowContext(ctx, `INSERT INTO runs(command, job, parent_id, step, status, started_at, host, pid, pid_start) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id`,
			command, h.job, parent, step, status, db.Now(), h.host, h.pid, h.pidStart).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	run = ins("run "+h.job, nil, 0, ledger.RunRunning)
	finished = ins("export items", run, 1, ledger.RunOK)
	running = ins("push", run, 2, ledger.RunRunning)
	for _, l := range h.locks {
		sqlExec(t, d, `INSERT INTO locks(name, job, run_id, host, pid, pid_start, acquired_at, expires_at) VALUES (?,?,?,?,?,?,?,?)`,
			l, h.job, run, h.host, h.pid, h.pidStart, db.Now(), h.expires.UTC().Format(db.TimeLayout))
	}
	return run, running, finished
}

func lockNames(t *testing.T, d *db.DB) map[string]int64 {
	t.Helper()
	ls, err := Locks(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range ls {
		out[l.Name] = l.RunID
	}
	return out
}

func runStatus(t *testing.T, d *db.DB, id int64) ledger.Run {
	t.Helper()
	r, err := ledger.GetRun(context.Background(), d, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAcquireFreeAndBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	before := time.Now().UTC().Truncate(time.Second)

	run, takeovers, err := acquire(ctx, d, "j1", []string{"job:j1", "site:pos", "export:items"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if run <= 0 || len(takeovers) != 0 {
		t.Fatalf("acquire on free locks = run %d, takeovers %v", run, takeovers)
	}
	r := runStatus(t, d, run)
	if r.Command != "run j1" || r.Job != "j1" || r.Status != ledger.RunRunning || r.Parent != 0 || r.PID != os.Getpid() {
		t.Errorf("run of acquire = %+v", r)
	}
	ls, err := Locks(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
		if l.Job != "j1" || l.RunID != run || l.Host != ledger.Hostname() || l.PID != os.Getpid() || l.PIDStart != ledger.ProcessStart(os.Getpid()) {
			t.Errorf("lock = %+v", l)
		}
		exp, err := time.Parse(db.TimeLayout, l.ExpiresAt)
		if err != nil || exp.Before(before.Add(time.Minute)) || exp.After(time.Now().Add(time.Minute+time.Second)) {
			t.Errorf("lock %s expires at %s, want about a minute from now", l.Name, l.ExpiresAt)
		}
	}
	if want := []string{"export:items", "job:j1", "site:pos"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Locks = %v, want %v (by name)", names, want)
	}

	// An overlapping set of a live holder (this process): busy, all or none.
	_, _, err = acquire(ctx, d, "j2", []string{"job:j2", "folder:/srv/in", "site:pos"}, time.Minute)
	if !errors.Is(err, ErrBusy) || !IsBusy(err) {
		t.Fatalf("acquire of a held lock: %v, want ErrBusy", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "job j2: site:pos is held by another run") ||
		!strings.Contains(msg, fmt.Sprintf("run %d of job j1 (pid %d on %s", run, os.Getpid(), ledger.Hostname())) {
		t.Errorf("busy error %q should name the lock and its holder", msg)
	}
	if n := count(t, d, `SELECT count(*) FROM runs`); n != 1 {
		t.Errorf("a failed acquire left %d runs, want only the holder's", n)
	}
	if got := lockNames(t, d); len(got) != 3 || got["job:j2"] != 0 || got["folder:/srv/in"] != 0 {
		t.Errorf("a failed acquire left locks %v", got)
	}

	// The same job again.
	_, _, err = acquire(ctx, d, "j1", []string{"job:j1"}, time.Minute)
	if !errors.Is(err, ErrBusy) || !strings.HasPrefix(err.Error(), "job j1 is held by another run: run ") {
		t.Errorf("second run of j1: %v", err)
	}

	// A disjoint set is free.
	run2, _, err := acquire(ctx, d, "j3", []string{"job:j3", "site:wms"}, time.Minute)
	if err != nil {
		t.Fatalf("acquire of a disjoint set: %v", err)
	}

	// release drops one run's locks only.
	if err := release(ctx, d, run); err != nil {
		t.Fatal(err)
	}
	if got := lockNames(t, d); !reflect.DeepEqual(got, map[string]int64{"job:j3": run2, "site:wms": run2}) {
		t.Errorf("locks after release of run %d = %v", run, got)
	}
	if _, _, err := acquire(ctx, d, "j2", []string{"job:j2", "site:pos"}, time.Minute); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}

func TestAcquireTakesOverDeadHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	pid := deadPID(t)
	old, running, finished := hold(t, d, holder{job: "old", host: ledger.Hostname(), pid: pid, pidStart: "12345",
		expires: time.Now().Add(time.Hour), locks: []string{"job:old", "site:pos", "folder:/srv/out"}})

	run, takeovers, err := acquire(ctx, d, "new", []string{"job:new", "site:pos"}, time.Minute)
	if err != nil {
		t.Fatalf("acquire over a dead holder: %v", err)
	}
	if len(takeovers) != 1 {
		t.Fatalf("takeovers = %+v, want one", takeovers)
	}
	tk := takeovers[0]
	if tk.Lock.Name != "site:pos" || tk.Lock.RunID != old || tk.Lock.PID != pid ||
		tk.Reason != fmt.Sprintf("process %d on this host is gone", pid) {
		t.Errorf("takeover = %+v", tk)
	}
	if r := runStatus(t, d, old); r.Status != ledger.RunFailed || !strings.Contains(r.Error, "lock taken over: process") || r.Ended == "" {
		t.Errorf("dead holder's run = %+v, want failed", r)
	}
	if r := runStatus(t, d, running); r.Status != ledger.RunFailed || !strings.Contains(r.Error, "lock of its job taken over") {
		t.Errorf("dead holder's running step = %+v, want failed", r)
	}
	if r := runStatus(t, d, finished); r.Status != ledger.RunOK || r.Error != "" {
		t.Errorf("dead holder's finished step = %+v, want unchanged", r)
	}
	// Every lock of the dead run goes, not only the ones taken.
	if got := lockNames(t, d); !reflect.DeepEqual(got, map[string]int64{"job:new": run, "site:pos": run}) {
		t.Errorf("locks = %v", got)
	}
}

// A lock of this host whose pid is this process's but whose start time is
// not was taken by an earlier process with the same pid (every container
// starts its process as pid 1): its holder is dead and the lock is taken
// over, else it blocks every run for good (it never expires either).
func TestAcquireTakesOverReusedOwnPID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	start := ledger.ProcessStart(os.Getpid())
	if start == "" {
		t.Skip("no process start times here")
	}
	old, _, _ := hold(t, d, holder{job: "nightly", host: ledger.Hostname(), pid: os.Getpid(), pidStart: start + "0",
		expires: time.Now().Add(-time.Hour), locks: []string{"job:nightly"}})
	_, takeovers, err := acquire(ctx, d, "nightly", []string{"job:nightly"}, time.Minute)
	if err != nil {
		t.Fatalf("acquire over the lock of an earlier process with this pid (start %s0, this process %s): %v", start, start, err)
	}
	if len(takeovers) != 1 || takeovers[0].Lock.RunID != old {
		t.Errorf("takeovers = %+v", takeovers)
	}
}

func TestAcquireOtherHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	live, _, _ := hold(t, d, holder{job: "a", host: "elsewhere.invalid", pid: 4242, expires: time.Now().Add(time.Hour),
		locks: []string{"job:a", "site:pos"}})

	_, _, err := acquire(ctx, d, "b", []string{"job:b", "site:pos"}, time.Minute)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid 4242 on elsewhere.invalid") {
		t.Fatalf("acquire of a lock of another host, not expired: %v, want ErrBusy naming the holder", err)
	}
	if r := runStatus(t, d, live); r.Status != ledger.RunRunning {
		t.Errorf("holder on another host = %s, want running", r.Status)
	}

	sqlExec(t, d, `UPDATE locks SET expires_at = ?`, time.Now().UTC().Add(-time.Minute).Format(db.TimeLayout))
	run, takeovers, err := acquire(ctx, d, "b", []string{"job:b", "site:pos"}, time.Minute)
	if err != nil {
		t.Fatalf("acquire of an expired lock of another host: %v", err)
	}
	if len(takeovers) != 1 || takeovers[0].Lock.RunID != live || !strings.Contains(takeovers[0].Reason, "expired") ||
		!strings.Contains(takeovers[0].Reason, "elsewhere.invalid") {
		t.Errorf("takeovers = %+v", takeovers)
	}
	if r := runStatus(t, d, live); r.Status != ledger.RunFailed {
		t.Errorf("expired holder's run = %s, want failed", r.Status)
	}
	if got := lockNames(t, d); !reflect.DeepEqual(got, map[string]int64{"job:b": run, "site:pos": run}) {
		t.Errorf("locks = %v", got)
	}
}

// A takeover is all or none too: with one lock stale and another held by
// a live run, nothing is taken and the stale holder is not failed yet.
func TestAcquireTakeoverRolledBackWhenBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	dead, _, _ := hold(t, d, holder{job: "dead", host: ledger.Hostname(), pid: deadPID(t), expires: time.Now().Add(time.Hour),
		locks: []string{"job:dead", "site:pos"}})
	liveRun, _, err := acquire(ctx, d, "live", []string{"job:live", "site:wms"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = acquire(ctx, d, "new", []string{"job:new", "site:pos", "site:wms"}, time.Minute)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("acquire: %v, want ErrBusy", err)
	}
	if r := runStatus(t, d, dead); r.Status != ledger.RunRunning {
		t.Errorf("stale holder after a failed acquire: %s, want still running (nothing committed)", r.Status)
	}
	if got := lockNames(t, d); got["site:pos"] != dead || got["site:wms"] != liveRun || len(got) != 4 {
		t.Errorf("locks after a failed acquire = %v", got)
	}
}

// A takeover from another host fails the steps of the job runs the dead
// run ran as steps too: nothing on that host will ever end them.
func TestAcquireTakeoverFailsNestedSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	outer, runStep, _ := hold(t, d, holder{job: "nightly", host: "elsewhere.invalid", pid: 4242,
		expires: time.Now().Add(-time.Minute), locks: []string{"job:nightly", "job:pickup"}})
	// runStep is "run pickup"; its steps are recorded under it.
	var inner int64
	err := d.QueryRowContext(ctx, `INSERT INTO runs(command, job, parent_id, step, status, started_at, host, pid) VALUES ('pull','pickup',?,1,'running',?,'elsewhere.invalid',4242) RETURNING id`,
		runStep, db.Now()).Scan(&inner)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := acquire(ctx, d, "pickup", []string{"job:pickup"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{outer, runStep, inner} {
		if r := runStatus(t, d, id); r.Status != ledger.RunFailed {
			t.Errorf("run %d (%s, parent %d) of the expired holder: %s, want failed", id, r.Command, r.Parent, r.Status)
		}
	}
}

func TestAcquireWait(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	first, _, err := acquire(ctx, d, "a", []string{"job:a", "site:pos"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// No wait: busy at once.
	t0 := time.Now()
	_, _, err = acquireWait(ctx, d, "b", []string{"job:b", "site:pos"}, time.Minute, 0)
	if !errors.Is(err, ErrBusy) || time.Since(t0) > 200*time.Millisecond {
		t.Errorf("acquireWait without wait: %v after %s", err, time.Since(t0))
	}

	// Gives up after the wait.
	t0 = time.Now()
	_, _, err = acquireWait(ctx, d, "b", []string{"job:b", "site:pos"}, time.Minute, 300*time.Millisecond)
	if el := time.Since(t0); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "waited 300ms") || el < 300*time.Millisecond || el > time.Second {
		t.Errorf("acquireWait 300ms: %v after %s, want ErrBusy after the wait", err, el)
	}

	// A cancelled wait ends with the context's error.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, _, err = acquireWait(cctx, d, "b", []string{"job:b", "site:pos"}, time.Minute, 5*time.Second)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquireWait with an ending context: %v", err)
	}

	// Succeeds once the holder releases.
	released := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- release(ctx, d, first)
	}()
	t0 = time.Now()
	run, _, err := acquireWait(ctx, d, "b", []string{"job:b", "site:pos"}, time.Minute, 3*time.Second)
	if err != nil {
		t.Fatalf("acquireWait while the holder releases: %v", err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 300*time.Millisecond {
		t.Errorf("acquired after %s, before the release", el)
	}
	if got := lockNames(t, d); !reflect.DeepEqual(got, map[string]int64{"job:b": run, "site:pos": run}) {
		t.Errorf("locks = %v", got)
	}
}

func TestRenew(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	run, _, err := acquire(ctx, d, "a", []string{"job:a", "site:pos"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := acquire(ctx, d, "b", []string{"job:b"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	old := "2000-01-01T00:00:00Z"
	sqlExec(t, d, `UPDATE locks SET expires_at = ?`, old)

	rctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	renew(rctx, d, run, []string{"job:a", "site:pos"}, time.Second, func(err error) { t.Errorf("lost: %v", err) }) // returns when rctx ends
	ls, err := Locks(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, l := range ls {
		exp, err := time.Parse(db.TimeLayout, l.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		switch l.RunID {
		case run:
			if exp.Before(now) {
				t.Errorf("lock %s of the renewing run expires at %s, want after now (%s)", l.Name, l.ExpiresAt, now)
			}
		case other:
			if l.ExpiresAt != old {
				t.Errorf("lock %s of another run renewed to %s", l.Name, l.ExpiresAt)
			}
		}
	}
}

// ---- runs ----

type call struct {
	index int
	argv  []string
	run   int64
}

// fakeExec records the steps it runs and returns codes[index] (0 when
// absent) with an error for a non-zero code; during, if set, runs inside
// the step.
type fakeExec struct {
	mu     sync.Mutex
	calls  []call
	codes  map[int]int
	during func(ctx context.Context, s Step, run int64) (bool, int, error)
}

func (f *fakeExec) exec(ctx context.Context, s Step, argv []string, run int64, log *slog.Logger) (int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{s.Index, append([]string(nil), argv...), run})
	f.mu.Unlock()
	if log == nil {
		return 1, errors.New("no logger")
	}
	if f.during != nil {
		if done, code, err := f.during(ctx, s, run); done {
			return code, err
		}
	}
	code := f.codes[s.Index]
	switch code {
	case 0:
		return 0, nil
	case 3:
		return 3, errors.New("some records were rejected")
	}
	return code, fmt.Errorf("step %d broke", s.Index)
}

func (f *fakeExec) indexes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []int{}
	for _, c := range f.calls {
		out = append(out, c.index)
	}
	return out
}

// testPlan is a job of n steps with the policies given (stop when short).
func testPlan(name string, n int, policies ...string) *Plan {
	p := &Plan{Name: name, Locks: []string{"export:items", "job:" + name}}
	for i := range n {
		pol := Stop
		if i < len(policies) {
			pol = policies[i]
		}
		p.Steps = append(p.Steps, Step{Index: i + 1, Path: fmt.Sprintf("export step%d", i+1),
			Argv: []string{"export", fmt.Sprintf("step%d", i+1), "--out=/tmp/x"}, OnFailure: pol, DryRun: true, Locks: []string{"export:items"}})
	}
	return p
}

func opts() Options { return Options{TTL: 5 * time.Second} }

func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		policies []string
		codes    map[int]int
		ran      []int
		exit     int
		status   string
		skipped  int
		failErr  string // part of the returned error, "" for none
	}{
		{"all ok", nil, nil, []int{1, 2, 3}, 0, ledger.RunOK, 0, ""},
		{"stop", nil, map[int]int{2: 1}, []int{1, 2}, 1, ledger.RunFailed, 1, "job j: step 2 (export step2) failed: step 2 broke"},
		{"stop at the first", nil, map[int]int{1: 75}, []int{1}, 75, ledger.RunFailed, 2, "step 1"},
		{"continue", []string{Continue, Continue, Continue}, map[int]int{1: 2, 2: 1}, []int{1, 2, 3}, 2, ledger.RunFailed, 0, "step 1"},
		{"continue then stop", []string{Continue, Stop, Stop}, map[int]int{1: 1, 2: 4}, []int{1, 2}, 1, ledger.RunFailed, 1, "step 1"},
		{"rejects", nil, map[int]int{2: 3}, []int{1, 2, 3}, 3, ledger.RunRejects, 0, ""},
		{"rejects then failure", []string{Continue, Continue}, map[int]int{1: 3, 2: 1}, []int{1, 2, 3}, 1, ledger.RunFailed, 0, "step 2"},
		{"failure then rejects", []string{Continue, Continue}, map[int]int{1: 1, 2: 3}, []int{1, 2, 3}, 1, ledger.RunFailed, 0, "step 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := openDB(t)
			p := testPlan("j", 3, c.policies...)
			f := &fakeExec{codes: c.codes}
			var jobRun int64
			f.during = func(ctx context.Context, s Step, run int64) (bool, int, error) {
				// The step runs under the job's locks, in a runs row of its own.
				if got := lockNames(t, d); len(got) != 2 || got["job:j"] == 0 {
					t.Errorf("locks during step %d = %v", s.Index, got)
				}
				r := runStatus(t, d, run)
				jobRun = r.Parent
				if r.Status != ledger.RunRunning || r.Step != s.Index || r.Command != s.Path || r.Job != "j" || r.Parent == 0 {
					t.Errorf("run row of step %d during it = %+v", s.Index, r)
				}
				return false, 0, nil
			}
			res, err := Run(ctx, d, p, opts(), f.exec)
			if c.failErr == "" && err != nil || c.failErr != "" && (err == nil || !strings.Contains(err.Error(), c.failErr)) {
				t.Errorf("Run error = %v, want %q", err, c.failErr)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if got := f.indexes(); !reflect.DeepEqual(got, c.ran) {
				t.Errorf("steps run = %v, want %v", got, c.ran)
			}
			if res.ExitCode != c.exit || res.Status != c.status || res.Skipped != c.skipped || res.Job != "j" || res.DryRun {
				t.Errorf("result = exit %d status %s skipped %d; want %d %s %d", res.ExitCode, res.Status, res.Skipped, c.exit, c.status, c.skipped)
			}
			if res.RunID == 0 || res.RunID != jobRun {
				t.Errorf("result run %d, steps' parent %d", res.RunID, jobRun)
			}
			if n := count(t, d, `SELECT count(*) FROM locks`); n != 0 {
				t.Errorf("%d locks left after the run", n)
			}

			// The job run.
			jr := runStatus(t, d, res.RunID)
			if jr.Command != "run j" || jr.Job != "j" || jr.Status != c.status || jr.ExitCode == nil || *jr.ExitCode != c.exit || jr.Ended == "" {
				t.Errorf("job run row = %+v (exit %v)", jr, jr.ExitCode)
			}
			if err != nil && jr.Error != err.Error() {
				t.Errorf("job run error %q, want %q", jr.Error, err)
			}
			var cn counts
			if err := json.Unmarshal(jr.Counts, &cn); err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, i := range c.ran {
				if code := c.codes[i]; code != 0 && code != 3 {
					failed++
				}
			}
			if cn.Steps != 3 || cn.Ran != len(c.ran) || cn.Skipped != c.skipped || cn.Failed != failed {
				t.Errorf("job counts = %+v, want steps 3 ran %d skipped %d failed %d", cn, len(c.ran), c.skipped, failed)
			}

			// The steps.
			steps, err := ledger.ListRuns(ctx, d, ledger.RunFilter{Parent: res.RunID})
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != len(c.ran) || len(res.Steps) != len(c.ran) {
				t.Fatalf("%d step rows, %d step results, want %d", len(steps), len(res.Steps), len(c.ran))
			}
			for i, s := range steps {
				code := c.codes[i+1]
				want := statusOf(code)
				sr := res.Steps[i]
				if s.Step != i+1 || s.Parent != res.RunID || s.Status != want || s.ExitCode == nil || *s.ExitCode != code ||
					s.Command != p.Steps[i].Path || s.Job != "j" || s.Ended == "" {
					t.Errorf("step row %d = %+v (exit %v), want status %s exit %d", i+1, s, s.ExitCode, want, code)
				}
				if sr.Index != i+1 || sr.RunID != s.ID || sr.Status != want || sr.ExitCode != code || sr.Command != p.Steps[i].String() {
					t.Errorf("step result %d = %+v", i+1, sr)
				}
				// A failure's error is recorded; a reject is no error.
				wantErr := ""
				if want == ledger.RunFailed {
					wantErr = fmt.Sprintf("step %d broke", i+1)
				}
				if sr.Error != wantErr || want != ledger.RunRejects && s.Error != wantErr {
					t.Errorf("step %d error: row %q, result %q; want %q", i+1, s.Error, sr.Error, wantErr)
				}
			}
			if top, _ := ledger.ListRuns(ctx, d, ledger.RunFilter{}); len(top) != 1 {
				t.Errorf("%d top-level runs, want the job run only", len(top))
			}
		})
	}
}

func TestRunStepRecordsItsOwnRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	p := testPlan("j", 2)
	f := &fakeExec{}
	f.during = func(ctx context.Context, s Step, run int64) (bool, int, error) {
		if s.Index != 1 {
			return false, 0, nil
		}
		// What a command does with the run made for its step.
		if err := ledger.AdoptRun(ctx, d, run, "import inventory-transactions"); err != nil {
			t.Fatal(err)
		}
		if err := ledger.RecordFile(ctx, d, ledger.File{Direction: "in", Kind: "inventory-transactions", Name: "a.csv", Path: "/in/a.csv",
			SHA256: "aa", Size: 1, Records: 4, Rejected: 1, Status: "applied", RunID: run}); err != nil {
			t.Fatal(err)
		}
		id, err := ledger.StartTransfer(ctx, ledger.On(d), ledger.Transfer{Site: "pos", Direction: "pull", LocalPath: "/in/a.csv", RemotePath: "a.csv", RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.EndTransfer(ctx, d, id, ledger.TransferDone, 1, "aa", nil); err != nil {
			t.Fatal(err)
		}
		if err := ledger.EndRun(ctx, d, run, ledger.RunRejects, map[string]int{"applied": 3, "rejected": 1}, nil); err != nil {
			t.Fatal(err)
		}
		return true, 3, errors.New("1 record rejected")
	}
	res, err := Run(ctx, d, p, opts(), f.exec)
	if err != nil {
		t.Fatal(err)
	}
	s := runStatus(t, d, res.Steps[0].RunID)
	if s.Command != "import inventory-transactions" || s.Status != ledger.RunRejects || string(s.Counts) != `{"applied":3,"rejected":1}` ||
		s.ExitCode == nil || *s.ExitCode != 3 {
		t.Errorf("step that ended its own run = %+v, want its own command, status and counts kept, exit 3", s)
	}
	want := ledger.Activity{FilesIn: 1, Records: 4, Rejected: 1, Transfers: 1}
	if res.Steps[0].Activity != want || res.Activity != want {
		t.Errorf("activity: step %+v, job %+v; want %+v", res.Steps[0].Activity, res.Activity, want)
	}
	var cn counts
	if err := json.Unmarshal(runStatus(t, d, res.RunID).Counts, &cn); err != nil {
		t.Fatal(err)
	}
	if cn.Activity != want {
		t.Errorf("job run counts activity = %+v, want %+v", cn.Activity, want)
	}
	if res.ExitCode != 3 || res.Status != ledger.RunRejects {
		t.Errorf("result exit %d status %s, want 3 rejects", res.ExitCode, res.Status)
	}
}

func TestRunDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	p := testPlan("j", 3)
	p.Steps[1].DryRun = false
	f := &fakeExec{}
	f.during = func(ctx context.Context, s Step, run int64) (bool, int, error) {
		if n := count(t, d, `SELECT count(*) FROM locks`); n != 0 {
			t.Errorf("%d locks during a dry run", n)
		}
		return false, 0, nil
	}
	res, err := Run(ctx, d, p, Options{DryRun: true, TTL: time.Second}, f.exec)
	if err != nil {
		t.Fatal(err)
	}
	want := []call{
		{1, []string{"export", "step1", "--out=/tmp/x", "--dry-run"}, 0},
		{3, []string{"export", "step3", "--out=/tmp/x", "--dry-run"}, 0},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("dry run calls = %+v, want %+v", f.calls, want)
	}
	if !reflect.DeepEqual(p.Steps[0].Argv, []string{"export", "step1", "--out=/tmp/x"}) {
		t.Errorf("the dry run changed the plan: %v", p.Steps[0].Argv)
	}
	if !res.DryRun || res.RunID != 0 || res.ExitCode != 0 || len(res.Steps) != 2 || res.Skipped != 0 {
		t.Errorf("dry run result = %+v", res)
	}
	if n := count(t, d, `SELECT count(*) FROM runs`); n != 0 {
		t.Errorf("a dry run recorded %d runs", n)
	}
	if n := count(t, d, `SELECT count(*) FROM locks`); n != 0 {
		t.Errorf("a dry run left %d locks", n)
	}

	// A dry run while another run holds the locks: no locks taken, so no wait.
	if _, _, err := acquire(ctx, d, "j", p.Locks, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, d, p, Options{DryRun: true}, (&fakeExec{}).exec); err != nil {
		t.Errorf("dry run beside a run holding the locks: %v", err)
	}
}

// A dry run's result says how it went, as a real run's does.
func TestRunDryRunResultStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	res, err := Run(ctx, d, testPlan("j", 2), Options{DryRun: true}, (&fakeExec{}).exec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ledger.RunOK {
		t.Errorf("clean dry run: status %q, want %q", res.Status, ledger.RunOK)
	}
	res, err = Run(ctx, d, testPlan("j", 2), Options{DryRun: true}, (&fakeExec{codes: map[int]int{1: 1}}).exec)
	if err == nil || res.ExitCode != 1 || res.Skipped != 1 {
		t.Fatalf("failing dry run: %v, %+v", err, res)
	}
	if res.Status != ledger.RunFailed {
		t.Errorf("failing dry run: status %q, want %q", res.Status, ledger.RunFailed)
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		policies []string
		code     int
	}{
		{"step ends ok", nil, 0},
		{"step fails, continue", []string{Continue, Continue, Continue}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := openDB(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &fakeExec{}
			f.during = func(ctx context.Context, s Step, run int64) (bool, int, error) {
				cancel()
				if c.code != 0 {
					return true, c.code, ctx.Err()
				}
				return true, 0, nil
			}
			res, err := Run(ctx, d, testPlan("j", 3, c.policies...), opts(), f.exec)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run error = %v, want context.Canceled", err)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if got := f.indexes(); !reflect.DeepEqual(got, []int{1}) {
				t.Errorf("steps run = %v, want only 1", got)
			}
			if res.Skipped != 2 || res.ExitCode != 1 || res.Status != ledger.RunFailed {
				t.Errorf("result: skipped %d exit %d status %s; want 2, 1, failed", res.Skipped, res.ExitCode, res.Status)
			}
			jr := runStatus(t, d, res.RunID)
			if jr.Status != ledger.RunFailed || jr.ExitCode == nil || *jr.ExitCode != 1 || jr.Ended == "" {
				t.Errorf("job run = %+v", jr)
			}
			if n := count(t, d, `SELECT count(*) FROM locks`); n != 0 {
				t.Errorf("%d locks left after a cancelled run", n)
			}
			if n := count(t, d, `SELECT count(*) FROM runs WHERE status = 'running'`); n != 0 {
				t.Errorf("%d runs left running", n)
			}
		})
	}
}

func TestRunNested(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	outer, _, err := acquire(ctx, d, "outer", []string{"job:outer", "job:inner", "export:items"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	outerStep, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "run", Job: "outer", Parent: outer, Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeExec{codes: map[int]int{2: 3}}
	f.during = func(ctx context.Context, s Step, run int64) (bool, int, error) {
		if r := runStatus(t, d, run); r.Parent != outerStep || r.Job != "inner" || r.Step != s.Index {
			t.Errorf("nested step %d row = %+v, want parent %d", s.Index, r, outerStep)
		}
		return false, 0, nil
	}
	o := opts()
	o.RunID = outerStep
	res, err := Run(ctx, d, testPlan("inner", 2), o, f.exec)
	if err != nil {
		t.Fatalf("nested run under the outer run's locks: %v", err)
	}
	if res.RunID != outerStep || res.ExitCode != 3 || res.Status != ledger.RunRejects || len(res.Takeovers) != 0 {
		t.Errorf("nested result = %+v", res)
	}
	steps, err := ledger.ListRuns(ctx, d, ledger.RunFilter{Parent: outerStep})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Step != 1 || steps[1].Step != 2 || *steps[1].ExitCode != 3 {
		t.Errorf("nested steps = %+v", steps)
	}
	// The outer run's locks are untouched, and the outer step is the
	// outer run's to end.
	if got := lockNames(t, d); len(got) != 3 || got["job:inner"] != outer {
		t.Errorf("locks after a nested run = %v", got)
	}
	if r := runStatus(t, d, outerStep); r.Status != ledger.RunRunning || r.ExitCode != nil {
		t.Errorf("outer step after the nested run = %+v", r)
	}
	if n := count(t, d, `SELECT count(*) FROM runs WHERE parent_id IS NULL`); n != 1 {
		t.Errorf("%d top-level runs, want the outer one only", n)
	}
}

func TestRunBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	p := testPlan("j", 1)
	holder, _, err := acquire(ctx, d, "other", []string{"job:other", "export:items"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeExec{}
	res, err := Run(ctx, d, p, opts(), f.exec)
	if !IsBusy(err) || res != nil || len(f.calls) != 0 {
		t.Fatalf("Run while another run holds export:items = %+v, %v (calls %v); want ErrBusy", res, err, f.calls)
	}
	if n := count(t, d, `SELECT count(*) FROM runs`); n != 1 {
		t.Errorf("a busy run recorded a run: %d rows", n)
	}
	if err := release(ctx, d, holder); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, d, p, opts(), f.exec); err != nil {
		t.Errorf("Run after release: %v", err)
	}
}

func TestRunReapsAndTakesOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	pid := deadPID(t)
	old, running, _ := hold(t, d, holder{job: "j", host: ledger.Hostname(), pid: pid, expires: time.Now().Add(time.Hour),
		locks: []string{"job:j", "export:items"}})
	var logs bytes.Buffer
	o := opts()
	o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	res, err := Run(ctx, d, testPlan("j", 1), o, (&fakeExec{}).exec)
	if err != nil {
		t.Fatal(err)
	}
	reaped := map[int64]bool{}
	for _, r := range res.Reaped {
		reaped[r.Run.ID] = true
	}
	if !reaped[old] || !reaped[running] || len(res.Reaped) != 2 {
		t.Errorf("reaped %+v, want the dead run %d and its running step %d", res.Reaped, old, running)
	}
	if len(res.Takeovers) != 2 || res.Takeovers[0].Lock.RunID != old {
		t.Errorf("takeovers = %+v, want the dead run's two locks", res.Takeovers)
	}
	for _, id := range []int64{old, running} {
		if r := runStatus(t, d, id); r.Status != ledger.RunFailed {
			t.Errorf("dead run %d: %s", id, r.Status)
		}
	}
	if s := logs.String(); !strings.Contains(s, "found a dead run") || !strings.Contains(s, "took over a lock") || !strings.Contains(s, "job end") {
		t.Errorf("log should tell of the reaped run and the takeover:\n%s", s)
	}
	if res.Status != ledger.RunOK {
		t.Errorf("status %s", res.Status)
	}
}

// build makes the plan of job name, checking every step with resolve.
func build(jobs map[string]Job, name string, cmds Commands) (*Plan, error) {
	return NewSet(jobs, cmds).Get(name)
}

// TestRunBookkeepingFails has the database fail under a step, as a cut or
// a restart of PostgreSQL does: the step exits 75 with its own error, and
// recording the step fails too. The job's end line and its error name the
// step and the step's error before the failure to record it, the step
// counts as run and failed, the rest are skipped, and the exit code is
// the step's.
func TestRunBookkeepingFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	var logs bytes.Buffer
	o := opts()
	o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	f := &fakeExec{during: func(ctx context.Context, s Step, run int64) (bool, int, error) {
		// The runs table gone makes every record of a run fail, as a
		// database that went away does.
		if _, err := d.ExecContext(ctx, `ALTER TABLE runs RENAME TO runs_gone`); err != nil {
			t.Fatal(err)
		}
		return true, 75, fmt.Errorf("export step1: claim: %w: server closed the connection", db.ErrUnavailable)
	}}
	res, err := Run(ctx, d, testPlan("j", 3), o, f.exec)
	if err == nil || res == nil {
		t.Fatalf("Run = %+v, %v; want a result and an error", res, err)
	}
	stepErr := "job j: step 1 (export step1) failed: export step1: claim: database unavailable: server closed the connection"
	if msg := err.Error(); !strings.HasPrefix(msg, stepErr+"; then record step 1 (export step1): record exit code of run ") {
		t.Errorf("Run error %q, want the step's (%q) and then the failure to record it", msg, stepErr)
	}
	if !errors.Is(err, db.ErrUnavailable) {
		t.Errorf("Run error %q does not wrap the step's error", err)
	}
	if res.ExitCode != 75 || res.Status != ledger.RunFailed || res.Skipped != 2 || len(res.Steps) != 1 ||
		res.Steps[0].Status != ledger.RunFailed || res.Steps[0].ExitCode != 75 {
		t.Errorf("result = exit %d status %s skipped %d steps %+v; want exit 75, failed, 2 skipped, step 1 failed with 75",
			res.ExitCode, res.Status, res.Skipped, res.Steps)
	}
	var end string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="job end"`) {
			end = line
		}
	}
	if !strings.Contains(end, "ran=1 failed=1 skipped=2") || !strings.Contains(end, "exit=75") ||
		!strings.Contains(end, strings.TrimPrefix(stepErr, "job j: ")) {
		t.Errorf("job end line %q: want ran=1 failed=1 skipped=2, exit 75 and the step's error; log:\n%s", end, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="step end" job=j run=1 step=1 `) {
		t.Errorf("no step end line for step 1; log:\n%s", logs.String())
	}
}

// TestRunBookkeepingFailsAfterSuccess has recording a step that succeeded
// fail: the job fails (exit 1), its error names the step it could not
// record, and no later step runs.
func TestRunBookkeepingFailsAfterSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	f := &fakeExec{during: func(ctx context.Context, s Step, run int64) (bool, int, error) {
		if _, err := d.ExecContext(ctx, `ALTER TABLE runs RENAME TO runs_gone`); err != nil {
			t.Fatal(err)
		}
		return true, 0, nil
	}}
	res, err := Run(ctx, d, testPlan("j", 3), opts(), f.exec)
	if err == nil || !strings.HasPrefix(err.Error(), "job j: record step 1 (export step1): record exit code of run ") {
		t.Errorf("Run error %v, want the step it could not record", err)
	}
	if res == nil || res.ExitCode != 1 || res.Skipped != 2 || len(res.Steps) != 1 || res.Steps[0].Status != ledger.RunOK {
		t.Errorf("result = %+v; want exit 1, step 1 ok, 2 skipped", res)
	}
}
