package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/partner"
)

// Config is the effective configuration. Field tags name the YAML keys; the
// environment variable of a key is POSBRIDGE_ followed by the key path in
// upper case with "." replaced by "_" (data_dir: POSBRIDGE_DATA_DIR,
// triggers.purge_days: POSBRIDGE_TRIGGERS_PURGE_DAYS).
type Config struct {
	DataDir  string   `mapstructure:"data_dir"`
	Database string   `mapstructure:"database"`
	Company  Company  `mapstructure:"company"`
	Log      Log      `mapstructure:"log"`
	DB       DB       `mapstructure:"db"`
	Load     Loads    `mapstructure:"load"`
	Triggers Triggers `mapstructure:"triggers"`
	Export   Export   `mapstructure:"export"`
	Import   Import   `mapstructure:"import"`
	// Sites are the places files are pushed to and pulled from, by name.
	Sites map[string]Site `mapstructure:"sites"`
	// Partners are the systems that speak another dialect than the OMS
	// formats (docs/partners.md), by name.
	Partners map[string]Partner `mapstructure:"partners"`
	// Jobs are the named pipelines posbridge run executes, by name.
	Jobs   map[string]Job `mapstructure:"jobs"`
	Locks  Locks          `mapstructure:"locks"`
	Status Status         `mapstructure:"status"`
	CSV    CSV            `mapstructure:"csv"`

	// File is the config file that was read, empty when none was found.
	File string `mapstructure:"-"`
}

// Company identifies the one company whose data this database holds.
type Company struct {
	Number int    `mapstructure:"number"`
	Name   string `mapstructure:"name"`
}

// Log sets how messages on stderr look.
type Log struct {
	Format string `mapstructure:"format"`
	Level  string `mapstructure:"level"`
}

// DB tunes the SQLite connection.
type DB struct {
	BusyTimeout time.Duration `mapstructure:"busy_timeout"`
	CacheMiB    int           `mapstructure:"cache_mib"`
}

// Loads tunes master data loads.
type Loads struct {
	// UnknownReferences says what happens to a row that names a record of
	// another kind that is not loaded (an item's vendor, an invoice's
	// customer or item): "warn" applies it and reports a warning, "reject"
	// rejects it.
	UnknownReferences string `mapstructure:"unknown_references"`
	// AllowNegativeOnHand accepts negative on_hand in inventory loads.
	AllowNegativeOnHand bool `mapstructure:"allow_negative_on_hand"`
	// MaxFieldLength caps every text field that has no narrower limit.
	MaxFieldLength int `mapstructure:"max_field_length"`
}

// CSV tunes the CSV files meant for spreadsheets (docs/formats.md, "CSV
// files meant for spreadsheets").
type CSV struct {
	// FormulaGuard puts a single quote before a cell of those files that a
	// spreadsheet would run as a formula (format.SpreadsheetSafe).
	FormulaGuard bool `mapstructure:"formula_guard"`
}

// Triggers tunes the outbound trigger table.
type Triggers struct {
	PurgeDays int `mapstructure:"purge_days"`
}

// Export tunes the export commands.
type Export struct {
	// Outbox is the folder export files go to, one subfolder per kind;
	// empty means <data_dir>/outbox.
	Outbox string `mapstructure:"outbox"`
	// Format is the default file format: xml or csv.
	Format string `mapstructure:"format"`
	// Source and Target go into the XML message envelope.
	Source string `mapstructure:"source"`
	Target string `mapstructure:"target"`
	// MaxRecords splits files after so many records; 0 means no split.
	MaxRecords int `mapstructure:"max_records"`
	// Marker writes F.done beside every file F.
	Marker bool `mapstructure:"marker"`
	// LockWait is how long a run waits for another run of the same kind.
	LockWait time.Duration `mapstructure:"lock_wait"`
	// ExcludeNonAllocatable leaves non-allocatable warehouses out of
	// inventory files.
	ExcludeNonAllocatable bool          `mapstructure:"exclude_non_allocatable"`
	MassCustomers         MassCustomers `mapstructure:"mass_customers"`
	XML                   XMLExport     `mapstructure:"xml"`
}

// XML framings of the XML exports.
const (
	FramingBatch  = "batch"  // one Message per file, with posbridge's envelope attributes (the default)
	FramingOracle = "oracle" // one Message per record, with only source, target and type
)

