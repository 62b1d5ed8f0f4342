package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/format"
)

// outputFlag is an --output flag limited to a set of formats.
type outputFlag struct {
	value   string
	allowed []string
}

func (o *outputFlag) add(cmd *cobra.Command, allowed ...string) {
	o.allowed = allowed
	cmd.Flags().StringVarP(&o.value, "output", "o", allowed[0], "output format: "+strings.Join(allowed, ", "))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := o.check(); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

func (o *outputFlag) check() error {
	for _, a := range o.allowed {
		if o.value == a {
			return nil
		}
	}
	return usageErr("--output %q: want one of %s", o.value, strings.Join(o.allowed, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(anySlice(header)...)
	return t
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		s := fmt.Sprint(c)
		s = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
		fmt.Fprint(t.tw, s)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// records writes rows as a table, a JSON array or CSV, streaming.
type records struct {
	format string
	w      io.Writer
	header []string
	tab    *table
	csv    *format.CSVWriter
	n      int
}

// newRecords writes to the command's output. CSV output is meant for
// spreadsheets: with csv.formula_guard on (also when the configuration
// could not be read: the command reports that itself) a cell a
// spreadsheet would run as a formula is quoted.
func (a *App) newRecords(kind string, header ...string) *records {
	w := a.Out
	r := &records{format: kind, w: w, header: header}
	switch kind {
	case "table":
		r.tab = newTable(w, upper(header)...)
	case "csv":
		cfg, err := a.Config()
		r.csv = format.NewCSVWriter(w, err != nil || cfg.CSV.FormulaGuard)
		r.csv.Write(header)
	case "json":
		io.WriteString(w, "[")
	}
	return r
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToUpper(v)
	}
	return out
}

// add writes one record: cells for table and CSV, obj for JSON.
func (r *records) add(obj any, cells ...any) error {
	defer func() { r.n++ }()
	switch r.format {
	case "table":
		r.tab.row(cells...)
	case "csv":
		rec := make([]string, len(cells))
		for i, c := range cells {
			rec[i] = fmt.Sprint(c)
		}
		return r.csv.Write(rec)
	case "json":
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		sep := ",\n  "
		if r.n == 0 {
			sep = "\n  "
		}
		_, err = io.WriteString(r.w, sep+string(b))
		return err
	}
	return nil
}

func (r *records) close() error {
	switch r.format {
	case "table":
		return r.tab.flush()
	case "csv":
		r.csv.Flush()
		return r.csv.Error()
	case "json":
		end := "\n]\n"
		if r.n == 0 {
			end = "]\n"
		}
		_, err := io.WriteString(r.w, end)
		return err
	}
	return nil
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// exitText shows a run's exit code, "-" while it has none.
func exitText(code *int) string {
	if code == nil {
		return "-"
	}
	return strconv.Itoa(*code)
}

// shorten cuts s to n bytes with "..." for a table cell.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// dryRunPrefix starts every line that reports a dry run, so that no one
// takes it for a run that changed something; it is empty when dry is
// false.
func dryRunPrefix(dry bool) string {
	if dry {
		return "dry run, nothing changed: "
	}
	return ""
}
