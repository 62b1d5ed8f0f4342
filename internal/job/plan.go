package job

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Failure policies of a step.
const (
	Stop     = "stop"
	Continue = "continue"
)

// Job is a named pipeline as the configuration gives it (jobs.NAME):
// steps run in order under the job's locks.
type Job struct {
	Description string
	// Schedule is the cron expression the job is scheduled with (by cron
	// or a systemd timer, not by posbridge); jobs list shows the next
	// expected run and status flags a job that missed one.
	Schedule string
	// OnFailure is what a failed step does to the rest: Stop (also "") or
	// Continue; a step may say otherwise.
	OnFailure string
	// Timeout stops a run that takes longer (the step going on fails, the
	// rest are skipped); 0 means no limit.
	Timeout time.Duration
	Steps   []JobStep
}

// JobStep is one command of a Job as the configuration gives it; the plan
// makes a Step of it.
type JobStep struct {
	// Command is the command and its words, like "export items" or
	// "run other-job"; Args are more positional arguments (a file or
	// folder), Flags the command's flags by name without dashes.
	Command   string
	Args      []string
	Flags     map[string]any
	OnFailure string
}

// ErrInvalid wraps every problem of a job's configuration; its text is
// the one of every configuration problem.
var ErrInvalid = errors.New("invalid configuration")

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
	// Inputs are where files wait for the step (Command.Inputs).
	Inputs []string `json:"-"`
}

// String is the command line of the step.
func (s Step) String() string { return "posbridge " + strings.Join(s.Argv, " ") }

// Plan is a job made ready to run.
type Plan struct {
	Name  string `json:"name"`
	Job   Job    `json:"-"`
	Steps []Step `json:"steps"`
	// Locks are every lock a run of the job holds: the job's own, its
	// steps', and those of the jobs it runs, sorted.
	Locks []string `json:"locks"`
}

// Command is what the CLI says about a step's command line, parsed by the
// command it names.
type Command struct {
	// Path is the command the words name ("export items").
	Path string
	// Positional are the positional arguments after the command words.
	Positional []string
	// DryRun says the command takes --dry-run.
	DryRun bool
	// Step says a step may run the command: one that moves or changes
	// data. Read-only and repair commands (trigger retry, stores delete)
	// are for operators, not cron.
	Step bool
	// The rest the command declares from its parsed options and arguments.

	// Job is the job a "run JOB" step runs.
	Job string
	// Locks name the data the command touches (KindLock, SiteLock,
	// FolderLock, ...).
	Locks []string
	// Inputs are the files or folders where files wait for the command (an
	// import's arguments): Plan.Inboxes lists the folders among them.
	Inputs []string
}

// Commands is the command tree as the planner asks it: only the CLI knows
// its commands and their flags.
type Commands interface {
	// Resolve parses a step's command line with the command it names: the
	// command must exist, take the flags and accept the arguments. A
	// problem with the value of one flag is a *FlagError (several are
	// joined).
	Resolve(argv []string) (Command, error)
	// Steps names the commands a step may run, for messages.
	Steps() []string
	// Global says whether flag sets up the whole process (--config): it
	// applies to a whole run, never to one step.
	Global(flag string) bool
}

// FlagError is a problem with the value of one flag of a step's command
// line; the plan names it by its key (jobs.J.steps[N].flags.FLAG).
type FlagError struct {
	Flag string
	Err  error
}

func (e *FlagError) Error() string { return "--" + e.Flag + ": " + e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Set is the plans of every job of a configuration, built and checked
// once: resolving a step builds a command tree, so a process asks once.
type Set struct {
	jobs  map[string]Job
	plans map[string]*Plan
	errs  map[string][]error
}

// NewSet builds the plan of every job, by name, checking every step
// against the command tree cmds.
func NewSet(jobs map[string]Job, cmds Commands) *Set {
	plans, errs := buildAll(jobs, cmds)
	return &Set{jobs: jobs, plans: plans, errs: errs}
}

// ErrNoJob means a job name the configuration does not have.
var ErrNoJob = errors.New("no job")

// Get is the plan of job name, or its problems; an unknown name is an
// invalid configuration wrapping ErrNoJob.
func (s *Set) Get(name string) (*Plan, error) {
	if p, ok := s.plans[name]; ok && len(s.errs[name]) == 0 {
		return p, nil
	}
	if _, ok := s.jobs[name]; !ok {
		return nil, fmt.Errorf("%w: %w %q (configured: %s)", ErrInvalid, ErrNoJob, name, jobNames(s.jobs))
	}
	return nil, joinErrs(s.errs[name])
}

// Names are the names of every job of the configuration, sorted, the
// invalid ones too.
func (s *Set) Names() []string { return sortedJobs(s.jobs) }

// Problems returns one error per problem of every job, in job order:
// unknown step commands or flags, missing sites, unknown or cyclic job
// references, bad schedules and failure policies.
func (s *Set) Problems() []error {
	var out []error
	for _, name := range sortedJobs(s.jobs) {
		out = append(out, s.errs[name]...)
	}
	return out
}

// Validate checks every job (Set.Problems).
func Validate(jobs map[string]Job, cmds Commands) []error {
	return NewSet(jobs, cmds).Problems()
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = strings.TrimPrefix(e.Error(), ErrInvalid.Error()+": ")
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(msgs, "; "))
}

