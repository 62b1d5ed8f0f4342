package db

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// AnalyzeWritten brings PostgreSQL's planner statistics up to date for the
// tables of written (table name -> rows a run inserted, changed or
// deleted) of which the run changed a large share: 1000 rows or more, or
// more than a tenth of the rows the statistics count (any row of a table
// never analyzed). Call it after the commit, so that ANALYZE samples the
// new rows.
//
// Without statistics, right after a first load and until autovacuum comes
// round (a minute or more later, and under load much later), the planner
// takes the tables for nearly empty and may pick plans that take seconds
// per export file instead of milliseconds. ANALYZE samples at most
// 30,000 rows of a table, so it costs about the same for any large table
// (a few hundred milliseconds). Only a tenth of the rows, autovacuum's own
// share, was tried: it saved 0.5 s of a reload that changed 1% of
// 1,000,000 SKUs, but after a full load that deleted 3,000 of 60,000 the
// export of the deletes, planned on statistics without the tombstones,
// took 250-330 ms instead of 120-130 ms (TestExportOfDeletesScales).
//
// On SQLite it does nothing: its planner chooses by the indexes alone
// when a table has no statistics, which serves these queries well.
func (d *DB) AnalyzeWritten(ctx context.Context, written map[string]int64) error {
	if d.Dialect != Postgres {
		return nil
	}
	tables := make([]string, 0, len(written))
	for t := range written {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		n := written[t]
		if n <= 0 {
			continue
		}
		if n < 1000 {
			// reltuples is -1 for a table never analyzed (nor vacuumed).
			var known float64
			if err := d.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass(CAST(? AS TEXT))`, t).Scan(&known); err != nil {
				return fmt.Errorf("analyze %s: %w", t, Classify(err))
			}
			if known >= 0 && float64(n)*10 <= known {
				continue
			}
		}
		if err := d.Analyze(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// Analyze brings PostgreSQL's planner statistics of table up to date; on
// SQLite it does nothing.
func (d *DB) Analyze(ctx context.Context, table string) error {
	if d.Dialect != Postgres {
		return nil
	}
	if _, err := d.ExecContext(ctx, `ANALYZE `+pgx.Identifier{table}.Sanitize()); err != nil {
		return fmt.Errorf("analyze %s: %w", table, Classify(err))
	}
	return nil
}
