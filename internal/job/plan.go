package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/posbridge/posbridge/internal/config"
)

// Failure policies of a step.
const (
	Stop     = "stop"
	Continue = "continue"
)

// stepCommands are the commands a step may run: the ones that move or
// change data. Read-only and repair commands (trigger retry, stores
// delete) are for operators, not cron.
var stepCommands = []string{
	"load", "trigger generate", "trigger purge", "export", "import",
	"push", "pull", "inquire", "run", "db backup", "runs purge",
}

// StepCommands lists the commands a step may run, for messages and docs.
func StepCommands() []string { return append([]string(nil), stepCommands...) }

// stepKind returns the entry of stepCommands that the command path (like
// "export items") falls under, or "".
func stepKind(path string) string {
	for _, c := range stepCommands {
		if path == c {
			return c
		}
		// inquire answers request files; its subcommands answer a person.
		if strings.HasPrefix(path, c+" ") && c != "inquire" {
			return c
		}
	}
	return ""
}

// Step is one step of a plan.
type Step struct {
	// Index counts from 1.
	Index int `json:"step"`
	// Path is the command as the CLI named it ("export items").
	Path string `json:"command"`
	// Argv is the command line after "posbridge": the command words,
	// positional arguments and flags.
	Argv []string `json:"argv"`
	// OnFailure is Stop or Continue.
	OnFailure string `json:"on_failure"`
	// Args are the positional arguments after the command words (the
	// files or folders of a load or import).
	Args []string `json:"args"`
	// Job is the job a "run JOB" step runs.
	Job string `json:"job,omitempty"`
	// DryRun says the command takes --dry-run.
	DryRun bool `json:"dry_run"`
	// Locks name the data the step touches.
	Locks []string `json:"locks"`
}

// String is the command line of the step.
func (s Step) String() string { return "posbridge " + strings.Join(s.Argv, " ") }

// Plan is a job made ready to run.
type Plan struct {
	Name  string     `json:"name"`
	Job   config.Job `json:"-"`
	Steps []Step     `json:"steps"`
	// Locks are every lock a run of the job holds: the job's own, its
	// steps', and those of the jobs it runs, sorted.
	Locks []string `json:"locks"`
}

// Command is what the CLI says about a step's command line.
type Command struct {
	// Path is the command the words name ("export items").
	Path string
	// Positional are the positional arguments after the command words.
	Positional []string
	// DryRun says the command takes --dry-run.
	DryRun bool
	// Folders are the local folders the command reads or writes, as it
	// declares them from its options (push --from or --outbox): the step
	// locks each.
	Folders []string
}

// Resolver checks a step's command line against the command tree: the
// command must exist, take the flags and accept the arguments.
type Resolver func(argv []string) (Command, error)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Set is the plans of every job of a configuration, built and checked
// once: resolving a step builds a command tree, so a process asks once.
type Set struct {
	cfg   *config.Config
	plans map[string]*Plan
	errs  map[string][]error
}

// NewSet builds the plan of every job of cfg, checking every step with
// resolve.
func NewSet(cfg *config.Config, resolve Resolver) *Set {
	plans, errs := buildAll(cfg, resolve)
	return &Set{cfg: cfg, plans: plans, errs: errs}
}

// ErrNoJob means a job name the configuration does not have.
var ErrNoJob = errors.New("no job")

// Get is the plan of job name, or its problems; an unknown name is an
// invalid configuration wrapping ErrNoJob.
func (s *Set) Get(name string) (*Plan, error) {
	if p, ok := s.plans[name]; ok && len(s.errs[name]) == 0 {
		return p, nil
	}
	if _, ok := s.cfg.Jobs[name]; !ok {
		return nil, fmt.Errorf("%w: %w %q (configured: %s)", config.ErrInvalid, ErrNoJob, name, jobNames(s.cfg))
	}
	return nil, joinErrs(s.errs[name])
}

// Names are the names of every job of the configuration, sorted, the
// invalid ones too.
func (s *Set) Names() []string { return sortedJobs(s.cfg) }

// Problems returns one error per problem of every job, in job order:
// unknown step commands or flags, missing sites, unknown or cyclic job
// references, bad schedules and failure policies.
func (s *Set) Problems() []error {
	var out []error
	for _, name := range sortedJobs(s.cfg) {
		out = append(out, s.errs[name]...)
	}
	return out
}

// Validate checks every job of the configuration (Set.Problems).
func Validate(cfg *config.Config, resolve Resolver) []error {
	return NewSet(cfg, resolve).Problems()
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = strings.TrimPrefix(e.Error(), config.ErrInvalid.Error()+": ")
	}
	return fmt.Errorf("%w: %s", config.ErrInvalid, strings.Join(msgs, "; "))
}

