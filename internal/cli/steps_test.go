package cli

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/partner"
)

// The locks of a job step are what its command declares from its parsed
// options, on the real command tree: these are the lock rules of run's
// help (export:KIND, load:KIND, import:KIND, site:SITE, folder:HOST:PATH,
// triggers).

func stepConfig(jobs map[string]config.Job) *config.Config {
	return &config.Config{
		Sites: map[string]config.Site{"pos": {Type: "local", Dir: "/srv/pos"}, "wms": {Type: "sftp", Host: "wms.example"}},
		Jobs:  jobs,
		Locks: config.Locks{TTL: time.Minute},
	}
}

func jobStep(command string, flags map[string]any, args ...string) config.Step {
	return config.Step{Command: command, Flags: flags, Args: args}
}

func buildJob(cfg *config.Config, name string) (*job.Plan, error) {
	return job.NewSet(cfg.JobSpecs(), newStepTree(cfg)).Get(name)
}

func TestStepLocks(t *testing.T) {
	inbox := t.TempDir()
	for _, f := range []string{"stores.csv", "a.xml"} {
		if err := os.WriteFile(filepath.Join(inbox, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := stepConfig(map[string]config.Job{
		"export-push": {Steps: []config.Step{
			jobStep("export items", map[string]any{"out": "outbox", "max-records": 500}),
			jobStep("push", map[string]any{"site": "pos", "from": "/srv/outbox/items"}),
		}},
		"pickup": {Steps: []config.Step{
			jobStep("pull", map[string]any{"site": "wms", "to": "/srv/inbox/", "from": "outbox"}),
			jobStep("import inventory-transactions", nil, "/srv/inbox"),
			jobStep("trigger generate", map[string]any{"type": "item"}),
			jobStep("load items ./extracts/items.csv", nil),
		}},
		"nightly": {Steps: []config.Step{
			jobStep("run export-push", nil),
			jobStep("run", nil, "pickup"),
			jobStep("db backup", nil, "/srv/backup.db"),
		}},
		"more": {Steps: []config.Step{
			jobStep("import stores", nil, filepath.Join(inbox, "stores.csv"), inbox),
			jobStep("trigger purge", nil),
			jobStep("inquire", map[string]any{"requests": "/srv/requests", "responses": "/srv/responses"}),
			jobStep("push", map[string]any{"site": "pos"}, filepath.Join(inbox, "a.xml")),
			jobStep("export mass-customers", nil),
			jobStep("runs purge", nil),
		}},
	})
	outbox, err := filepath.Abs("outbox")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		steps [][]string
		locks []string
	}{
		"export-push": {[][]string{{"export:items", job.FolderLock(outbox)}, {"site:pos", job.FolderLock("/srv/outbox/items")}},
			[]string{"export:items", job.FolderLock(outbox), job.FolderLock("/srv/outbox/items"), "job:export-push", "site:pos"}},
		"pickup": {[][]string{{"site:wms", job.FolderLock("/srv/inbox")}, {"import:inventory-transactions", job.FolderLock("/srv/inbox")}, {"triggers"}, {"load:items"}},
			[]string{job.FolderLock("/srv/inbox"), "import:inventory-transactions", "job:pickup", "load:items", "site:wms", "triggers"}},
		// A job that runs jobs holds their locks too.
		"nightly": {[][]string{nil, nil, nil},
			[]string{"export:items", job.FolderLock(outbox), job.FolderLock("/srv/inbox"), job.FolderLock("/srv/outbox/items"),
				"import:inventory-transactions", "job:export-push", "job:nightly", "job:pickup", "load:items", "site:pos", "site:wms", "triggers"}},
		// A file locks its folder, as the folder does.
		"more": {[][]string{{"import:stores", job.FolderLock(inbox), job.FolderLock(inbox)}, {"triggers"}, {job.FolderLock("/srv/requests")},
			{"site:pos", job.FolderLock(inbox)}, {"export:mass-customers"}, nil},
			[]string{"export:mass-customers", job.FolderLock(inbox), job.FolderLock("/srv/requests"), "import:stores", "job:more", "site:pos", "triggers"}},
	} {
		p, err := buildJob(cfg, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(p.Steps) != len(want.steps) {
			t.Fatalf("%s: %d steps, want %d", name, len(p.Steps), len(want.steps))
		}
		for i, s := range p.Steps {
			if !slices.Equal(s.Locks, want.steps[i]) {
				t.Errorf("%s step %d (%s) locks = %v, want %v", name, s.Index, s, s.Locks, want.steps[i])
			}
		}
		if slices.Sort(want.locks); !reflect.DeepEqual(p.Locks, want.locks) {
			t.Errorf("%s locks = %v, want %v", name, p.Locks, want.locks)
		}
	}

	// The steps of the runs and what they take files from.
	p, err := buildJob(cfg, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if p.Steps[0].Job != "export-push" || p.Steps[1].Job != "pickup" || p.Steps[2].Job != "" {
		t.Errorf("nightly step jobs = %q, %q, %q", p.Steps[0].Job, p.Steps[1].Job, p.Steps[2].Job)
	}
	p, err = buildJob(cfg, "more")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Inboxes(); !slices.Equal(got, []string{inbox}) {
		t.Errorf("more inboxes = %v, want the folder of its import, %s", got, inbox)
	}
}

// A push or pull step with --partner and no --site holds the lock of the
// partner's site.
func TestPartnerStepLocksItsSite(t *testing.T) {
	cfg := stepConfig(map[string]config.Job{
		"events":  {Steps: []config.Step{jobStep("push", map[string]any{"partner": "increff", "from": "/srv/outbox/events"})}},
		"orphan":  {Steps: []config.Step{jobStep("pull", map[string]any{"partner": "siteless", "to": "/srv/in"})}},
		"unknown": {Steps: []config.Step{jobStep("pull", map[string]any{"partner": "nobody", "to": "/srv/in"})}},
	})
	cfg.Sites["pos-api"] = config.Site{Type: "http", BaseURL: "https://pos.example"}
	cfg.Partners = map[string]config.Partner{"increff": {Profile: partner.ExternalOMS, Site: "pos-api"},
		"siteless": {Profile: partner.ExternalOMS}}
	p, err := buildJob(cfg, "events")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{job.FolderLock("/srv/outbox/events"), "job:events", "site:pos-api"}; !reflect.DeepEqual(p.Locks, want) {
		t.Errorf("locks = %v, want %v", p.Locks, want)
	}
	if _, err := buildJob(cfg, "orphan"); err == nil || !strings.Contains(err.Error(), "needs the site") {
		t.Errorf("a step without a site: %v", err)
	}
	// An unknown partner is named as every command names it.
	if _, err := buildJob(cfg, "unknown"); err == nil ||
		!strings.Contains(err.Error(), `steps[1].flags.partner: unknown partner "nobody" (configured: increff, siteless; see partners: in the config)`) {
		t.Errorf("a step with an unknown partner: %v", err)
	}
}

// What a step may not be or set is the command tree's to say.
func TestStepProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		step config.Step
		want []string // one substring per expected error, in order
	}{
		{"unknown command", jobStep("frobnicate now", nil), []string{`jobs.x.steps[1]: frobnicate now: unknown command "frobnicate now"`}},
		{"unknown flag", jobStep("export items", map[string]any{"bogus": 1}), []string{`jobs.x.steps[1]: export items: unknown flag: --bogus`}},
		{"not a step", jobStep("status", nil), []string{`jobs.x.steps[1].command: "status" cannot be a step: a step runs one of ` +
			`load, trigger generate, trigger purge, export, import, push, pull, inquire, run, db backup, runs purge`}},
		{"read-only command", jobStep("inquire inventory", map[string]any{"item": "I1"}), []string{`jobs.x.steps[1].command: "inquire inventory" cannot be a step`}},
		{"repair command", jobStep("trigger retry", nil, "1"), []string{`jobs.x.steps[1].command: "trigger retry" cannot be a step`}},
		{"missing command", jobStep("  ", nil), []string{`jobs.x.steps[1].command: missing: name the command to run, one of: load, trigger generate,`}},
		{"unknown site", jobStep("push", map[string]any{"site": "nowhere"}), []string{`jobs.x.steps[1].flags.site: site "nowhere" is not configured (configured: pos, wms)`}},
		{"unknown site of a pull", jobStep("pull", map[string]any{"site": "nowhere", "to": "/in"}), []string{`jobs.x.steps[1].flags.site: site "nowhere"`}},
		{"no site", jobStep("push", map[string]any{"from": "/out"}), []string{`jobs.x.steps[1].flags.site: a push step needs the site: flags: {site: NAME} or a partner with a site (configured: pos, wms)`}},
		{"unknown outbox", jobStep("push", map[string]any{"site": "pos", "outbox": "nowhere"}), []string{`jobs.x.steps[1]: push: --outbox `}},
		{"global flags", jobStep("export items", map[string]any{"config": "/etc/p.yaml", "data-dir": "/var/p", "log-format": "json", "quiet": true, "verbose": true}),
			[]string{`jobs.x.steps[1].flags.config: --config is a global flag`, `jobs.x.steps[1].flags.data-dir: --data-dir is a global flag`,
				`jobs.x.steps[1].flags.log-format: --log-format is a global flag`, `jobs.x.steps[1].flags.quiet: --quiet is a global flag`,
				`jobs.x.steps[1].flags.verbose: --verbose is a global flag`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := stepConfig(map[string]config.Job{"x": {Steps: []config.Step{c.step}}})
			errs := job.Validate(cfg.JobSpecs(), newStepTree(cfg))
			if len(errs) != len(c.want) {
				t.Fatalf("Validate = %d errors, want %d: %v", len(errs), len(c.want), errs)
			}
			for i, w := range c.want {
				if !errors.Is(errs[i], job.ErrInvalid) {
					t.Errorf("error %d %q does not wrap job.ErrInvalid", i, errs[i])
				}
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}
