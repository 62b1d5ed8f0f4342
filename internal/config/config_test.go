package config_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/posbridge/posbridge/internal/config"
)

// env is a fake environment for Options.LookupEnv. It always sets
// XDG_CONFIG_HOME to an empty folder so no real config file is found.
func env(t *testing.T, vars map[string]string) func(string) (string, bool) {
	t.Helper()
	xdg := t.TempDir()
	return func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		if name == "XDG_CONFIG_HOME" {
			return xdg, true
		}
		return "", false
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posbridge.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// flags is a flag set like the CLI's: flags annotated with the config key
// they set. args are parsed into it.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("posbridge", pflag.ContinueOnError)
	fs.String("data-dir", "./flag-default", "")
	fs.Int("purge-days", 99, "")
	fs.String("log-format", "text", "")
	fs.String("unrelated", "", "") // no annotation: never touches the config
	for name, key := range map[string]string{"data-dir": "data_dir", "purge-days": "triggers.purge_days", "log-format": "log.format"} {
		if err := fs.SetAnnotation(name, config.FlagKeyAnnotation, []string{key}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// inCleanDir runs the test in an empty working folder, so that no
// ./posbridge.yaml is picked up by the search.
func inCleanDir(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir())
	if _, err := os.Stat("/etc/posbridge/config.yaml"); err == nil {
		t.Skip("/etc/posbridge/config.yaml exists on this machine")
	}
}

func TestPrecedence(t *testing.T) {
	const file = "data_dir: /from/file\ntriggers:\n  purge_days: 10\nlog:\n  format: json\n"
	tests := []struct {
		name      string
		file      string
		env       map[string]string
		args      []string
		dataDir   string
		purgeDays int
		logFormat string
	}{
		{name: "defaults", dataDir: "./data", purgeDays: 7, logFormat: "text"},
		{name: "file over default", file: file, dataDir: "/from/file", purgeDays: 10, logFormat: "json"},
		{name: "env over default", env: map[string]string{"POSBRIDGE_TRIGGERS_PURGE_DAYS": "20"},
			dataDir: "./data", purgeDays: 20, logFormat: "text"},
		{name: "env over file", file: file,
			env:     map[string]string{"POSBRIDGE_DATA_DIR": "/from/env", "POSBRIDGE_TRIGGERS_PURGE_DAYS": "20"},
			dataDir: "/from/env", purgeDays: 20, logFormat: "json"},
		{name: "flag over env over file", file: file,
			env:     map[string]string{"POSBRIDGE_DATA_DIR": "/from/env", "POSBRIDGE_TRIGGERS_PURGE_DAYS": "20"},
			args:    []string{"--data-dir", "/from/flag", "--purge-days=30"},
			dataDir: "/from/flag", purgeDays: 30, logFormat: "json"},
		{name: "a flag not given does not override, even with a default of its own", file: file,
			env:     map[string]string{"POSBRIDGE_TRIGGERS_PURGE_DAYS": "20"},
			args:    []string{"--unrelated", "x"},
			dataDir: "/from/file", purgeDays: 20, logFormat: "json"},
		{name: "flag set to the same value as its default still overrides", file: file,
			args:    []string{"--log-format", "text"},
			dataDir: "/from/file", purgeDays: 10, logFormat: "text"},
		{name: "environment variables of other programs are ignored",
			env:     map[string]string{"DATA_DIR": "/nope", "POSBRIDGE_DATADIR": "/nope"},
			dataDir: "./data", purgeDays: 7, logFormat: "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inCleanDir(t)
			opts := config.Options{LookupEnv: env(t, tt.env), Flags: flags(t, tt.args...)}
			if tt.file != "" {
				opts.File = writeFile(t, tt.file)
			}
			c, err := config.Load(opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.DataDir != tt.dataDir || c.Triggers.PurgeDays != tt.purgeDays || c.Log.Format != tt.logFormat {
				t.Fatalf("data_dir=%q purge_days=%d log.format=%q, want %q %d %q",
					c.DataDir, c.Triggers.PurgeDays, c.Log.Format, tt.dataDir, tt.purgeDays, tt.logFormat)
			}
			if c.File != opts.File {
				t.Errorf("File = %q, want %q", c.File, opts.File)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	inCleanDir(t)
	c, err := config.Load(config.Options{LookupEnv: env(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		DataDir: "./data",
		Company: config.Company{Number: 1, Name: "Demo Retail"},
		Log:     config.Log{Format: "text", Level: "info"},
		DB:      config.DB{BusyTimeout: 10 * time.Second, CacheMiB: 8},
		Load:    config.Loads{UnknownReferences: "warn", MaxFieldLength: 1000},
		Triggers: config.Triggers{
			PurgeDays: 7,
		},
		Export: config.Export{Format: "xml", Source: "POSBRIDGE", Target: "POS", LockWait: time.Minute,
			MassCustomers: config.MassCustomers{Classes: []string{}}, XML: config.XMLExport{Framing: config.FramingBatch}},
		Import: config.Import{TransactionCodes: map[string]string{}, MinAge: 5 * time.Second},
		Locks:  config.Locks{TTL: 10 * time.Minute},
		Status: config.Status{MaxReadyAge: time.Hour, MaxInboxAge: time.Hour, Grace: 5 * time.Minute},
		CSV:    config.CSV{FormulaGuard: true},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("defaults:\n  got  %+v\n  want %+v", *c, want)
	}
	if got := c.DatabasePath(); got != filepath.Join("data", "posbridge.db") {
		t.Errorf("DatabasePath() = %q, want data/posbridge.db", got)
	}
	c.Database = "/srv/pos.db"
	if got := c.DatabasePath(); got != "/srv/pos.db" {
		t.Errorf("DatabasePath() with database set = %q, want /srv/pos.db", got)
	}
}

// Every kind of value arrives from the environment as a string.
func TestEnvironmentTypes(t *testing.T) {
	inCleanDir(t)
	c, err := config.Load(config.Options{LookupEnv: env(t, map[string]string{
		"POSBRIDGE_DB_BUSY_TIMEOUT":             "2m30s",
		"POSBRIDGE_DB_CACHE_MIB":                "64",
		"POSBRIDGE_LOAD_ALLOW_NEGATIVE_ON_HAND": "true",
		"POSBRIDGE_COMPANY_NAME":                "Acme: Stores",
		"POSBRIDGE_LOAD_UNKNOWN_REFERENCES":     "reject",
		"POSBRIDGE_DATABASE":                    "/var/lib/posbridge/state.db",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if c.DB.BusyTimeout != 150*time.Second || c.DB.CacheMiB != 64 || !c.Load.AllowNegativeOnHand ||
		c.Company.Name != "Acme: Stores" || c.Load.UnknownReferences != "reject" || c.DatabasePath() != "/var/lib/posbridge/state.db" {
		t.Fatalf("environment not applied: %+v", *c)
	}
}

func TestFileFoundBySearch(t *testing.T) {
	inCleanDir(t)
	if err := os.WriteFile("posbridge.yaml", []byte("company:\n  number: 42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.Options{LookupEnv: env(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Company.Number != 42 || c.File != "posbridge.yaml" {
		t.Fatalf("company.number=%d File=%q, want 42 from ./posbridge.yaml", c.Company.Number, c.File)
	}

	// XDG_CONFIG_HOME comes after the working folder.
	os.Remove("posbridge.yaml")
	xdg := t.TempDir()
	os.MkdirAll(filepath.Join(xdg, "posbridge"), 0o700)
	os.WriteFile(filepath.Join(xdg, "posbridge", "config.yaml"), []byte("company:\n  number: 43\n"), 0o600)
	c, err = config.Load(config.Options{LookupEnv: env(t, map[string]string{"XDG_CONFIG_HOME": xdg})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Company.Number != 43 {
		t.Fatalf("company.number=%d from %q, want 43 from $XDG_CONFIG_HOME/posbridge/config.yaml", c.Company.Number, c.File)
	}
}

func TestSearchPaths(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"XDG_CONFIG_HOME wins over HOME", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"},
			[]string{"posbridge.yaml", "/x/posbridge/config.yaml", "/etc/posbridge/config.yaml"}},
		{"HOME when XDG_CONFIG_HOME is unset", map[string]string{"HOME": "/h"},
			[]string{"posbridge.yaml", "/h/.config/posbridge/config.yaml", "/etc/posbridge/config.yaml"}},
		{"HOME when XDG_CONFIG_HOME is empty", map[string]string{"XDG_CONFIG_HOME": "", "HOME": "/h"},
			[]string{"posbridge.yaml", "/h/.config/posbridge/config.yaml", "/etc/posbridge/config.yaml"}},
		{"neither", nil, []string{"posbridge.yaml", "/etc/posbridge/config.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := config.SearchPaths(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("SearchPaths = %q, want %q", got, tt.want)
			}
		})
	}
}

// problems splits a joined error into its parts.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		// want are substrings that must each appear in exactly one of the
		// reported problems, and there must be no other problems.
		want []string
	}{
		{
			name: "unknown top-level key",
			file: "data_dir: ./d\ncolour: red\n",
			want: []string{`unknown setting "colour"`},
		},
		{
			name: "misspelt nested key",
			file: "triggers:\n  purge_dayz: 3\n",
			want: []string{`unknown setting "triggers.purge_dayz"`},
		},
		{
			name: "misspelt section",
			file: "trigger:\n  purge_days: 3\n",
			want: []string{`unknown setting "trigger`},
		},
		{
			name: "every invalid value is reported together",
			file: `company:
  number: 0
log:
  format: xml
  level: loud
db:
  cache_mib: 0
  busy_timeout: -1s
load:
  unknown_references: maybe
  max_field_length: 0
triggers:
  purge_days: 0
`,
			want: []string{"company.number", "log.format", "log.level", "db.cache_mib", "db.busy_timeout",
				"load.unknown_references", "load.max_field_length", "triggers.purge_days"},
		},
		{
			name: "unknown keys and invalid values together",
			file: "colour: red\nlog:\n  level: loud\n",
			want: []string{`unknown setting "colour"`, "log.level"},
		},
		{
			name: "invalid values from the environment and flags",
			env:  map[string]string{"POSBRIDGE_LOG_LEVEL": "chatty"},
			args: []string{"--log-format", "xml", "--data-dir", " "},
			want: []string{"log.level", "log.format", "data_dir"},
		},
		{
			name: "sites: type, dir, host, user and limits",
			file: `sites:
  a: {type: ftp}
  b: {type: local}
  c: {type: sftp, port: 0, connect_timeout: 0s, idle_timeout: -1s, retries: -1, parallel: 0}
`,
			want: []string{"sites.a.type", "sites.b.dir", "sites.c.host", "sites.c.user", "sites.c.port",
				"sites.c.connect_timeout", "sites.c.idle_timeout", "sites.c.retries", "sites.c.parallel"},
		},
		{
			name: "sites: http settings",
			file: `sites:
  h1: {type: http, base_url: "http://pos.example.com", bearer_env: T, basic_user: u, timeout: 0s, rate: -1, success: maybe}
  h2: {type: http, base_url: "https://u:p@pos.example.com", header: "X Auth", backoff: 1m, health_path: ping}
  h3: {type: http, base_url: "http://127.0.0.1:8080", header: X-Auth-Token, header_env: POS_TOKEN}
  h4: {type: http}
partners:
  p: {profile: store-pos, site: h3, endpoints: {orders: api/v1/salesOrders}}
`,
			want: []string{"sites.h1.base_url: must be https", "sites.h1.bearer_env: give one way", "sites.h1.basic_user: basic_user and password_env",
				"sites.h1.timeout", "sites.h1.rate", "sites.h1.success", "sites.h2.base_url: must not hold a user", "sites.h2.header: header (the",
				`sites.h2.header: "X Auth" is not a header name`, "sites.h2.backoff", "sites.h2.health_path", "sites.h4.base_url",
				"partners.p.endpoints.orders: must be a path"},
		},
		{
			name: "sites: a setting of another type of site is named, from the file or the environment",
			file: `sites:
  drop: {type: local, dir: /srv/drop, host: sftp.example.com, key_file: id, port: 2222, retries: 1, folders: {inbox: in}}
  srv: {type: sftp, host: h, user: u, base_url: "https://x.example.com", dir: /srv, password_env: P}
  api: {type: http, base_url: "https://api.example.com", known_hosts: kh, idle_timeout: 5s, password_env: P, basic_user: u}
`,
			env: map[string]string{"POSBRIDGE_SITES_API_HOST": "h"},
			want: []string{"sites.drop.host: a local site does not use it (a setting of sftp sites): remove it, or correct sites.drop.type",
				"sites.drop.key_file: a local site", "sites.drop.port: a local site",
				"sites.srv.base_url: an sftp site does not use it (a setting of http sites)", "sites.srv.dir: an sftp site does not use it (a setting of local sites)",
				"sites.api.known_hosts: an http site", "sites.api.idle_timeout: an http site", "sites.api.host: an http site"},
		},
		{
			name: "sites: secrets in the file are refused without their value",
			file: "sites:\n  p:\n    type: sftp\n    host: h\n    user: u\n    password: hunter2\n    key_passphrase: hunter2\n",
			want: []string{`"sites.p.password": secrets are not read`, `"sites.p.key_passphrase": secrets are not read`},
		},
		{
			name: "keys that differ only in letter case: one would silently win",
			file: "data_dir: ./d\nDATA_DIR: ./e\nsites:\n  DROP: {type: local, dir: /a}\n  drop: {type: local, dir: /b}\n" +
				"partners:\n  Shop: {profile: store-pos}\n  shop: {profile: store-pos, locations: {A1: S01, a1: S02}}\n" +
				"jobs:\n  Nightly: {steps: [{command: export items}]}\n  nightly: {steps: [{command: export items, flags: {Format: csv, format: xml}}]}\n",
			want: []string{"line 2: DATA_DIR and data_dir (line 1) are one key in two spellings",
				"line 5: sites.drop and sites.DROP (line 4) are one key in two spellings",
				"line 8: partners.shop and partners.Shop (line 7)",
				"line 8: partners.shop.locations.a1 and partners.shop.locations.A1 (line 8)",
				"line 11: jobs.nightly and jobs.Nightly (line 10)",
				"line 11: jobs.nightly.steps[0].flags.format and jobs.nightly.steps[0].flags.Format (line 11)"},
		},
		{
			name: "names with a dot are named as written",
			file: "sites:\n  ../../x: {type: local, dir: /srv}\npartners:\n  a.b: {profile: oms}\njobs:\n  nightly.full: {steps: [{command: export items}]}\n",
			want: []string{`line 2: sites."../../x": a site name cannot hold "."`, `line 4: partners."a.b": a partner name cannot hold "."`,
				`line 6: jobs."nightly.full": a job name cannot hold "."`},
		},
		{
			name: "a site name that is not a plain word",
			file: "sites:\n  a/b: {type: local, dir: /srv}\n",
			want: []string{`sites.a/b: a site name goes into locks and messages: use letters, digits, - and _ only`},
		},
		{
			name: "whole numbers out of range, as written",
			file: "db:\n  cache_mib: 99999999999999999999\ntriggers:\n  purge_days: 9999999999999999999\nsites:\n  s: {type: sftp, host: h, user: u, port: 2.5}\n",
			want: []string{"db.cache_mib: 99999999999999999999 is out of range: at most 9223372036854775807",
				"triggers.purge_days: 9999999999999999999 is out of range", "sites.s.port: 2.5 is not a whole number"},
		},
		{
			name: "a whole number out of range from the environment",
			env:  map[string]string{"POSBRIDGE_DB_CACHE_MIB": "99999999999999999999", "POSBRIDGE_TRIGGERS_PURGE_DAYS": "x"},
			want: []string{"db.cache_mib: 99999999999999999999 is out of range", `triggers.purge_days: "x" is not a whole number`},
		},
		{
			name: "cache size above the limit",
			file: "db:\n  cache_mib: 5000\n",
			want: []string{"db.cache_mib"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inCleanDir(t)
			opts := config.Options{LookupEnv: env(t, tt.env), Flags: flags(t, tt.args...)}
			if tt.file != "" {
				opts.File = writeFile(t, tt.file)
			}
			_, err := config.Load(opts)
			if err == nil {
				t.Fatal("Load succeeded, want problems")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			got := problems(err)
			if len(got) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for _, w := range tt.want {
				n := 0
				for _, p := range got {
					if strings.Contains(p.Error(), w) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d problems mention %q, want 1:\n%v", n, w, err)
				}
			}
			for _, p := range got {
				if !errors.Is(p, config.ErrInvalid) {
					t.Errorf("problem %q is not ErrInvalid", p)
				}
			}
		})
	}
}

func TestUnreadableConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		file    func(t *testing.T) string
		wantErr string
	}{
		{"missing --config file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.yaml") }, "nope.yaml"},
		{"YAML syntax error", func(t *testing.T) string { return writeFile(t, "log:\n  format: [text\n  level: info\n") }, "posbridge.yaml"},
		{"tabs for indentation", func(t *testing.T) string { return writeFile(t, "log:\n\tformat: text\n") }, "posbridge.yaml"},
		{"wrong type of value", func(t *testing.T) string { return writeFile(t, "db:\n  cache_mib: lots\n") }, "posbridge.yaml"},
		{"a list where a section belongs", func(t *testing.T) string { return writeFile(t, "log:\n  - text\n") }, "posbridge.yaml"},
		{"a folder", func(t *testing.T) string { return t.TempDir() }, "is a folder: not a regular file"},
		{"a named pipe", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "pipe.yaml")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a named pipe (FIFO): not a regular file"},
		{"UTF-16", func(t *testing.T) string { return writeFile(t, "\xff\xfed\x00a\x00t\x00a\x00") }, "is UTF-16 (little endian): save it as UTF-8"},
		{"larger than a config file is", func(t *testing.T) string {
			return writeFile(t, "# "+strings.Repeat("x", config.MaxFileSize)+"\n")
		}, "larger than 1024 KiB: not a configuration file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inCleanDir(t)
			path := tt.file(t)
			_, err := config.Load(config.Options{File: path, LookupEnv: env(t, nil)})
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name the file %q", err, path)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q should say %q", err, tt.wantErr)
			}
		})
	}
}

func TestRedactedShowsTheWholeConfig(t *testing.T) {
	inCleanDir(t)
	c, err := config.Load(config.Options{LookupEnv: env(t, map[string]string{"POSBRIDGE_COMPANY_NAME": "Acme"})})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	for _, key := range []string{"data_dir", "database", "company", "log", "db", "load", "triggers"} {
		if _, ok := r[key]; !ok {
			t.Errorf("Redacted() has no %q", key)
		}
	}
	if _, ok := r["File"]; ok {
		t.Error("Redacted() shows the File field, which is not a setting")
	}
	company := r["company"].(map[string]any)
	if company["name"] != "Acme" || company["number"] != 1 {
		t.Errorf("company = %v, want name Acme and number 1 shown as they are", company)
	}
	if got := r["db"].(map[string]any)["busy_timeout"]; got != "10s" {
		t.Errorf("db.busy_timeout = %#v, want the readable duration \"10s\"", got)
	}
}

func TestSiteDefaultsAndEnvironment(t *testing.T) {
	inCleanDir(t)
	path := writeFile(t, "sites:\n  Partner:\n    type: sftp\n    host: h\n    user: u\n    folders: {inbox: /in}\n  drop:\n    type: local\n")
	cfg, err := config.Load(config.Options{File: path, LookupEnv: env(t, map[string]string{
		"POSBRIDGE_SITES_DROP_DIR":     "/srv/drop",
		"POSBRIDGE_SITES_PARTNER_PORT": "2222",
	})})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Sites["partner"]
	want := config.Site{Type: "sftp", Host: "h", User: "u", Port: 2222, ConnectTimeout: 10 * time.Second,
		IdleTimeout: 60 * time.Second, Retries: 3, Parallel: 4, Timeout: 30 * time.Second, Backoff: time.Second,
		BackoffMax: 30 * time.Second, Folders: map[string]string{"inbox": "/in"}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("partner = %+v\nwant      %+v", p, want)
	}
	if d := cfg.Sites["drop"]; d.Dir != "/srv/drop" || d.Type != "local" {
		t.Errorf("drop = %+v", d)
	}
}

// fill sets every field of the struct v points to to a value that is not
// zero, by the field's kind.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
			f.SetMapIndex(reflect.ValueOf("k"), reflect.New(f.Type().Elem()).Elem())
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("fill: no value for field %s of kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// notZero fails for every field of v that is zero: a field the
// translation into the domain's type forgot.
func notZero(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("%s.%s is not translated from the configuration", v.Type(), v.Type().Field(i).Name)
		}
	}
}

// The domains see the partners and jobs in their own types: every field
// of the configuration's gets there.
func TestTranslatedIntoTheDomains(t *testing.T) {
	var p config.Partner
	fill(t, reflect.ValueOf(&p).Elem())
	c := &config.Config{Partners: map[string]config.Partner{"shop": p}, Jobs: map[string]config.Job{
		"j": {Description: "d", Schedule: "@daily", OnFailure: "continue", Timeout: time.Minute,
			Steps: []config.Step{{Command: "export items", Args: []string{"a"}, Flags: map[string]any{"out": "o"}, OnFailure: "stop"}}}}}
	prof, err := c.Partner("shop")
	if err != nil {
		t.Fatal(err)
	}
	notZero(t, reflect.ValueOf(prof))
	// The profile has the partner's name besides every setting.
	if got, want := reflect.TypeOf(prof).NumField(), reflect.TypeOf(p).NumField()+1; got != want {
		t.Errorf("partner.Profile has %d fields, config.Partner %d: a setting the domain does not see", got, want-1)
	}
	if prof.Name != "shop" || prof.Kind != p.Profile || prof.Warehouse != p.Warehouse {
		t.Errorf("partner shop = %+v", prof)
	}
	if site, ok := c.SitePartner(p.Site); !ok || !reflect.DeepEqual(site, prof) {
		t.Errorf("SitePartner(%q) = %+v, %v", p.Site, site, ok)
	}
	j := c.JobSpecs()["j"]
	notZero(t, reflect.ValueOf(j))
	notZero(t, reflect.ValueOf(j.Steps[0]))
	for _, pair := range [][2]any{{j, config.Job{}}, {j.Steps[0], config.Step{}}} {
		if got, want := reflect.TypeOf(pair[0]).NumField(), reflect.TypeOf(pair[1]).NumField(); got != want {
			t.Errorf("%T has %d fields, %T %d: a setting the domain does not see", pair[0], got, pair[1], want)
		}
	}
}

// config show prints each site's own settings: no host on a local site,
// no base_url on an sftp one.
func TestRedactedShowsEachSiteItsKeys(t *testing.T) {
	inCleanDir(t)
	path := writeFile(t, "sites:\n  drop:\n    type: local\n    dir: /srv/drop\n  partner:\n    type: sftp\n    host: h\n    user: u\n"+
		"  api:\n    type: http\n    base_url: https://pos.example.com\n    bearer_env: T\n")
	cfg, err := config.Load(config.Options{File: path, LookupEnv: env(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	sites := cfg.Redacted()["sites"].(map[string]any)
	keys := func(site string) string {
		return strings.Join(slices.Sorted(maps.Keys(sites[site].(map[string]any))), " ")
	}
	for site, want := range map[string]string{
		"drop":    "dir folders parallel retries type",
		"partner": "connect_timeout folders host idle_timeout key_file key_passphrase_env known_hosts parallel password_env port retries root type user",
		"api":     "backoff backoff_max base_url basic_user bearer_env ca_file folders header header_env health_path http2 parallel password_env rate retries success timeout type",
	} {
		if got := keys(site); got != want {
			t.Errorf("%s shows %s\nwant %s", site, got, want)
		}
	}
}

// A PostgreSQL URL in database: may carry a password: config show leaves
// it out and keeps the rest.
func TestRedactedLeavesOutTheDatabasePassword(t *testing.T) {
	inCleanDir(t)
	c, err := config.Load(config.Options{LookupEnv: env(t, map[string]string{
		"POSBRIDGE_DATABASE": "postgres://pb:s3cret@db1.example:5432/posbridge?sslmode=require"})})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Redacted()["database"]
	if got != "postgres://pb@db1.example:5432/posbridge?sslmode=require" {
		t.Errorf("database shown as %v, want the URL without its password", got)
	}
}