// XMLExport says how XML export files are framed.
type XMLExport struct {
	// Framing is batch (one Message with company, created, sequence and
	// count around the file's records) or oracle (one Message per record,
	// as the OMS sends its generic downloads).
	Framing string `mapstructure:"framing"`
	// FilePerMessage writes each Message of the oracle framing to a file
	// of its own instead of one file with a root around them.
	FilePerMessage bool `mapstructure:"file_per_message"`
}

// Import tunes the upload imports.
type Import struct {
	// AllowNegativeOnHand accepts transactions that leave on hand below 0.
	AllowNegativeOnHand bool `mapstructure:"allow_negative_on_hand"`
	// TransactionCodes maps user-defined transaction codes to the effect of
	// a standard code (A, O, T, G, V, S, R, P).
	TransactionCodes map[string]string `mapstructure:"transaction_codes"`
	// MinAge leaves files younger than this in a folder for the next run.
	MinAge time.Duration `mapstructure:"min_age"`
	// ProcessedDir and ErrorDir are where directory mode moves files;
	// empty means processed/ and error/ inside the input folder.
	ProcessedDir string `mapstructure:"processed_dir"`
	ErrorDir     string `mapstructure:"error_dir"`
}

// Site is a place files move to and from: a local directory (type local),
// an SFTP server (type sftp) or a partner's REST API (type http). Secrets
// never appear here: only the names of the environment variables that hold
// them.
type Site struct {
	Type string `mapstructure:"type"`
	// Dir is the root folder of a local site.
	Dir string `mapstructure:"dir"`

	Host             string        `mapstructure:"host"`
	Port             int           `mapstructure:"port"`
	User             string        `mapstructure:"user"`
	KeyFile          string        `mapstructure:"key_file"`
	KeyPassphraseEnv string        `mapstructure:"key_passphrase_env"`
	PasswordEnv      string        `mapstructure:"password_env"`
	KnownHosts       string        `mapstructure:"known_hosts"`
	ConnectTimeout   time.Duration `mapstructure:"connect_timeout"`
	IdleTimeout      time.Duration `mapstructure:"idle_timeout"`
	Retries          int           `mapstructure:"retries"`
	Parallel         int           `mapstructure:"parallel"`
	// Root confines every path of an sftp site below this absolute path
	// on the server (a local site's root is its Dir); empty: no limit.
	Root string `mapstructure:"root"`

	// BaseURL is an http site's address (https; http only for a loopback
	// host); endpoints are paths under it. CAFile adds a CA to the
	// system's: TLS is always verified.
	BaseURL string `mapstructure:"base_url"`
	CAFile  string `mapstructure:"ca_file"`
	// An http site authenticates with one of: a bearer token (BearerEnv),
	// basic auth (BasicUser with PasswordEnv), or a named header (Header,
	// such as X-Auth-Token) whose value is in HeaderEnv.
	BearerEnv string `mapstructure:"bearer_env"`
	BasicUser string `mapstructure:"basic_user"`
	Header    string `mapstructure:"header"`
	HeaderEnv string `mapstructure:"header_env"`
	// Timeout ends one request; Backoff is the wait before the first
	// retry of a request (doubling, with jitter, at most BackoffMax).
	Timeout    time.Duration `mapstructure:"timeout"`
	Backoff    time.Duration `mapstructure:"backoff"`
	BackoffMax time.Duration `mapstructure:"backoff_max"`
	// Rate caps the requests per second (0: no cap).
	Rate float64 `mapstructure:"rate"`
	// HealthPath is what sites test asks for; empty means the base URL.
	HealthPath string `mapstructure:"health_path"`
	// HTTP2 offers HTTP/2 to the server; without it requests go over
	// HTTP/1.1, one keep-alive connection for each of parallel.
	HTTP2 bool `mapstructure:"http2"`
	// Success is the answer rule besides a 2xx status: "status" (the
	// status alone) or "has_error_false" (the body's hasError must be
	// false); empty means the partner profile's rule.
	Success string `mapstructure:"success"`

	// Folders name the site's folders (inbox, outbox, archive, error) by
	// role; a pull archives into Folders["archive"].
	Folders map[string]string `mapstructure:"folders"`
}

