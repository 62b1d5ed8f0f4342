package ops

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/job"
)

// oneCommand is a command tree where every step is a step command that
// needs one lock.
type oneCommand struct{}

func (oneCommand) Resolve(argv []string) (job.Command, error) {
	return job.Command{Path: strings.Join(argv, " "), Step: true, Locks: []string{"export:items"}}, nil
}
func (oneCommand) Steps() []string    { return []string{"export items"} }
func (oneCommand) Global(string) bool { return false }

// A job's lock held by a run on another host is a run going on while its
// lease lasts by the clock the locks are taken by (the database's on
// PostgreSQL), whatever this host's clock says: jobs and status agree
// with the locks when the hosts' clocks are off.
func TestJobViewsLeaseClock(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	jobs := job.NewSet(map[string]job.Job{"items-out": {Steps: []job.JobStep{{Command: "export items"}}}}, oneCommand{})
	for _, c := range []struct {
		name    string
		expires time.Duration // the lease's end from the locks' clock
		skew    time.Duration // this host's clock off the locks'
		running bool
	}{
		{"lease running, host clock ahead of it", 10 * time.Minute, time.Hour, true},
		{"lease over, host clock behind it", -time.Minute, -time.Hour, false},
	} {
		leaseNow, err := job.LeaseNow(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO locks(name, job, host, pid, pid_start, acquired_at, expires_at) VALUES ('job:items-out', 'items-out', 'otherhost', 4242, '', ?, ?)`,
			leaseNow.Add(-time.Minute).Format(db.TimeLayout), leaseNow.Add(c.expires).Format(db.TimeLayout)); err != nil {
			t.Fatal(err)
		}
		views, err := JobViews(ctx, d, jobs, 0, time.Now().Add(c.skew))
		if err != nil {
			t.Fatal(err)
		}
		if len(views) != 1 || (views[0].Running != nil) != c.running {
			t.Errorf("%s: views %+v, want running %v", c.name, views, c.running)
		}
		if _, err := d.ExecContext(ctx, `DELETE FROM locks`); err != nil {
			t.Fatal(err)
		}
	}
}

// An export file not finished holds back the records it claimed: status
// lists it, with its age and host, and it needs attention once it is older
// than status.max_ready_age. On PostgreSQL a file another host wrote is
// that host's to finish (or the operator's to give up with --lost-host);
// a SQLite database is one host's whatever it was called.
func TestUnfinishedExports(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	now := time.Now().UTC()
	at := func(ago time.Duration) string { return now.Add(-ago).Format(db.TimeLayout) }
	var run int64
	if err := d.QueryRowContext(ctx, `INSERT INTO runs(command, status, started_at, host, pid, pid_start) VALUES ('export items', 'failed', ?, 'otherhost', 4242, '') RETURNING id`,
		at(3*time.Hour)).Scan(&run); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		kind, name, status string
		ago                time.Duration
		run                any
	}{
		{"items", "items_1.xml", "written", 3 * time.Hour, run},
		{"vendors", "vendors_1.xml", "writing", 2 * time.Hour, nil},
		{"vendors", "vendors_2.xml", "writing", time.Minute, nil},
		{"customers", "customers_1.xml", "complete", 5 * time.Hour, nil},
	} {
		if _, err := d.ExecContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, status, sequence, run_id, created_at)
VALUES ('out', ?, ?, ?, '', 0, ?, 1, ?, ?)`, f.kind, f.name, "/out/"+f.name, f.status, f.run, at(f.ago)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Build(ctx, d, Options{MaxReadyAge: time.Hour, MaxInboxAge: time.Hour, Jobs: job.NewSet(nil, oneCommand{}), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range rep.Unfinished {
		got = append(got, fmt.Sprintf("%s %s %s %d %d %q %v", u.Kind, u.Name, u.Status, u.AgeSeconds, u.RunID, u.Host, u.OtherHost))
	}
	other := dbtest.Postgres()
	want := []string{
		fmt.Sprintf("items items_1.xml written 10800 %d \"otherhost\" %v", run, other),
		`vendors vendors_1.xml writing 7200 0 "" false`,
		`vendors vendors_2.xml writing 60 0 "" false`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unfinished:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	items := "export file items_1.xml (items) not finished for 3h0m0s (written since " + at(3*time.Hour) + "): its records wait for the next export of items, which finishes or undoes it; is it running?"
	if other {
		items = "export file items_1.xml (items) not finished for 3h0m0s: host otherhost wrote it (written since " + at(3*time.Hour) + "); its records wait for otherhost's next export of items, or, if otherhost is gone for good, an export of items here with --lost-host otherhost"
	}
	wantAttention := []string{items,
		"export file vendors_1.xml (vendors) not finished for 2h0m0s (writing since " + at(2*time.Hour) + "): its records wait for the next export of vendors, which finishes or undoes it; is it running?"}
	if strings.Join(rep.Attention, "\n") != strings.Join(wantAttention, "\n") {
		t.Fatalf("attention:\n%s\nwant\n%s", strings.Join(rep.Attention, "\n"), strings.Join(wantAttention, "\n"))
	}
	var b strings.Builder
	if err := WriteOpenMetrics(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`posbridge_export_files_unfinished{kind="items"} 1`, `posbridge_export_files_unfinished{kind="vendors"} 2`,
		`posbridge_export_oldest_unfinished_age_seconds{kind="items"} 10800`, `posbridge_export_oldest_unfinished_age_seconds{kind="vendors"} 7200`} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
}