func sortedJobs(jobs map[string]Job) []string {
	names := make([]string, 0, len(jobs))
	for n := range jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func jobNames(jobs map[string]Job) string {
	names := sortedJobs(jobs)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// buildAll builds the plan of every job; a job's errors include those of
// the jobs it runs only as "job X runs job Y, which is invalid".
func buildAll(jobs map[string]Job, cmds Commands) (map[string]*Plan, map[string][]error) {
	plans := map[string]*Plan{}
	errs := map[string][]error{}
	for _, name := range sortedJobs(jobs) {
		p, e := buildOne(name, jobs[name], cmds)
		plans[name] = p
		errs[name] = e
	}
	// Job references: unknown jobs and cycles, then the locks of the jobs
	// a job runs.
	for _, name := range sortedJobs(jobs) {
		for _, s := range plans[name].Steps {
			if s.Job == "" {
				continue
			}
			key := fmt.Sprintf("jobs.%s.steps[%d]", name, s.Index)
			if _, ok := jobs[s.Job]; !ok {
				errs[name] = append(errs[name], fmt.Errorf("%w: %s: runs job %q, which is not configured (configured: %s)",
					ErrInvalid, key, s.Job, jobNames(jobs)))
			}
		}
	}
	for _, name := range sortedJobs(jobs) {
		if cycle := findCycle(plans, name, nil); cycle != nil {
			errs[name] = append(errs[name], fmt.Errorf("%w: jobs.%s: job references form a cycle: %s",
				ErrInvalid, name, strings.Join(cycle, " -> ")))
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
		for _, name := range sortedJobs(jobs) {
			if len(errs[name]) > 0 {
				continue
			}
			for _, s := range plans[name].Steps {
				if s.Job != "" && s.Job != name && len(errs[s.Job]) > 0 {
					errs[name] = append(errs[name], fmt.Errorf("%w: jobs.%s.steps[%d]: runs job %q, which is invalid",
						ErrInvalid, name, s.Index, s.Job))
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

func buildOne(name string, j Job, cmds Commands) (*Plan, []error) {
	p := &Plan{Name: name, Job: j}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...)))
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
			bad(skey+".command", "missing: name the command to run, one of: %s", strings.Join(cmds.Steps(), ", "))
			p.Steps = append(p.Steps, s)
			continue
		}
		argv := append(append([]string(nil), words...), st.Args...)
		flagNames := make([]string, 0, len(st.Flags))
		for f := range st.Flags {
			flagNames = append(flagNames, f)
		}
		sort.Strings(flagNames)
		for _, f := range flagNames {
			if f == "dry-run" {
				bad(skey+".flags."+f, "a step cannot be a dry run on its own: run the whole job with posbridge run %s --dry-run", name)
				continue
			}
			if cmds.Global(f) {
				bad(skey+".flags."+f, "--%s is a global flag: it applies to the whole run (posbridge --%s ... run %s)", f, f, name)
				continue
			}
			argv = append(argv, "--"+f+"="+flagValue(st.Flags[f]))
		}
		s.Argv = argv
		cmd, err := cmds.Resolve(argv)
		if err != nil {
			for _, e := range unjoin(err) {
				if fe := (*FlagError)(nil); errors.As(e, &fe) {
					bad(skey+".flags."+fe.Flag, "%v", fe.Err)
				} else {
					bad(skey, "%s: %v", st.Command, e)
				}
			}
			p.Steps = append(p.Steps, s)
			continue
		}
		s.Path, s.DryRun, s.Args = cmd.Path, cmd.DryRun, cmd.Positional
		if !cmd.Step {
			bad(skey+".command", "%q cannot be a step: a step runs one of %s", cmd.Path, strings.Join(cmds.Steps(), ", "))
		}
		s.Job, s.Locks, s.Inputs = cmd.Job, cmd.Locks, cmd.Inputs
		p.Steps = append(p.Steps, s)
	}
	return p, errs
}

// unjoin is the errors errors.Join joined into err, or err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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

// Inboxes are the folders among the inputs of the plan's steps (the
// folders its imports read): where files wait for the job.
func (p *Plan) Inboxes() []string {
	var out []string
	for _, s := range p.Steps {
		for _, a := range s.Inputs {
			if st, err := os.Stat(a); err == nil && st.IsDir() {
				out = append(out, a)
			}
		}
	}
	return out
}