func sortedJobs(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Jobs))
	for n := range cfg.Jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func jobNames(cfg *config.Config) string {
	names := sortedJobs(cfg)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// buildAll builds the plan of every job; a job's errors include those of
// the jobs it runs only as "job X runs job Y, which is invalid".
func buildAll(cfg *config.Config, resolve Resolver) (map[string]*Plan, map[string][]error) {
	plans := map[string]*Plan{}
	errs := map[string][]error{}
	for _, name := range sortedJobs(cfg) {
		p, e := buildOne(cfg, name, cfg.Jobs[name], resolve)
		plans[name] = p
		errs[name] = e
	}
	// Job references: unknown jobs and cycles, then the locks of the jobs
	// a job runs.
	for _, name := range sortedJobs(cfg) {
		for _, s := range plans[name].Steps {
			if s.Job == "" {
				continue
			}
			key := fmt.Sprintf("jobs.%s.steps[%d]", name, s.Index)
			if _, ok := cfg.Jobs[s.Job]; !ok {
				errs[name] = append(errs[name], fmt.Errorf("%w: %s: runs job %q, which is not configured (configured: %s)",
					config.ErrInvalid, key, s.Job, jobNames(cfg)))
			}
		}
	}
	for _, name := range sortedJobs(cfg) {
		if cycle := findCycle(plans, name, nil); cycle != nil {
			errs[name] = append(errs[name], fmt.Errorf("%w: jobs.%s: job references form a cycle: %s",
				config.ErrInvalid, name, strings.Join(cycle, " -> ")))
			continue
		}
		locks := map[string]bool{}
		collectLocks(plans, name, locks)
		for l := range locks {
			plans[name].Locks = append(plans[name].Locks, l)
		}
		sort.Strings(plans[name].Locks)
	}
	// A job that runs an invalid job is invalid, at any depth: repeat
	// until no job turns invalid.
	for changed := true; changed; {
		changed = false
		for _, name := range sortedJobs(cfg) {
			if len(errs[name]) > 0 {
				continue
			}
			for _, s := range plans[name].Steps {
				if s.Job != "" && s.Job != name && len(errs[s.Job]) > 0 {
					errs[name] = append(errs[name], fmt.Errorf("%w: jobs.%s.steps[%d]: runs job %q, which is invalid",
						config.ErrInvalid, name, s.Index, s.Job))
					changed = true
					break
				}
			}
		}
	}
	return plans, errs
}

// findCycle returns the path of job names that leads from name back to a
// job on path, or nil.
func findCycle(plans map[string]*Plan, name string, path []string) []string {
	for i, p := range path {
		if p == name {
			return append(append([]string(nil), path[i:]...), name)
		}
	}
	p, ok := plans[name]
	if !ok {
		return nil
	}
	path = append(path, name)
	for _, s := range p.Steps {
		if s.Job == "" {
			continue
		}
		if c := findCycle(plans, s.Job, path); c != nil {
			return c
		}
	}
	return nil
}

func collectLocks(plans map[string]*Plan, name string, into map[string]bool) {
	p, ok := plans[name]
	if !ok || into["job:"+name] {
		return
	}
	into["job:"+name] = true
	for _, s := range p.Steps {
		for _, l := range s.Locks {
			into[l] = true
		}
		if s.Job != "" {
			collectLocks(plans, s.Job, into)
		}
	}
}

func buildOne(cfg *config.Config, name string, j config.Job, resolve Resolver) (*Plan, []error) {
	p := &Plan{Name: name, Job: j}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", config.ErrInvalid, key, fmt.Sprintf(format, args...)))
	}
	key := "jobs." + name
	if !nameRE.MatchString(name) {
		bad(key, "a job name is lower case letters, digits, '-', '_' and '.'")
	}
	if j.Schedule != "" {
		if _, err := ParseSchedule(j.Schedule); err != nil {
			bad(key+".schedule", "%v", err)
		}
	}
	jobPolicy := j.OnFailure
	if jobPolicy == "" {
		jobPolicy = Stop
	}
	if jobPolicy != Stop && jobPolicy != Continue {
		bad(key+".on_failure", "must be stop or continue, got %q", j.OnFailure)
	}
	if j.Timeout < 0 {
		bad(key+".timeout", "must not be negative, got %s (0: no limit)", j.Timeout)
	}
	if len(j.Steps) == 0 {
		bad(key+".steps", "a job needs at least one step")
	}
	for i, st := range j.Steps {
		skey := fmt.Sprintf("%s.steps[%d]", key, i+1)
		s := Step{Index: i + 1, OnFailure: st.OnFailure}
		if s.OnFailure == "" {
			s.OnFailure = jobPolicy
		}
		if st.OnFailure != "" && st.OnFailure != Stop && st.OnFailure != Continue {
			bad(skey+".on_failure", "must be stop or continue, got %q", st.OnFailure)
		}
		words := strings.Fields(st.Command)
		if len(words) == 0 {
			bad(skey+".command", "missing: name the command to run, one of: %s", strings.Join(stepCommands, ", "))
			p.Steps = append(p.Steps, s)
			continue
		}
		argv := append(append([]string(nil), words...), st.Args...)
		flagNames := make([]string, 0, len(st.Flags))
		for f := range st.Flags {
			flagNames = append(flagNames, f)
		}
		sort.Strings(flagNames)
		flags := map[string]string{}
		for _, f := range flagNames {
			if f == "dry-run" {
				bad(skey+".flags."+f, "a step cannot be a dry run on its own: run the whole job with posbridge run %s --dry-run", name)
				continue
			}
			if isGlobalFlag(f) {
				bad(skey+".flags."+f, "--%s is a global flag: it applies to the whole run (posbridge --%s ... run %s)", f, f, name)
				continue
			}
			v := flagValue(st.Flags[f])
			flags[f] = v
			argv = append(argv, "--"+f+"="+v)
		}
		s.Argv = argv
		cmd, err := resolve(argv)
		if err != nil {
			bad(skey, "%s: %v", st.Command, err)
			p.Steps = append(p.Steps, s)
			continue
		}
		s.Path, s.DryRun, s.Args = cmd.Path, cmd.DryRun, cmd.Positional
		kind := stepKind(cmd.Path)
		if kind == "" {
			bad(skey+".command", "%q cannot be a step: a step runs one of %s", cmd.Path, strings.Join(stepCommands, ", "))
		}
		switch kind {
		case "run":
			if len(cmd.Positional) == 1 {
				s.Job = cmd.Positional[0]
			}
		case "push", "pull":
			site := flags["site"]
			unknown := false
			if name := flags["partner"]; name != "" {
				partner, err := cfg.Partner(strings.ToLower(name))
				switch {
				case err != nil:
					bad(skey+".flags.partner", "%v", err)
					unknown = true
				case site == "":
					// push/pull --partner P goes to P's site: its lock.
					site = partner.Site
					flags["site"] = site
				}
			}
			if site == "" && !unknown {
				bad(skey+".flags.site", "a %s step needs the site: flags: {site: NAME} or a partner with a site (configured: %s)", kind, siteNames(cfg))
			}
			if _, ok := cfg.Sites[site]; site != "" && !ok {
				bad(skey+".flags.site", "site %q is not configured (configured: %s)", site, siteNames(cfg))
			}
		}
		s.Locks = stepLocks(kind, cmd, flags)
		p.Steps = append(p.Steps, s)
	}
	return p, errs
}

