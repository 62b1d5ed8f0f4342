package job

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed cron expression. posbridge does not start jobs on
// its own (cron or a systemd timer does); the schedule tells when the next
// run is expected and whether one was missed.
type Schedule struct {
	expr  string
	sched cron.Schedule
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a five-field cron expression ("*/5 * * * *") or a
// descriptor (@hourly, @daily, @every 10m).
func ParseSchedule(expr string) (*Schedule, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v (want five cron fields like \"*/5 * * * *\", or @hourly, @daily, @every 10m)", expr, err)
	}
	return &Schedule{expr: expr, sched: s}, nil
}

// Next is the first scheduled time after t.
func (s *Schedule) Next(t time.Time) time.Time { return s.sched.Next(t) }

// String is the expression.
func (s *Schedule) String() string { return s.expr }

// Missed reports whether a run expected after lastStart (the start of the
// job's last run) had not started by now, allowing grace; it returns the
// time the missed run was expected. A job that never ran has missed
// nothing: there is no telling when it was installed.
func (s *Schedule) Missed(lastStart, now time.Time, grace time.Duration) (time.Time, bool) {
	if lastStart.IsZero() {
		return time.Time{}, false
	}
	expected := s.Next(lastStart)
	return expected, now.After(expected.Add(grace))
}
