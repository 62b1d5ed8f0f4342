package ops

import (
	"context"
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