// plainName is what a partner or site may be called: a partner's name goes
// into the names of its files and folders, a site's into locks.
var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Partner is a system with a profile of its own, as the file writes it;
// the commands see it as a partner.Profile (Config.Partner).
type Partner struct {
	// Profile is the kind of partner.Profile: oms, external-oms,
	// store-pos or wms.
	Profile string `mapstructure:"profile"`
	// SKUCode says how the partner names SKUs: item, upc or xref.
	SKUCode string `mapstructure:"sku_code"`
	// Location is the partner's code for the place it trades from (its
	// locationCode / locationId / warehouseId); Warehouse is ours.
	Location  string `mapstructure:"location"`
	Warehouse string `mapstructure:"warehouse"`
	// Site is where its files go and come from (sites.NAME); optional.
	Site string `mapstructure:"site"`
	// Locations maps the partner's own ids of the places it trades from
	// (a store POS's locationId, a WMS's warehouseCode) to our
	// warehouses. A message that names no place goes to Warehouse; one
	// that names a place not in the map is refused. The partner's ids
	// are compared in any letter case (YAML keys are read in lower case).
	Locations map[string]string `mapstructure:"locations"`
	// WarehouseID is the partner's number of Warehouse (a WMS's
	// warehouseId), written in its inventory per warehouse.
	WarehouseID int64 `mapstructure:"warehouse_id"`
	// GoodsOwnerID is the WMS goods owner the partner stands for
	// (goodsOwnerId); a message of another goods owner is refused. 0: any.
	GoodsOwnerID int64 `mapstructure:"goods_owner_id"`
	// TimeFormat is how times go out in the partner's JSON messages:
	// "documented" (the default: the shape the partner's pages show, for
	// an external OMS dd-MM-yyyy'T'HH:mm:ss) or "iso8601".
	TimeFormat string `mapstructure:"time_format"`
	// ChannelType goes into an external OMS's sales posting events
	// (channelType); empty means ERP.
	ChannelType string `mapstructure:"channel_type"`
	// Endpoints are the paths of the partner's API on its http site by
	// what goes there: order-events, orders, purchase-orders,
	// inventory-adjustments, ... (push --partner, pull --partner --what).
	Endpoints map[string]string `mapstructure:"endpoints"`
}

// ErrUnknownPartner means a partner name the configuration does not have.
var ErrUnknownPartner = errors.New("unknown partner")

// Partner returns the partner configured under name, or an error wrapping
// ErrUnknownPartner that names the configured ones and where to add one:
// the one message of every command that takes a partner.
func (c *Config) Partner(name string) (partner.Profile, error) {
	if p, ok := c.Partners[name]; ok {
		return p.profile(name), nil
	}
	configured := strings.Join(slices.Sorted(maps.Keys(c.Partners)), ", ")
	if configured == "" {
		configured = "none"
	}
	where := "the config"
	if c.File != "" {
		where = c.File
	}
	return partner.Profile{}, fmt.Errorf("%w %q (configured: %s; see partners: in %s)", ErrUnknownPartner, name, configured, where)
}

// SitePartner is the partner whose site is site (the first by name), and
// ok false when no partner names it.
func (c *Config) SitePartner(site string) (p partner.Profile, ok bool) {
	for _, n := range slices.Sorted(maps.Keys(c.Partners)) {
		if c.Partners[n].Site == site {
			return c.Partners[n].profile(n), true
		}
	}
	return partner.Profile{}, false
}

// profile is the partner as the domains see it, named name.
func (p Partner) profile(name string) partner.Profile {
	return partner.Profile{Name: name, Kind: p.Profile, SKUCode: p.SKUCode, Location: p.Location, Warehouse: p.Warehouse,
		Site: p.Site, Locations: p.Locations, WarehouseID: p.WarehouseID, GoodsOwnerID: p.GoodsOwnerID,
		TimeFormat: p.TimeFormat, ChannelType: p.ChannelType, Endpoints: p.Endpoints}
}

// Job is a named pipeline as the file writes it; posbridge run sees it as
// a job.Job (Config.JobSpecs).
type Job struct {
	Description string `mapstructure:"description"`
	// Schedule is the cron expression the job is scheduled with (by cron
	// or a systemd timer, not by posbridge); jobs list shows the next
	// expected run and status flags a job that missed one.
	Schedule string `mapstructure:"schedule"`
	// OnFailure is what a failed step does to the rest: stop (default) or
	// continue; a step may say otherwise.
	OnFailure string `mapstructure:"on_failure"`
	// Timeout stops a run that takes longer (the step going on fails,
	// the rest are skipped); 0 means no limit.
	Timeout time.Duration `mapstructure:"timeout"`
	Steps   []Step        `mapstructure:"steps"`
}

// Step is one command of a job.
type Step struct {
	// Command is the command and its words, like "export items" or
	// "run other-job"; Args are more positional arguments (a file or
	// folder), Flags the command's flags by name without dashes.
	Command   string         `mapstructure:"command"`
	Args      []string       `mapstructure:"args"`
	Flags     map[string]any `mapstructure:"flags"`
	OnFailure string         `mapstructure:"on_failure"`
}

