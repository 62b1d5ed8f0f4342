package cli

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
)

// The shipped configurations must stay valid as commands and settings
// change: config.example.yaml (every setting, the example jobs) and the
// demo's (make demo). Valid is what config validate says: the settings,
// the site folders, and every job step parsed by the command it runs.
func TestShippedConfigsAreValid(t *testing.T) {
	for file, jobs := range map[string][]string{
		"../../config.example.yaml":          {"inventory-pickup", "item-download", "nightly-full", "ongoing-purchase-orders", "order-events", "store-pickup"},
		"../../testdata/demo/posbridge.yaml": {"export-all", "nightly-full"},
	} {
		var out bytes.Buffer
		app := newApp(strings.NewReader(""), &out, io.Discard)
		root := newRoot(app)
		root.SetArgs([]string{"config", "validate", "--config", file})
		if err := root.Execute(); err != nil {
			t.Errorf("%s: %v\n%s", file, err, out.String())
			continue
		}
		_, set, err := app.Jobs()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := set.Names(); !slices.Equal(got, jobs) {
			t.Errorf("%s: jobs %v, want %v", file, got, jobs)
		}
	}
}
