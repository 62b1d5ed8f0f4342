package ops

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
)

// ContentType is the media type of WriteOpenMetrics's output.
const ContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// Family is one metric family: every metric is a gauge (a count or an age
// now, not a running total), so the output reads the same as OpenMetrics
// and as the Prometheus text format node_exporter's textfile collector
// parses.
type Family struct {
	// Name ends with _Unit when Unit is set, as OpenMetrics requires.
	Name, Help, Unit string
	Samples          []Sample
}

// Sample is one value of a family with its labels, in order.
type Sample struct {
	Labels []Label
	Value  int64
}

// Label is one label name and value.
type Label struct{ Name, Value string }

// runStatuses are the states of posbridge_job_last_run_status, one sample
// each, so that an alert can select the one it means.
var runStatuses = []string{ledger.RunOK, ledger.RunRejects, ledger.RunFailed, ledger.RunRunning}

// Metrics are the numbers of the report as metric families, in a fixed
// order; a family without samples (no jobs, no sites) is left out.
func (r *Report) Metrics() []Family {
	var fams []Family
	add := func(name, help, unit string, samples []Sample) {
		if len(samples) > 0 {
			fams = append(fams, Family{Name: name, Help: help, Unit: unit, Samples: samples})
		}
	}
	one := func(v int64, labels ...Label) Sample { return Sample{Labels: labels, Value: v} }
	flag := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}

	var ready, oldest []Sample
	for _, t := range r.Triggers {
		typ := Label{"type", t.FileCode}
		ready = append(ready, one(t.Ready, typ, Label{"status", "ready"}), one(t.Error, typ, Label{"status", "error"}))
		if t.OldestReady != "" {
			oldest = append(oldest, one(t.OldestReadyAge, typ))
		}
	}
	add("posbridge_triggers", "Triggers waiting for their export (ready) or failed (error), by type.", "", ready)
	add("posbridge_trigger_oldest_ready_age_seconds", "How long the oldest ready trigger of a type has waited.", "seconds", oldest)

	var unfinished, unfinishedAge []Sample
	count := map[string]int64{}
	var kinds []string
	for _, u := range r.Unfinished {
		if _, ok := count[u.Kind]; !ok {
			kinds = append(kinds, u.Kind)
			// The files come oldest first: the kind's first is its oldest.
			unfinishedAge = append(unfinishedAge, one(u.AgeSeconds, Label{"kind", u.Kind}))
		}
		count[u.Kind]++
	}
	for _, k := range kinds {
		unfinished = append(unfinished, one(count[k], Label{"kind", k}))
	}
	add("posbridge_export_files_unfinished", "Export files being written or written and not finished, by kind: their records wait for them.", "", unfinished)
	add("posbridge_export_oldest_unfinished_age_seconds", "How long ago the oldest unfinished export file of a kind was started.", "seconds", unfinishedAge)

	var started, took, status, missed []Sample
	for _, j := range r.Jobs {
		name := Label{"job", j.Name}
		missed = append(missed, one(flag(j.Missed != ""), name))
		run := j.LastRun
		if run == nil {
			continue
		}
		if t, err := time.Parse(db.TimeLayout, run.Started); err == nil {
			started = append(started, one(t.Unix(), name))
		}
		took = append(took, one(int64(run.Duration().Seconds()), name))
		// A job whose lock a live run holds is running, whatever its
		// last finished run did (an outer job may not have reached the
		// step that runs it yet); status --check waits for it too.
		now := run.Status
		if j.Running != nil {
			now = ledger.RunRunning
		}
		for _, s := range runStatuses {
			status = append(status, one(flag(now == s), name, Label{"status", s}))
		}
	}
	add("posbridge_job_last_run_timestamp_seconds", "When the last run of a job started (a run as a step of another job counts), in unix seconds.", "seconds", started)
	add("posbridge_job_last_run_duration_seconds", "How long the last run of a job took, or has been running.", "seconds", took)
	add("posbridge_job_last_run_status", "1 for the status of the last run of a job (ok, rejects, failed; running while a run holds its lock), 0 for the others.", "", status)
	add("posbridge_job_run_missed", "1 when a job's schedule expected a run (plus status.grace) that did not start.", "", missed)

	var files, fileAge, unreadable []Sample
	for _, f := range r.Folders {
		labels := []Label{{"folder", f.Path}, {"role", f.Role}, {"job", f.Job}}
		files = append(files, one(int64(f.Files), labels...))
		fileAge = append(fileAge, one(f.OldestAge, labels...))
		unreadable = append(unreadable, one(flag(f.Error != ""), labels...))
	}
	add("posbridge_folder_files", "Files waiting in an inbox of a job's import step, or lying in its error folder.", "", files)
	add("posbridge_folder_oldest_file_age_seconds", "How long the oldest file of the folder has been there (0 when empty).", "seconds", fileAge)
	add("posbridge_folder_unreadable", "1 when the folder cannot be read.", "", unreadable)

	var failedInRow, lastFailed, lastTransfer []Sample
	for _, s := range r.Sites {
		site := Label{"site", s.Site}
		failedInRow = append(failedInRow, one(s.FailedInRow, site))
		lastFailed = append(lastFailed, one(flag(s.LastStatus == ledger.TransferFailed), site))
		if t, err := time.Parse(db.TimeLayout, s.Last); err == nil {
			lastTransfer = append(lastTransfer, one(t.Unix(), site))
		}
	}
	add("posbridge_site_failed_transfers", "Transfers of a site that failed since its last one that worked.", "", failedInRow)
	add("posbridge_site_last_transfer_failed", "1 when the latest transfer of a site failed.", "", lastFailed)
	add("posbridge_site_last_transfer_timestamp_seconds", "When the latest transfer of a site was last updated, in unix seconds.", "seconds", lastTransfer)

	var records []Sample
	for _, k := range RecordKinds {
		records = append(records, one(r.Records[k], Label{"kind", k}))
	}
	add("posbridge_records", "Live records in the database, by kind.", "", records)
	add("posbridge_database_size_bytes", "Size of the database file and its write-ahead log.", "bytes", []Sample{one(r.SizeBytes)})
	add("posbridge_attention", "Things that need attention, as posbridge status --check lists them.", "", []Sample{one(int64(len(r.Attention)))})
	add("posbridge_status_timestamp_seconds", "When these numbers were read, in unix seconds.", "seconds", []Sample{one(r.At.Unix())})
	return fams
}