// JobSpecs are the jobs as the job planner takes them, by name.
func (c *Config) JobSpecs() map[string]job.Job {
	jobs := make(map[string]job.Job, len(c.Jobs))
	for name, j := range c.Jobs {
		steps := make([]job.JobStep, len(j.Steps))
		for i, st := range j.Steps {
			steps[i] = job.JobStep{Command: st.Command, Args: st.Args, Flags: st.Flags, OnFailure: st.OnFailure}
		}
		jobs[name] = job.Job{Description: j.Description, Schedule: j.Schedule, OnFailure: j.OnFailure, Timeout: j.Timeout, Steps: steps}
	}
	return jobs
}

// Locks tunes the locks of job runs.
type Locks struct {
	// TTL is how long a lock outlives its holder's last sign of life; a
	// holder renews it while it runs. Only a lock whose holder cannot be
	// checked (another host) is taken over on expiry.
	TTL time.Duration `mapstructure:"ttl"`
}

// Status sets when posbridge status --check reports that something needs
// attention.
type Status struct {
	// MaxReadyAge: a ready trigger older than this is late.
	MaxReadyAge time.Duration `mapstructure:"max_ready_age"`
	// MaxInboxAge: a file waiting in an inbox longer than this is stuck.
	MaxInboxAge time.Duration `mapstructure:"max_inbox_age"`
	// Grace is how late a scheduled job may start before it counts as
	// missed.
	Grace time.Duration `mapstructure:"grace"`
}

// siteDefaults are the defaults of every site's keys; they are set per
// site name once the file is read, since site names are not known before.
var siteDefaults = map[string]any{
	"type": "", "dir": "", "host": "", "port": 22, "user": "", "key_file": "",
	"key_passphrase_env": "", "password_env": "", "known_hosts": "",
	"connect_timeout": "10s", "idle_timeout": "60s", "retries": 3, "parallel": 4, "root": "",
	"base_url": "", "ca_file": "", "bearer_env": "", "basic_user": "", "header": "", "header_env": "",
	"timeout": "30s", "backoff": "1s", "backoff_max": "30s", "rate": 0, "health_path": "", "http2": false, "success": "",
	"folders": map[string]string{},
}

// MassCustomers configures the mass customer download.
type MassCustomers struct {
	// Classes are the customer classes to download.
	Classes []string `mapstructure:"classes"`
	// Folder is where the file goes.
	Folder string `mapstructure:"folder"`
}

// OutboxDir is the export outbox.
func (c *Config) OutboxDir() string {
	if c.Export.Outbox != "" {
		return c.Export.Outbox
	}
	return filepath.Join(c.DataDir, "outbox")
}

// LockDir holds the lock files of runs that must not overlap.
func (c *Config) LockDir() string { return filepath.Join(c.DataDir, "locks") }

// DatabasePath is where the SQLite file lives.
func (c *Config) DatabasePath() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "posbridge.db")
}

func setDefaults(v *viper.Viper) {
	v.SetDefault("data_dir", "./data")
	v.SetDefault("database", "")
	v.SetDefault("company.number", 1)
	v.SetDefault("company.name", "Demo Retail")
	v.SetDefault("log.format", "text")
	v.SetDefault("log.level", "info")
	v.SetDefault("db.busy_timeout", "10s")
	v.SetDefault("db.cache_mib", 8)
	v.SetDefault("load.unknown_references", "warn")
	v.SetDefault("load.allow_negative_on_hand", false)
	v.SetDefault("load.max_field_length", 1000)
	v.SetDefault("triggers.purge_days", 7)
	v.SetDefault("export.outbox", "")
	v.SetDefault("export.format", "xml")
	v.SetDefault("export.source", "POSBRIDGE")
	v.SetDefault("export.target", "POS")
	v.SetDefault("export.max_records", 0)
	v.SetDefault("export.marker", false)
	v.SetDefault("export.lock_wait", "60s")
	v.SetDefault("export.exclude_non_allocatable", false)
	v.SetDefault("export.mass_customers.classes", []string{})
	v.SetDefault("export.mass_customers.folder", "")
	v.SetDefault("export.xml.framing", FramingBatch)
	v.SetDefault("export.xml.file_per_message", false)
	v.SetDefault("import.allow_negative_on_hand", false)
	v.SetDefault("import.transaction_codes", map[string]string{})
	v.SetDefault("import.min_age", "5s")
	v.SetDefault("import.processed_dir", "")
	v.SetDefault("import.error_dir", "")
	v.SetDefault("sites", map[string]any{})
	v.SetDefault("jobs", map[string]any{})
	v.SetDefault("partners", map[string]any{})
	v.SetDefault("locks.ttl", "10m")
	v.SetDefault("status.max_ready_age", "1h")
	v.SetDefault("status.max_inbox_age", "1h")
	v.SetDefault("status.grace", "5m")
	v.SetDefault("csv.formula_guard", true)
}

