package ops

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// omSample is a sample as parseOpenMetrics read it, its label values
// unescaped.
type omSample struct {
	family string
	labels map[string]string
	value  float64
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseOpenMetrics is a strict reader of the OpenMetrics 1.0 text format
// as far as posbridge uses it (gauges): it fails on anything the
// specification or the Prometheus text parser of node_exporter's textfile
// collector would refuse: a sample before its family's HELP and TYPE, a
// family seen twice or interleaved with another, a unit that is not the
// name's suffix, a _seconds or _bytes name without its UNIT, a bad name,
// label or escape, a duplicate label set, text after "# EOF" or no
// "# EOF" at the end.
func parseOpenMetrics(text string) ([]omSample, error) {
	if !strings.HasSuffix(text, "\n# EOF\n") && text != "# EOF\n" {
		return nil, fmt.Errorf("does not end with a line # EOF")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	type family struct {
		help, typ, unit bool
		unitName        string
		samples         int
		seen            map[string]bool
	}
	families := map[string]*family{}
	var current string
	var out []omSample
	for i, line := range lines[:len(lines)-1] {
		where := fmt.Sprintf("line %d %q", i+1, line)
		if strings.HasPrefix(line, "#") {
			parts := strings.SplitN(line, " ", 4)
			if len(parts) < 4 || parts[0] != "#" {
				return nil, fmt.Errorf("%s: want # HELP|TYPE|UNIT name value", where)
			}
			kind, name, val := parts[1], parts[2], parts[3]
			if !metricNameRE.MatchString(name) {
				return nil, fmt.Errorf("%s: bad metric name", where)
			}
			f := families[name]
			if name != current {
				if f != nil {
					return nil, fmt.Errorf("%s: family %s seen before", where, name)
				}
				f = &family{seen: map[string]bool{}}
				families[name], current = f, name
			}
			if f.samples > 0 {
				return nil, fmt.Errorf("%s: metadata after samples", where)
			}
			switch kind {
			case "HELP":
				// A double quote is escaped in OpenMetrics and not in the
				// Prometheus format: the help must hold none.
				rest := strings.NewReplacer(`\\`, "", `\n`, "").Replace(val)
				if f.help || strings.ContainsAny(rest, "\"\\") {
					return nil, fmt.Errorf("%s: second HELP, a double quote or a bad escape", where)
				}
				f.help = true
			case "TYPE":
				if f.typ || val != "gauge" {
					return nil, fmt.Errorf("%s: second TYPE or not a gauge", where)
				}
				f.typ = true
			case "UNIT":
				if f.unit || !strings.HasSuffix(name, "_"+val) || val == "" {
					return nil, fmt.Errorf("%s: second UNIT or name not ending in _%s", where, val)
				}
				f.unit, f.unitName = true, val
			default:
				return nil, fmt.Errorf("%s: unknown metadata %s", where, kind)
			}
			continue
		}
		// A sample: name, optional {labels}, space, value.
		name := line
		if j := strings.IndexAny(line, "{ "); j >= 0 {
			name = line[:j]
		}
		f := families[name]
		if name != current || f == nil || !f.help || !f.typ {
			return nil, fmt.Errorf("%s: sample outside its family's block or before its HELP and TYPE", where)
		}
		for _, u := range []string{"seconds", "bytes"} {
			if strings.HasSuffix(name, "_"+u) && f.unitName != u {
				return nil, fmt.Errorf("%s: %s without # UNIT %s", where, name, u)
			}
		}
		rest := line[len(name):]
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			var err error
			if labels, rest, err = parseLabels(rest[1:]); err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
		}
		if !strings.HasPrefix(rest, " ") || strings.Contains(rest[1:], " ") {
			return nil, fmt.Errorf("%s: want one space and a value (no timestamp)", where)
		}
		v, err := strconv.ParseFloat(rest[1:], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value: %v", where, err)
		}
		key := fmt.Sprint(labels)
		if f.seen[key] {
			return nil, fmt.Errorf("%s: label set seen before", where)
		}
		f.seen[key] = true
		f.samples++
		out = append(out, omSample{family: name, labels: labels, value: v})
	}
	return out, nil
}

// parseLabels reads name="value",... up to the closing brace and returns
// the rest of the line.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return nil, "", fmt.Errorf("label without =\"")
		}
		name := s[:eq]
		if !labelNameRE.MatchString(name) {
			return nil, "", fmt.Errorf("bad label name %q", name)
		}
		if _, dup := labels[name]; dup {
			return nil, "", fmt.Errorf("label %s twice", name)
		}
		s = s[eq+2:]
		var val strings.Builder
		for {
			if s == "" {
				return nil, "", fmt.Errorf("label %s not closed", name)
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\n' {
				return nil, "", fmt.Errorf("raw newline in label %s", name)
			}
			if c == '\\' {
				if s == "" {
					return nil, "", fmt.Errorf("label %s ends in a backslash", name)
				}
				switch s[0] {
				case '\\':
					val.WriteByte('\\')
				case '"':
					val.WriteByte('"')
				case 'n':
					val.WriteByte('\n')
				default:
					return nil, "", fmt.Errorf("bad escape \\%c in label %s", s[0], name)
				}
				s = s[1:]
				continue
			}
			val.WriteByte(c)
		}
		labels[name] = val.String()
		switch {
		case strings.HasPrefix(s, "}"):
			return labels, s[1:], nil
		case strings.HasPrefix(s, ","):
			s = s[1:]
		default:
			return nil, "", fmt.Errorf("want , or } after label %s", name)
		}
	}
}

