package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/job"
)

type loadOptions struct {
	mode       string
	format     string
	dryRun     bool
	allowEmpty bool
	force      bool
	out        outputFlag
}

func newLoadCmd(app *App) *cobra.Command {
	load := groupCmd("load", "Load master data extracts (CSV or XML) and capture changes as triggers")
	load.Long = `Load an upstream extract of one kind of master data. Each row is upserted; a
real change creates or folds an outbound trigger (SKU, VND, IHD, CST, ITW); an
unchanged row creates nothing, so loading the same file twice changes nothing
the second time. When the newest load of a kind (other than inventory, which
imports also change) was the same content in the same mode without rejects,
the file is not read again: the summary says "nothing to do"; --force compares
row by row anyway.

Rows with errors are rejected, written to FILE.rejects.csv with their line
number and reason, and the good rows are applied in one transaction; the exit
code is then 3. A problem with the file as a whole (missing required column,
malformed XML, empty file) applies nothing and exits 1.

--mode full treats the file as the complete set: records missing from it are
deleted (kept as tombstones until their delete trigger is processed). When any
row is rejected, a full load deletes nothing, since the file is then not the
complete set.`
	for _, kind := range catalog.Kinds {
		addSubs(load, newLoadKindCmd(app, kind))
	}
	return load
}

func newLoadKindCmd(app *App, kind string) *cobra.Command {
	var o loadOptions
	names, required, _ := catalog.Columns(kind)
	var cols []string
	for i, n := range names {
		if required[i] {
			n += " (required)"
		}
		cols = append(cols, "  "+n)
	}
	cmd := &cobra.Command{
		Use:   kind + " FILE",
		Short: "Load " + kind + " from a CSV or XML file",
		Long: fmt.Sprintf(`Load %s from FILE: CSV with a header row (columns in any order, UTF-8 with or
without BOM, LF or CRLF) or XML (see docs/formats.md). Columns:

%s

Prints one summary line: read, added, changed, deleted, unchanged, rejected.`, kind, strings.Join(cols, "\n")),
		Example: fmt.Sprintf(`  posbridge load %[1]s %[1]s.csv
  posbridge load %[1]s %[1]s.csv --mode full
  posbridge load %[1]s %[1]s.xml --dry-run`, kind),
		Args: exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if o.mode != catalog.ModeDelta && o.mode != catalog.ModeFull {
				return usageErr("--mode %q: want delta or full", o.mode)
			}
			if !format.Known(o.format) {
				return usageErr("--format %q: want auto, csv or xml", o.format)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, app, kind, args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", catalog.ModeDelta, "delta: upsert the rows; full: the file is the complete set, missing records are deleted")
	f.StringVar(&o.format, "format", "auto", "file format: auto (by extension), csv or xml")
	f.BoolVar(&o.dryRun, "dry-run", false, "report what would change and change nothing")
	f.BoolVar(&o.allowEmpty, "allow-empty", false, "let a full load of a file without rows delete every record")
	f.BoolVar(&o.force, "force", false, "compare row by row even when the last load of this kind was the same content")
	o.out.add(cmd, "text", "json")
	app.declareStep(cmd, locking(job.KindLock("load", kind)))
	return cmd
}

func runLoad(cmd *cobra.Command, app *App, kind, path string, o *loadOptions) error {
	ctx := cmd.Context()
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("load %s: %w", kind, err)
	}
	d, err := app.DB(ctx)
	if err != nil {
		return err
	}
	log := app.logger()
	var size int64
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	progress, done := app.progress(size, "load "+kind)
	const maxWarnings = 50
	warned := 0
	var res *catalog.Result
	err = app.recordRun(ctx, d, "load "+kind, o.dryRun, func(runID int64) (any, bool, error) {
		var err error
		res, err = catalog.Load(ctx, d, kind, path, catalog.Options{
			Mode: o.mode, Format: o.format, DryRun: o.dryRun, AllowEmpty: o.allowEmpty, Force: o.force,
			UnknownReferences:   cfg.Load.UnknownReferences,
			AllowNegativeOnHand: cfg.Load.AllowNegativeOnHand,
			MaxFieldLength:      cfg.Load.MaxFieldLength,
			FormulaGuard:        cfg.CSV.FormulaGuard,
			RunID:               runID,
			Progress:            progress,
			Debug:               func(msg string) { log.Debug(msg) },
			Warn: func(msg string) {
				warned++
				if warned <= maxWarnings {
					log.Warn(msg)
				} else if warned == maxWarnings+1 {
					log.Warn("further warnings not shown")
				}
			},
		})
		done()
		if err != nil {
			return nil, false, err // a failed load's counts say nothing
		}
		return res, res.Rejected > 0, nil
	})
	if err != nil {
		return err
	}
	if o.out.value == "json" {
		if err := writeJSON(app.Out, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(app.Out, summaryLine(res))
	}
	if res.Rejected > 0 {
		where := res.RejectsFile
		if res.DryRun {
			where = "not written in a dry run"
		}
		return fmt.Errorf("%w: %d of %d rows rejected (%s)", errRejected, res.Rejected, res.Read, where)
	}
	return nil
}

func summaryLine(r *catalog.Result) string {
	var b strings.Builder
	b.WriteString(dryRunPrefix(r.DryRun))
	if r.SameAs != "" {
		fmt.Fprintf(&b, "%s %s: nothing to do, same content as %s (use --force to compare row by row)", r.Kind, r.File, r.SameAs)
		return b.String()
	}
	fmt.Fprintf(&b, "%s %s: %d read, %d added, %d changed, %d deleted, %d unchanged, %d rejected",
		r.Kind, r.File, r.Read, r.Added, r.Changed, r.Deleted, r.Unchanged, r.Rejected)
	if r.Warnings > 0 {
		fmt.Fprintf(&b, ", %d warnings", r.Warnings)
	}
	fmt.Fprintf(&b, "; %d triggers", r.Triggers)
	if r.RejectsFile != "" {
		fmt.Fprintf(&b, "; rejects in %s", r.RejectsFile)
	}
	if r.DeletesSkipped {
		b.WriteString("; full-mode deletes skipped because rows were rejected")
	}
	return b.String()
}
