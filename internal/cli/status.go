package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

// statusReport is what posbridge status shows.
type statusReport struct {
	Database      string           `json:"database"`
	SchemaVersion int              `json:"schema_version"`
	Records       map[string]int64 `json:"records"`
	Triggers      []trigger.Count  `json:"triggers"`
	LastRuns      []runSummary     `json:"last_runs"`
}

type runSummary struct {
	ID      int64  `json:"id"`
	Command string `json:"command"`
	Status  string `json:"status"`
	Started string `json:"started_at"`
	Ended   string `json:"ended_at"`
	Error   string `json:"error,omitempty"`
}

func newStatusCmd(app *App) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for an operator: records, triggers and recent runs",
		Long: `Show the state at a glance: live records per kind, triggers per type and
status with the age of the oldest, and the most recent runs.`,
		Example: `  posbridge status
  posbridge status --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := buildStatus(cmd.Context(), d)
			if err != nil {
				return err
			}
			if out.value == "json" {
				return writeJSON(app.Out, rep)
			}
			fmt.Fprintf(app.Out, "database %s (schema %d)\n\n", rep.Database, rep.SchemaVersion)
			t := newTable(app.Out, "RECORDS", "LIVE")
			for _, k := range recordKinds {
				t.row(k.name, rep.Records[k.name])
			}
			t.flush()
			fmt.Fprintln(app.Out)
			t = newTable(app.Out, "TRIGGERS", "STATUS", "COUNT", "OLDEST")
			if len(rep.Triggers) == 0 {
				t.row("-", "-", 0, "-")
			}
			for _, c := range rep.Triggers {
				t.row(c.FileCode, c.Status, c.Count, age(c.Oldest))
			}
			t.flush()
			fmt.Fprintln(app.Out)
			t = newTable(app.Out, "RUN", "COMMAND", "STATUS", "STARTED", "ERROR")
			for _, r := range rep.LastRuns {
				t.row(r.ID, r.Command, r.Status, r.Started, r.Error)
			}
			return t.flush()
		},
	}
	out.add(cmd, "table", "json")
	return cmd
}

var recordKinds = []struct{ name, query string }{
	{"warehouses", `SELECT count(*) FROM warehouses`},
	{"vendors", `SELECT count(*) FROM vendors WHERE deleted_at IS NULL`},
	{"items", `SELECT count(*) FROM items WHERE deleted_at IS NULL`},
	{"skus", `SELECT count(*) FROM skus WHERE deleted_at IS NULL`},
	{"customers", `SELECT count(*) FROM customers WHERE deleted_at IS NULL`},
	{"invoices", `SELECT count(*) FROM invoices WHERE deleted_at IS NULL`},
	{"inventory", `SELECT count(*) FROM inventory`},
}

func buildStatus(ctx context.Context, d *db.DB) (*statusReport, error) {
	rep := &statusReport{Database: d.Path, Records: map[string]int64{}, LastRuns: []runSummary{}}
	var err error
	if rep.SchemaVersion, err = d.Version(ctx); err != nil {
		return nil, err
	}
	for _, k := range recordKinds {
		var n int64
		if err := d.QueryRowContext(ctx, k.query).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", k.name, err)
		}
		rep.Records[k.name] = n
	}
	if rep.Triggers, err = trigger.Summary(ctx, d); err != nil {
		return nil, err
	}
	rows, err := d.QueryContext(ctx, `SELECT id, command, status, started_at, coalesce(ended_at,''), error FROM runs ORDER BY id DESC LIMIT 10`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r runSummary
		if err := rows.Scan(&r.ID, &r.Command, &r.Status, &r.Started, &r.Ended, &r.Error); err != nil {
			return nil, err
		}
		rep.LastRuns = append(rep.LastRuns, r)
	}
	return rep, rows.Err()
}

// age shows how long ago a stored timestamp was.
func age(ts string) string {
	t, err := time.Parse(db.TimeLayout, ts)
	if err != nil {
		return ts
	}
	return time.Since(t).Round(time.Second).String()
}
