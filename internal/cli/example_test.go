package cli

import (
	"io"
	"strings"
	"testing"
)

// The shipped configurations must stay valid as commands and settings
// change: config.example.yaml (every setting, the example jobs) and the
// demo's (make demo).
func TestShippedConfigsAreValid(t *testing.T) {
	for file, jobs := range map[string][]string{
		"../../config.example.yaml":          {"inventory-pickup", "item-download", "nightly-full", "order-events", "ongoing-purchase-orders", "store-pickup"},
		"../../testdata/demo/posbridge.yaml": {"export-all", "nightly-full"},
	} {
		app := &App{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, ConfigFile: file}
		cfg, err := app.Config()
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		for _, j := range jobs {
			if _, ok := cfg.Jobs[j]; !ok {
				t.Errorf("%s: job %q is missing", file, j)
			}
		}
		if len(cfg.Jobs) != len(jobs) {
			t.Errorf("%s: %d jobs, want %d", file, len(cfg.Jobs), len(jobs))
		}
	}
}