func setSiteDefaults(v *viper.Viper) {
	for name := range v.GetStringMap("sites") {
		for k, val := range siteDefaults {
			v.SetDefault("sites."+name+"."+k, val)
		}
	}
}

// Options says where Load looks.
type Options struct {
	// File is the --config flag; when set it must exist.
	File string
	// Flags are the command-line flags; a flag that was set overrides the
	// key named by its "config-key" annotation.
	Flags *pflag.FlagSet
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// ErrInvalid wraps every configuration problem; the CLI maps it to exit 2.
var ErrInvalid = errors.New("invalid configuration")

// FlagKeyAnnotation is the pflag annotation naming the config key a flag sets.
const FlagKeyAnnotation = "config-key"

// SearchPaths lists the config files tried, in order, when --config is not given.
func SearchPaths(lookupEnv func(string) (string, bool)) []string {
	paths := []string{"posbridge.yaml"}
	if x, ok := lookupEnv("XDG_CONFIG_HOME"); ok && x != "" {
		paths = append(paths, filepath.Join(x, "posbridge", "config.yaml"))
	} else if h, ok := lookupEnv("HOME"); ok && h != "" {
		paths = append(paths, filepath.Join(h, ".config", "posbridge", "config.yaml"))
	}
	return append(paths, "/etc/posbridge/config.yaml")
}

// Load reads the configuration: flag > environment > file > default. It
// returns every problem it finds, joined, each wrapped in ErrInvalid.
func Load(opts Options) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v := viper.New()
	v.SetConfigType("yaml")
	setDefaults(v)

	file := opts.File
	var literals map[string]string
	if file == "" {
		for _, p := range SearchPaths(lookup) {
			if _, err := os.Stat(p); err == nil {
				file = p
				break
			}
		}
	}
	if file != "" {
		data, err := readFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: read config %q: %v", ErrInvalid, file, err)
		}
		var problems []error
		if literals, problems = checkKeys(file, data); len(problems) > 0 {
			return nil, errors.Join(problems...)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: parse config %q: %v", ErrInvalid, file, err)
		}
	}

	setSiteDefaults(v)
	// The environment: only keys viper knows (every key has a default).
	// set remembers which, for messages.
	set := map[string]setting{}
	for _, key := range v.AllKeys() {
		name := "POSBRIDGE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if val, ok := lookup(name); ok {
			v.Set(key, val)
			set[key] = setting{source: name, value: val}
		}
	}
	if opts.Flags != nil {
		opts.Flags.VisitAll(func(f *pflag.Flag) {
			if keys := f.Annotations[FlagKeyAnnotation]; len(keys) == 1 && f.Changed {
				v.Set(keys[0], f.Value.String())
				set[strings.ToLower(keys[0])] = setting{source: "--" + f.Name, value: f.Value.String()}
			}
		})
	}

	var c Config
	var md mapstructure.Metadata
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.Metadata = &md
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","), wholeNumber)
	})
	if err != nil {
		return nil, decodeProblems(describe(file), literals, set, err)
	}
	c.File = file
	stepFlagsAsWritten(&c, literals)
	var problems []error
	unused := append([]string(nil), md.Unused...)
	sort.Strings(unused)
	for _, k := range unused {
		k = userKey(k)
		if isSecret(k) {
			problems = append(problems, fmt.Errorf("%w: %s: %q: secrets are not read from the config: put the value in an environment variable and name it with password_env, key_passphrase_env, bearer_env or header_env",
				ErrInvalid, describe(file), k))
			continue
		}
		problems = append(problems, fmt.Errorf("%w: %s: unknown setting %q", ErrInvalid, describe(file), k))
	}
	problems = append(problems, c.Validate()...)
	problems = append(problems, c.otherSiteKeys(func(key string) bool {
		// An empty variable is how a shell or cron entry clears one.
		return set[key].value != "" || v.InConfig(key)
	})...)
	if len(problems) > 0 {
		return &c, errors.Join(problems...)
	}
	return &c, nil
}