// sampleReport is a report with one of everything, and a folder path
// that needs every escape.
func sampleReport(t *testing.T) *Report {
	t.Helper()
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	exit1 := 1
	return &Report{
		SizeBytes: 4096,
		Records:   map[string]int64{"items": 52, "skus": 173},
		Triggers: []TriggerStatus{
			{Pending: trigger.Pending{FileCode: "ITEM", Ready: 3, Error: 1, OldestReady: "2026-12-07T02:00:00Z"}, OldestReadyAge: 3600},
			{Pending: trigger.Pending{FileCode: "CUST", Error: 2}},
		},
		Unfinished: []UnfinishedExport{
			{UnfinishedFile: trigger.UnfinishedFile{Kind: "items", Name: "items_20261207T010000Z_000004.xml", Status: trigger.FileWritten,
				Since: "2026-12-07T01:00:00Z", RunID: 6, Host: "pos-b"}, AgeSeconds: 7200, OtherHost: true},
		},
		Jobs: []JobStatus{
			{Name: "nightly", LastRun: &ledger.Run{ID: 7, Status: ledger.RunFailed, ExitCode: &exit1,
				Started: "2026-12-07T01:30:00Z", Ended: "2026-12-07T01:32:05Z"}, Missed: "2026-12-07T02:30:00Z"},
			{Name: "never"},
		},
		Folders: []FolderStatus{
			{Job: "nightly", Role: RoleInbox, Path: `/srv/in "odd"\dir` + "\nx", Files: 2, OldestAge: 90},
			{Job: "nightly", Role: RoleError, Path: "/srv/in/error", Error: "permission denied"},
		},
		Sites: []ledger.SiteHealth{
			{Site: "pos", Last: "2026-12-07T02:59:00Z", LastStatus: ledger.TransferFailed, FailedInRow: 4},
			{Site: "wms", Last: "2026-12-07T02:58:00Z", LastStatus: ledger.TransferDone},
		},
		Attention: []string{"a", "b", "c"},
		At:        now,
	}
}