// WriteOpenMetrics writes the report's metrics in the OpenMetrics text
// format, ending with # EOF.
func WriteOpenMetrics(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	for _, f := range r.Metrics() {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s gauge\n", f.Name, escapeHelp(f.Help), f.Name)
		if f.Unit != "" {
			fmt.Fprintf(bw, "# UNIT %s %s\n", f.Name, f.Unit)
		}
		for _, s := range f.Samples {
			bw.WriteString(f.Name)
			if len(s.Labels) > 0 {
				bw.WriteByte('{')
				for i, l := range s.Labels {
					if i > 0 {
						bw.WriteByte(',')
					}
					fmt.Fprintf(bw, "%s=\"%s\"", l.Name, escapeLabel(l.Value))
				}
				bw.WriteByte('}')
			}
			fmt.Fprintf(bw, " %d\n", s.Value)
		}
	}
	bw.WriteString("# EOF\n")
	return bw.Flush()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// escapeLabel escapes a label value (a folder path may hold anything) as
// both formats want: backslash, double quote and newline.
func escapeLabel(s string) string { return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }

// escapeHelp escapes help text; the texts hold no double quote, which
// OpenMetrics would escape and the Prometheus text format would not.
func escapeHelp(s string) string { return helpEscaper.Replace(s) }

// WriteTextfile writes the report's metrics to path for node_exporter's
// textfile collector, atomically (fsx.WriteAtomic): the temporary file
// beside it is named .NAME.tmp-*, which the collector skips (it reads
// *.prom), and a reader sees the old file or the new one, never half of
// one. The mode is 0644: the collector usually runs as another user.
func WriteTextfile(path string, r *Report) error {
	if err := fsx.WriteAtomic(path, 0o644, func(w io.Writer) error { return WriteOpenMetrics(w, r) }); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	return nil
}