// otherSiteKeys names every setting written for a site (written says
// which: in the file or the environment) that its type does not use: an
// sftp host on a local site would otherwise be ignored without a word,
// and config show leaves it out. root has its own words in Validate.
func (c *Config) otherSiteKeys(written func(key string) bool) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Sites)) {
		typ := c.Sites[name].Type
		keys, known := siteKeys[typ]
		if !known {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(siteDefaults)) {
			key := "sites." + name + "." + k
			if k == "root" || slices.Contains(keys, k) || !written(key) {
				continue
			}
			var users []string
			for _, t := range slices.Sorted(maps.Keys(siteKeys)) {
				if slices.Contains(siteKeys[t], k) {
					users = append(users, t)
				}
			}
			errs = append(errs, fmt.Errorf("%w: %s: %s site does not use it (a setting of %s sites): remove it, or correct sites.%s.type",
				ErrInvalid, key, article(typ), strings.Join(users, " and "), name))
		}
	}
	return errs
}

// article is a site type with its indefinite article: "an sftp".
func article(typ string) string {
	if typ == "local" {
		return "a " + typ
	}
	return "an " + typ
}

func describe(file string) string {
	if file == "" {
		return "configuration"
	}
	return file
}

// Validate checks the values and returns one error per problem.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Company.Number <= 0 {
		bad("company.number", "must be a positive number, got %d", c.Company.Number)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.DB.BusyTimeout <= 0 {
		bad("db.busy_timeout", "must be positive (how long to wait for another process's lock), got %s", c.DB.BusyTimeout)
	} else if c.DB.BusyTimeout < time.Millisecond {
		bad("db.busy_timeout", "%s is less than a millisecond: give a unit, like 10s", c.DB.BusyTimeout)
	}
	if c.DB.CacheMiB < 1 || c.DB.CacheMiB > 4096 {
		bad("db.cache_mib", "must be between 1 and 4096, got %d", c.DB.CacheMiB)
	}
	if c.Load.UnknownReferences != "warn" && c.Load.UnknownReferences != "reject" {
		bad("load.unknown_references", "must be warn or reject, got %q", c.Load.UnknownReferences)
	}
	if c.Load.MaxFieldLength < 1 {
		bad("load.max_field_length", "must be at least 1, got %d", c.Load.MaxFieldLength)
	}
	if c.Export.Format != "xml" && c.Export.Format != "csv" {
		bad("export.format", "must be xml or csv, got %q", c.Export.Format)
	}
	if c.Export.XML.Framing != FramingBatch && c.Export.XML.Framing != FramingOracle {
		bad("export.xml.framing", "must be batch or oracle, got %q", c.Export.XML.Framing)
	}
	if c.Export.XML.FilePerMessage && c.Export.XML.Framing != FramingOracle {
		bad("export.xml.file_per_message", "goes with export.xml.framing: oracle")
	}
	if strings.TrimSpace(c.Export.Source) == "" {
		bad("export.source", "must not be empty")
	}
	if strings.TrimSpace(c.Export.Target) == "" {
		bad("export.target", "must not be empty")
	}
	if c.Export.MaxRecords < 0 {
		bad("export.max_records", "must be 0 (no split) or more, got %d", c.Export.MaxRecords)
	}
	if c.Export.LockWait < 0 {
		bad("export.lock_wait", "must not be negative, got %s", c.Export.LockWait)
	}
	if c.Import.MinAge < 0 {
		bad("import.min_age", "must not be negative, got %s", c.Import.MinAge)
	}
	for code, eff := range c.Import.TransactionCodes {
		switch strings.ToUpper(eff) {
		case "A", "O", "T", "G", "V", "S", "R", "P":
		default:
			bad("import.transaction_codes."+code, "maps to %q: want one of the standard codes A, O, T, G, V, S, R, P", eff)
		}
	}
	if c.Triggers.PurgeDays < 1 {
		bad("triggers.purge_days", "must be at least 1, got %d", c.Triggers.PurgeDays)
	}
	if c.Locks.TTL < time.Second {
		bad("locks.ttl", "must be at least 1s, got %s", c.Locks.TTL)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"status.max_ready_age", c.Status.MaxReadyAge}, {"status.max_inbox_age", c.Status.MaxInboxAge}, {"status.grace", c.Status.Grace}} {
		if d.val <= 0 {
			bad(d.key, "must be positive, got %s", d.val)
		}
	}
	partnerNames := make([]string, 0, len(c.Partners))
	for name := range c.Partners {
		partnerNames = append(partnerNames, name)
	}
	sort.Strings(partnerNames)
	for _, name := range partnerNames {
		p := c.Partners[name]
		key := "partners." + name
		if !plainName.MatchString(name) {
			bad(key, "a partner name goes into file names: use letters, digits, - and _ only")
		}
		switch p.Profile {
		case partner.OMS, partner.ExternalOMS, partner.StorePOS, partner.WMS:
		default:
			bad(key+".profile", "must be oms, external-oms, store-pos or wms, got %q", p.Profile)
		}
		switch p.SKUCode {
		case "", partner.SKUCodeItem, partner.SKUCodeUPC, partner.SKUCodeXref:
		default:
			bad(key+".sku_code", "must be item, upc or xref, got %q", p.SKUCode)
		}
		if _, ok := c.Sites[p.Site]; p.Site != "" && !ok {
			bad(key+".site", "site %q is not configured", p.Site)
		}
		for what, ep := range p.Endpoints {
			if !strings.HasPrefix(ep, "/") {
				bad(key+".endpoints."+what, "must be a path starting with /, got %q", ep)
			}
		}
		if len(p.Endpoints) > 0 && p.Site != "" && c.Sites[p.Site].Type != "http" {
			bad(key+".endpoints", "go with an http site: partners.%s.site is %q, of type %q", name, p.Site, c.Sites[p.Site].Type)
		}
		for id, w := range p.Locations {
			if strings.TrimSpace(w) == "" {
				bad(key+".locations."+id, "names no warehouse: want the warehouse of ours that the partner's location %s stands for", id)
			}
		}
		switch p.TimeFormat {
		case "", partner.TimeDocumented, partner.TimeISO8601:
		default:
			bad(key+".time_format", "must be documented or iso8601, got %q", p.TimeFormat)
		}
		if p.WarehouseID < 0 {
			bad(key+".warehouse_id", "must not be negative, got %d", p.WarehouseID)
		}
		if p.GoodsOwnerID < 0 {
			bad(key+".goods_owner_id", "must not be negative, got %d", p.GoodsOwnerID)
		}
	}
	names := make([]string, 0, len(c.Sites))
	for name := range c.Sites {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Sites[name]
		key := "sites." + name
		if !plainName.MatchString(name) {
			bad(key, "a site name goes into locks and messages: use letters, digits, - and _ only")
		}
		switch s.Type {
		case "local":
			if strings.TrimSpace(s.Dir) == "" {
				bad(key+".dir", "a local site needs the folder it stands for")
			}
			if s.Root != "" {
				bad(key+".root", "a local site's root is its dir: every path stays inside it; remove root")
			}
		case "sftp":
			if strings.TrimSpace(s.Host) == "" {
				bad(key+".host", "an sftp site needs a host")
			}
			if strings.TrimSpace(s.User) == "" {
				bad(key+".user", "an sftp site needs a user")
			}
			if s.Port < 1 || s.Port > 65535 {
				bad(key+".port", "must be between 1 and 65535, got %d", s.Port)
			}
			if s.ConnectTimeout <= 0 {
				bad(key+".connect_timeout", "must be positive, got %s", s.ConnectTimeout)
			}
			if s.IdleTimeout <= 0 {
				bad(key+".idle_timeout", "must be positive, got %s", s.IdleTimeout)
			}
			if s.Retries < 0 {
				bad(key+".retries", "must not be negative, got %d", s.Retries)
			}
			if s.Parallel < 1 {
				bad(key+".parallel", "must be at least 1, got %d", s.Parallel)
			}
			if s.Root != "" && (!path.IsAbs(s.Root) || path.Clean(s.Root) != s.Root) {
				bad(key+".root", "must be an absolute path on the server, without . or .. or a trailing /, like /srv/partner; got %q", s.Root)
			}
		case "http":
			errs = append(errs, s.validateHTTP(key)...)
			if s.Root != "" {
				bad(key+".root", "an http site has no folders to confine: remove root")
			}
		default:
			bad(key+".type", "must be local, sftp or http, got %q", s.Type)
		}
	}
	return errs
}