func TestOpenMetricsParsesStrictly(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	samples, err := parseOpenMetrics(buf.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	got := map[string]float64{}
	for _, s := range samples {
		if !strings.HasPrefix(s.family, "posbridge_") {
			t.Errorf("metric %s lacks the posbridge_ prefix", s.family)
		}
		got[s.family+fmt.Sprint(s.labels)] = s.value
	}
	path := `/srv/in "odd"\dir` + "\nx"
	for key, want := range map[string]float64{
		"posbridge_triggers" + fmt.Sprint(map[string]string{"type": "ITEM", "status": "ready"}):                                       3,
		"posbridge_triggers" + fmt.Sprint(map[string]string{"type": "CUST", "status": "error"}):                                       2,
		"posbridge_trigger_oldest_ready_age_seconds" + fmt.Sprint(map[string]string{"type": "ITEM"}):                                  3600,
		"posbridge_job_last_run_timestamp_seconds" + fmt.Sprint(map[string]string{"job": "nightly"}):                                  float64(time.Date(2026, 12, 7, 1, 30, 0, 0, time.UTC).Unix()),
		"posbridge_job_last_run_duration_seconds" + fmt.Sprint(map[string]string{"job": "nightly"}):                                   125,
		"posbridge_job_last_run_status" + fmt.Sprint(map[string]string{"job": "nightly", "status": "failed"}):                         1,
		"posbridge_job_last_run_status" + fmt.Sprint(map[string]string{"job": "nightly", "status": "ok"}):                             0,
		"posbridge_job_run_missed" + fmt.Sprint(map[string]string{"job": "nightly"}):                                                  1,
		"posbridge_job_run_missed" + fmt.Sprint(map[string]string{"job": "never"}):                                                    0,
		"posbridge_folder_files" + fmt.Sprint(map[string]string{"folder": path, "role": "inbox", "job": "nightly"}):                   2,
		"posbridge_folder_oldest_file_age_seconds" + fmt.Sprint(map[string]string{"folder": path, "role": "inbox", "job": "nightly"}): 90,
		"posbridge_folder_unreadable" + fmt.Sprint(map[string]string{"folder": "/srv/in/error", "role": "error", "job": "nightly"}):   1,
		"posbridge_site_failed_transfers" + fmt.Sprint(map[string]string{"site": "pos"}):                                              4,
		"posbridge_site_last_transfer_failed" + fmt.Sprint(map[string]string{"site": "pos"}):                                          1,
		"posbridge_site_last_transfer_failed" + fmt.Sprint(map[string]string{"site": "wms"}):                                          0,
		"posbridge_records" + fmt.Sprint(map[string]string{"kind": "skus"}):                                                           173,
		"posbridge_records" + fmt.Sprint(map[string]string{"kind": "stores"}):                                                         0,
		"posbridge_database_size_bytes" + fmt.Sprint(map[string]string{}):                                                             4096,
		"posbridge_attention" + fmt.Sprint(map[string]string{}):                                                                       3,
		"posbridge_status_timestamp_seconds" + fmt.Sprint(map[string]string{}):                                                        float64(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC).Unix()),
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	// A job that never ran has no last run samples, a trigger type with
	// none ready no age.
	for key := range got {
		if strings.Contains(key, "job:never") && !strings.HasPrefix(key, "posbridge_job_run_missed") ||
			strings.HasPrefix(key, "posbridge_trigger_oldest_ready_age_seconds") && strings.Contains(key, "CUST") {
			t.Errorf("unexpected sample %s", key)
		}
	}
}

// The checker must refuse what it is there to catch, or it proves nothing.
func TestParseOpenMetricsRefusesBadText(t *testing.T) {
	good := "# HELP posbridge_x_seconds X.\n# TYPE posbridge_x_seconds gauge\n# UNIT posbridge_x_seconds seconds\nposbridge_x_seconds{a=\"1\"} 2\n# EOF\n"
	if _, err := parseOpenMetrics(good); err != nil {
		t.Fatalf("good text refused: %v", err)
	}
	for name, bad := range map[string]string{
		"no EOF":          strings.TrimSuffix(good, "# EOF\n"),
		"after EOF":       good + "posbridge_x_seconds 1\n",
		"no UNIT":         strings.Replace(good, "# UNIT posbridge_x_seconds seconds\n", "", 1),
		"wrong UNIT":      strings.Replace(good, "UNIT posbridge_x_seconds seconds", "UNIT posbridge_x_seconds bytes", 1),
		"sample first":    "posbridge_y 1\n# HELP posbridge_y Y.\n# TYPE posbridge_y gauge\n# EOF\n",
		"bad escape":      strings.Replace(good, `a="1"`, `a="\t"`, 1),
		"unescaped quote": strings.Replace(good, `a="1"`, `a="x"y"`, 1),
		"duplicate":       strings.Replace(good, "# EOF\n", "posbridge_x_seconds{a=\"1\"} 3\n# EOF\n", 1),
		"interleaved":     strings.Replace(good, "# EOF\n", "# HELP posbridge_z Z.\n# TYPE posbridge_z gauge\nposbridge_z 1\nposbridge_x_seconds{a=\"2\"} 3\n# EOF\n", 1),
		"counter":         strings.Replace(good, "gauge", "counter", 1),
		"timestamp":       strings.Replace(good, "} 2\n", "} 2 1700000000\n", 1),
		"bad value":       strings.Replace(good, "} 2\n", "} two\n", 1),
		"quote in HELP":   strings.Replace(good, "X.", `X "x".`, 1),
	} {
		if _, err := parseOpenMetrics(bad); err == nil {
			t.Errorf("%s: accepted:\n%s", name, bad)
		}
	}
}

func TestOpenMetricsEmptyReport(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, &Report{At: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := parseOpenMetrics(buf.String()); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if strings.Contains(buf.String(), "posbridge_triggers") {
		t.Errorf("a family without samples is written:\n%s", buf.String())
	}
}

func TestWriteTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posbridge.prom")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := sampleReport(t)
	if err := WriteTextfile(path, rep); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	WriteOpenMetrics(&want, rep)
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("textfile = %q, %v; want the OpenMetrics text", got, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode %v, want 0644 (node_exporter runs as another user)", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d files, want only the textfile (no temporary left)", len(entries))
	}
	if err := WriteTextfile(filepath.Join(dir, "missing", "x.prom"), rep); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing folder: %v, want an error naming the path", err)
	}
}

