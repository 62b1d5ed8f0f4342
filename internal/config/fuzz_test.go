package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/posbridge/posbridge/internal/config"
)

// FuzzConfig feeds config files to Load: it never panics, every problem
// is ErrInvalid, and a valid configuration written out as config show
// writes it (Redacted, in YAML) loads again to the same configuration.
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		"data_dir: ./data\n",
		"data_dir: ./d\nDATA_DIR: ./e\n",
		"sites:\n  pos: {type: local, dir: /srv/drop}\n  POS: {type: local, dir: /x}\n",
		"sites:\n  ../../x: {type: local, dir: /srv}\n",
		"db:\n  cache_mib: 99999999999999999999\n",
		"db:\n  cache_mib: 2.5\n",
		"partners:\n  shop: {profile: store-pos, sku_code: xref, warehouse: S01, locations: {\"101\": S01}}\n",
		"jobs:\n  item-download:\n    schedule: \"*/15 * * * *\"\n    steps:\n      - command: export items\n        flags: {format: csv}\n",
		"import:\n  transaction_codes: {X: A}\n  min_age: 10s\n",
		"a: &x {b: 1}\nc: *x\n",
		"log: [text\n",
		"\xff\xfed\x00a\x00",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	lookup := func(name string) (string, bool) {
		if name == "XDG_CONFIG_HOME" {
			return dir, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "posbridge.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(config.Options{File: path, LookupEnv: lookup})
		if err != nil {
			for _, p := range problems(err) {
				if !errors.Is(p, config.ErrInvalid) {
					t.Fatalf("%q: problem %v is not ErrInvalid", data, p)
				}
			}
			return
		}
		var shown bytes.Buffer
		if err := yaml.NewEncoder(&shown).Encode(c.Redacted()); err != nil {
			t.Fatalf("%q: show: %v", data, err)
		}
		again := filepath.Join(t.TempDir(), "shown.yaml")
		if err := os.WriteFile(again, shown.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		c2, err := config.Load(config.Options{File: again, LookupEnv: lookup})
		if err != nil {
			t.Fatalf("%q: config show wrote\n%s\nwhich does not load: %v", data, shown.Bytes(), err)
		}
		if !reflect.DeepEqual(c.Redacted(), c2.Redacted()) {
			t.Fatalf("%q: config show wrote\n%s\nwhich loads to another configuration", data, shown.Bytes())
		}
	})
}