// isGlobalFlag names the flags of every command that set up the process.
func isGlobalFlag(f string) bool {
	switch f {
	case "config", "data-dir", "log-format", "quiet", "verbose":
		return true
	}
	return false
}

// flagValue is the command-line form of a flag value from the YAML file:
// lists become comma-separated.
func flagValue(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func siteNames(cfg *config.Config) string {
	names := make([]string, 0, len(cfg.Sites))
	for n := range cfg.Sites {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// stepLocks names the data a step touches. Two runs holding a common lock
// never run at the same time: exports of one kind (they claim the same
// triggers), loads and imports of one kind, transfers with one site, and
// anything that reads or fills one folder.
func stepLocks(kind string, cmd Command, flags map[string]string) []string {
	var locks []string
	folder := func(p string) {
		if p == "" {
			return
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		locks = append(locks, "folder:"+filepath.Clean(p))
	}
	word := strings.TrimSpace(strings.TrimPrefix(cmd.Path, kind))
	switch kind {
	case "export", "load":
		locks = append(locks, kind+":"+word)
		if kind == "export" {
			folder(flags["out"])
		}
	case "import":
		locks = append(locks, "import:"+word)
		for _, a := range cmd.Positional {
			folder(folderOf(a))
		}
	case "push":
		locks = append(locks, "site:"+flags["site"])
		for _, a := range cmd.Positional {
			folder(folderOf(a))
		}
	case "pull":
		locks = append(locks, "site:"+flags["site"])
		folder(flags["to"])
	case "trigger generate", "trigger purge":
		locks = append(locks, "triggers")
	case "inquire":
		folder(flags["requests"])
	}
	for _, f := range cmd.Folders {
		folder(f)
	}
	return locks
}

// Inboxes are the folders the import steps of the plan read: where files
// wait for the job.
func (p *Plan) Inboxes() []string {
	var out []string
	for _, s := range p.Steps {
		if stepKind(s.Path) != "import" {
			continue
		}
		for _, a := range s.Args {
			if st, err := os.Stat(a); err == nil && st.IsDir() {
				out = append(out, a)
			}
		}
	}
	return out
}

// folderOf is path when it is a folder (or does not exist yet), else the
// folder the file is in: two steps reading files of one folder do not
// run at once.
func folderOf(path string) string {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return filepath.Dir(path)
	}
	return path
}