// docs/operations.md lists every metric, and its alert rules use only
// metrics that exist: a renamed or added metric fails here until the
// docs follow.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, f := range sampleReport(t).Metrics() {
		written[f.Name] = true
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(posbridge_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = true
	}
	for name := range written {
		if !listed[name] {
			t.Errorf("metric %s is not in the table of docs/operations.md", name)
		}
	}
	for name := range listed {
		if !written[name] {
			t.Errorf("docs/operations.md lists %s, which status does not write", name)
		}
	}
	exprs := regexp.MustCompile(`(?m)^\s+expr: (.*)$`).FindAllStringSubmatch(string(doc), -1)
	if len(exprs) < 9 {
		t.Fatalf("docs/operations.md has %d alert rules, want one per status --check rule (9) at least", len(exprs))
	}
	for _, e := range exprs {
		for _, name := range regexp.MustCompile(`posbridge_[a-z_]+`).FindAllString(e[1], -1) {
			if !written[name] {
				t.Errorf("alert rule %q uses %s, which status does not write", e[1], name)
			}
		}
	}
}

// alertRE reads the alert rules of docs/operations.md that compare a
// metric with a number.
var alertRE = regexp.MustCompile(`^(posbridge_[a-z_]+)(?:\{([^}]*)\})? (>|==) ([0-9]+)$`)

// firing counts the series for which the rule expr holds on the report's
// metrics.
func firing(t *testing.T, expr string, fams []Family) int {
	t.Helper()
	m := alertRE.FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("alert rule %q: not of the form metric{label=\"value\"} > N", expr)
	}
	matchers, err := parseLabelsOrNone(m[2])
	if err != nil {
		t.Fatalf("alert rule %q: %v", expr, err)
	}
	limit, _ := strconv.ParseInt(m[4], 10, 64)
	n := 0
	for _, f := range fams {
		if f.Name != m[1] {
			continue
		}
	samples:
		for _, s := range f.Samples {
			labels := map[string]string{}
			for _, l := range s.Labels {
				labels[l.Name] = l.Value
			}
			for k, v := range matchers {
				if labels[k] != v {
					continue samples
				}
			}
			if m[3] == ">" && s.Value > limit || m[3] == "==" && s.Value == limit {
				n++
			}
		}
	}
	return n
}

func parseLabelsOrNone(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	labels, rest, err := parseLabels(s + "}")
	if err == nil && rest != "" {
		err = fmt.Errorf("text after the labels: %q", rest)
	}
	return labels, err
}