// validateHTTP checks the settings of an http site.
func (s Site) validateHTTP(key string) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, key+"."+k, fmt.Sprintf(format, args...)))
	}
	if s.BaseURL == "" {
		bad("base_url", "an http site needs its base URL, like https://pos.example.com")
	} else if u, err := url.Parse(s.BaseURL); err != nil || u.Host == "" {
		bad("base_url", "%q is not a URL with a host", s.BaseURL)
	} else if u.User != nil {
		bad("base_url", "must not hold a user or password: name the environment variables with basic_user and password_env")
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("base_url", "must not hold a query or fragment")
	} else if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		bad("base_url", "must be https (http only for 127.0.0.1, ::1 or localhost), got %q", s.BaseURL)
	}
	auths := 0
	for _, set := range []bool{s.BearerEnv != "", s.BasicUser != "", s.Header != "" || s.HeaderEnv != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		bad("bearer_env", "give one way to authenticate: bearer_env, basic_user with password_env, or header with header_env")
	}
	if (s.BasicUser == "") != (s.PasswordEnv == "") {
		bad("basic_user", "basic_user and password_env go together")
	}
	if (s.Header == "") != (s.HeaderEnv == "") {
		bad("header", "header (the header's name, like X-Auth-Token) and header_env go together")
	}
	if s.Header != "" && !headerName.MatchString(s.Header) {
		bad("header", "%q is not a header name", s.Header)
	}
	if s.Timeout <= 0 {
		bad("timeout", "must be positive, got %s", s.Timeout)
	}
	if s.Backoff <= 0 || s.BackoffMax < s.Backoff {
		bad("backoff", "must be positive and at most backoff_max, got %s and %s", s.Backoff, s.BackoffMax)
	}
	if s.Retries < 0 {
		bad("retries", "must not be negative, got %d", s.Retries)
	}
	if s.Parallel < 1 {
		bad("parallel", "must be at least 1, got %d", s.Parallel)
	}
	if s.Rate < 0 {
		bad("rate", "must be 0 (no cap) or more requests a second, got %g", s.Rate)
	}
	if s.HealthPath != "" && !strings.HasPrefix(s.HealthPath, "/") {
		bad("health_path", "must be a path starting with /, got %q", s.HealthPath)
	}
	switch s.Success {
	case "", SuccessStatus, SuccessHasErrorFalse:
	default:
		bad("success", "must be %s or %s, got %q", SuccessStatus, SuccessHasErrorFalse, s.Success)
	}
	return errs
}

