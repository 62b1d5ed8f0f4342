package trigger

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
)

// UnfinishedFile is an export file not finished: being written, or
// written and not yet complete. The triggers it claimed are processing
// until a run of its kind finishes it, or undoes it and gives them back
// (the export's recovery at the start of each run).
type UnfinishedFile struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Status string `json:"status"` // FileWriting or FileWritten
	Since  string `json:"since"`
	RunID  int64  `json:"run_id,omitempty"`
	// Host is the host of the run that wrote it; "" when no run is
	// recorded.
	Host string `json:"host,omitempty"`
}

// UnfinishedFiles lists the export files not finished, oldest first.
func UnfinishedFiles(ctx context.Context, q db.Querier) ([]UnfinishedFile, error) {
	rows, err := q.QueryContext(ctx, `SELECT f.kind, f.name, f.status, f.created_at, f.run_id, coalesce(r.host, '')
FROM files f LEFT JOIN runs r ON r.id = f.run_id WHERE `+unfinished+` ORDER BY f.id`)
	if err != nil {
		return nil, fmt.Errorf("read unfinished export files: %w", db.Classify(err))
	}
	defer rows.Close()
	out := []UnfinishedFile{}
	for rows.Next() {
		var u UnfinishedFile
		var run sql.NullInt64
		if err := rows.Scan(&u.Kind, &u.Name, &u.Status, &u.Since, &run, &u.Host); err != nil {
			return nil, fmt.Errorf("read unfinished export files: %w", db.Classify(err))
		}
		u.RunID = run.Int64
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unfinished export files: %w", db.Classify(err))
	}
	return out, nil
}