// Each status --check rule and its alert rule in docs/operations.md see
// the same thing: on a report with one problem, exactly one attention line
// and exactly one firing alert; on a healthy report (ages right at the
// thresholds), none of either.
func TestAlertRulesMatchCheck(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, m := range regexp.MustCompile(`(?m)^\s+expr: (.*)$`).FindAllStringSubmatch(string(doc), -1) {
		// The rule on stale metrics is about the timer, not the state.
		if !strings.Contains(m[1], "time()") {
			exprs = append(exprs, m[1])
		}
	}
	o := Options{MaxReadyAge: time.Hour, MaxInboxAge: time.Hour}
	healthy := func() *Report {
		exit0 := 0
		return &Report{
			Records:  map[string]int64{},
			Triggers: []TriggerStatus{{Pending: trigger.Pending{FileCode: "ITEM", Ready: 3, OldestReady: "2026-12-07T02:00:00Z"}, OldestReadyAge: 3600}},
			Unfinished: []UnfinishedExport{{UnfinishedFile: trigger.UnfinishedFile{Kind: "items", Name: "items_1.xml", Status: trigger.FileWriting,
				Since: "2026-12-07T02:00:00Z"}, AgeSeconds: 3600}},
			Jobs: []JobStatus{{Name: "nightly", Schedule: "@daily", LastRun: &ledger.Run{ID: 1, Status: ledger.RunOK, ExitCode: &exit0,
				Started: "2026-12-07T01:00:00Z", Ended: "2026-12-07T01:00:09Z"}}},
			Folders: []FolderStatus{{Job: "pickup", Role: RoleInbox, Path: "in", Files: 1, OldestAge: 3600},
				{Job: "pickup", Role: RoleError, Path: "in/error"}},
			Sites: []ledger.SiteHealth{{Site: "pos", Last: "2026-12-07T02:00:00Z", LastStatus: ledger.TransferDone}},
		}
	}
	fired := map[string]bool{}
	for name, c := range map[string]struct {
		problems int
		change   func(r *Report)
	}{
		"healthy":             {0, func(r *Report) {}},
		"trigger in error":    {1, func(r *Report) { r.Triggers[0].Error = 2 }},
		"old ready trigger":   {1, func(r *Report) { r.Triggers[0].OldestReadyAge = 3601 }},
		"unfinished export":   {1, func(r *Report) { r.Unfinished[0].AgeSeconds = 3601 }},
		"another host's file": {1, func(r *Report) { r.Unfinished[0].AgeSeconds = 7200; r.Unfinished[0].OtherHost = true }},
		"job failed":          {1, func(r *Report) { r.Jobs[0].LastRun.Status = ledger.RunFailed }},
		"job rejected":        {1, func(r *Report) { r.Jobs[0].LastRun.Status = ledger.RunRejects }},
		"job failed, running": {0, func(r *Report) { r.Jobs[0].LastRun.Status = ledger.RunFailed; r.Jobs[0].Running = &job.Lock{} }},
		"job missed":          {1, func(r *Report) { r.Jobs[0].Missed = "2026-12-07T01:00:00Z" }},
		"inbox stuck":         {1, func(r *Report) { r.Folders[0].OldestAge = 3601 }},
		"error folder":        {1, func(r *Report) { r.Folders[1].Files = 1 }},
		"unreadable folder":   {1, func(r *Report) { r.Folders[0].Error = "permission denied" }},
		"site failing":        {1, func(r *Report) { r.Sites[0].LastStatus = ledger.TransferFailed; r.Sites[0].FailedInRow = 3 }},
	} {
		r := healthy()
		c.change(r)
		r.Attention = Attention(r, o)
		fams := r.Metrics()
		alerts := 0
		for _, e := range exprs {
			if n := firing(t, e, fams); n > 0 {
				alerts += n
				fired[e] = true
			}
		}
		if len(r.Attention) != c.problems || alerts != c.problems {
			t.Errorf("%s: %d attention line(s) %q and %d firing alert(s), want %d of each", name, len(r.Attention), r.Attention, alerts, c.problems)
		}
	}
	for _, e := range exprs {
		if !fired[e] {
			t.Errorf("alert rule %q fired for none of the check rules", e)
		}
	}
}