// Answer rules of an http site.
const (
	SuccessStatus        = "status"          // a 2xx status
	SuccessHasErrorFalse = "has_error_false" // a 2xx status and "hasError": false in the body
)

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// isLoopback says a host name is this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretWords mark keys whose values config show must not print.
var secretWords = []string{"password", "passphrase", "secret", "token", "private_key"}

// Redacted returns the configuration as nested maps keyed like the YAML file,
// with the values of secret-looking keys replaced by "***" and the
// password of a database URL left out.
func (c *Config) Redacted() map[string]any {
	m := redact(reflect.ValueOf(*c)).(map[string]any)
	// A PostgreSQL URL may carry a password.
	m["database"] = db.Redact(c.Database)
	// A site shows the settings of its type only: a local site has no
	// host or base_url to show. (An unknown type shows all: validate
	// names the type.)
	sites, _ := m["sites"].(map[string]any)
	for name, s := range sites {
		keys, known := siteKeys[c.Sites[name].Type]
		fields, ok := s.(map[string]any)
		if !known || !ok {
			continue
		}
		for k := range fields {
			if !slices.Contains(keys, k) {
				delete(fields, k)
			}
		}
	}
	return m
}

// siteKeys are the settings that mean something for each type of site.
var siteKeys = map[string][]string{
	"local": {"type", "dir", "folders", "parallel", "retries"},
	"sftp": {"type", "host", "port", "user", "key_file", "key_passphrase_env", "password_env", "known_hosts",
		"connect_timeout", "idle_timeout", "retries", "parallel", "root", "folders"},
	"http": {"type", "base_url", "ca_file", "bearer_env", "basic_user", "password_env", "header", "header_env",
		"timeout", "retries", "backoff", "backoff_max", "rate", "parallel", "health_path", "http2", "success", "folders"},
}

func redact(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := t.Field(i).Tag.Get("mapstructure")
			if name == "" || name == "-" {
				continue
			}
			m[name] = redactField(name, v.Field(i))
		}
		return m
	case reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			name := fmt.Sprint(k.Interface())
			m[name] = redactField(name, v.MapIndex(k))
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redact(v.Index(i))
		}
		return out
	default:
		if d, ok := v.Interface().(time.Duration); ok {
			return d.String()
		}
		return v.Interface()
	}
}

// redactField hides the value of a secret-looking key.
func redactField(name string, v reflect.Value) any {
	if isSecret(name) && v.Kind() == reflect.String && v.String() != "" {
		return "***"
	}
	return redact(v)
}

func isSecret(key string) bool {
	for _, w := range secretWords {
		if strings.Contains(key, w) && !strings.HasSuffix(key, "_env") {
			return true
		}
	}
	return false
}
