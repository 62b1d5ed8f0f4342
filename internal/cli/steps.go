package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/job"
)

// stepCommand is a command a job step may run, with what a step running
// it touches, as it declares it from its parsed options and positional
// arguments: the fields of job.Command after Step.
type stepCommand struct {
	cmd     *cobra.Command
	declare func(args []string) (job.Command, error)
}

// declareStep makes cmd a command a job step may run; declare says what
// the step touches once cmd has parsed its flags.
func (a *App) declareStep(cmd *cobra.Command, declare func(args []string) (job.Command, error)) {
	a.steps = append(a.steps, stepCommand{cmd, declare})
}

// locking declares the locks of a step whatever its options.
func locking(locks ...string) func([]string) (job.Command, error) {
	return func([]string) (job.Command, error) { return job.Command{Locks: locks}, nil }
}

// folderLocks are the locks of the folders given, leaving out the ones
// not given.
func folderLocks(dirs ...string) []string {
	var locks []string
	for _, d := range dirs {
		if d != "" {
			locks = append(locks, job.FolderLock(d))
		}
	}
	return locks
}

// declareExport makes an export command a step: it claims the triggers of
// its kind and fills the folder *out (--out).
func (a *App) declareExport(cmd *cobra.Command, out *string) {
	a.declareStep(cmd, func([]string) (job.Command, error) {
		return job.Command{Locks: append([]string{job.KindLock("export", cmd.Name())}, folderLocks(*out)...)}, nil
	})
}

// declareImport makes an import command a step: it applies files of its
// kind, taking them from the files or folders of its arguments, where
// they wait for the job.
func (a *App) declareImport(cmd *cobra.Command) {
	a.declareStep(cmd, func(args []string) (job.Command, error) {
		locks := []string{job.KindLock("import", cmd.Name())}
		for _, p := range args {
			locks = append(locks, job.PathLock(p))
		}
		return job.Command{Locks: locks, Inputs: args}, nil
	})
}

// stepSite is the site a push or pull step transfers with, whose lock it
// holds: site (--site), else the site of partner (--partner).
func (a *App) stepSite(verb, site, partner string) (string, error) {
	cfg, err := a.Config()
	if err != nil {
		return "", err
	}
	configured := cmp.Or(strings.Join(slices.Sorted(maps.Keys(cfg.Sites)), ", "), "none")
	var errs []error
	unknown := false
	if partner != "" {
		p, err := cfg.Partner(strings.ToLower(partner))
		switch {
		case err != nil:
			errs = append(errs, &job.FlagError{Flag: "partner", Err: err})
			unknown = true
		case site == "":
			site = p.Site
		}
	}
	if site == "" && !unknown {
		errs = append(errs, &job.FlagError{Flag: "site", Err: fmt.Errorf(
			"a %s step needs the site: flags: {site: NAME} or a partner with a site (configured: %s)", verb, configured)})
	}
	if _, ok := cfg.Sites[site]; site != "" && !ok {
		errs = append(errs, &job.FlagError{Flag: "site", Err: fmt.Errorf("site %q is not configured (configured: %s)", site, configured)})
	}
	return site, errors.Join(errs...)
}

// stepTree is the command tree as the job planner asks it (job.Commands):
// a step's command line is parsed by the command it names, on a tree of
// its own, and the command declares what the step touches.
type stepTree struct {
	cfg   *config.Config
	steps []string
	// global are the flags of the whole process.
	global *pflag.FlagSet
}

// newStepTree is the command tree on cfg for the job planner.
func newStepTree(cfg *config.Config) *stepTree {
	app := stepApp(cfg)
	root := newRoot(app)
	return &stepTree{cfg: cfg, steps: stepNames(app.steps), global: root.PersistentFlags()}
}

// stepApp is an App that only parses command lines, on cfg.
func stepApp(cfg *config.Config) *App {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	app.cfg = cfg
	return app
}

// stepNames names the commands steps may run, in the order the tree
// declares them; a group all of whose commands may be steps is named once
// (export).
func stepNames(steps []stepCommand) []string {
	declared := map[*cobra.Command]bool{}
	for _, s := range steps {
		declared[s.cmd] = true
	}
	var names []string
	for _, s := range steps {
		c := s.cmd
		if p := c.Parent(); p.HasParent() && !slices.ContainsFunc(p.Commands(), func(sub *cobra.Command) bool { return !declared[sub] }) {
			c = p
		}
		if name := strings.TrimPrefix(c.CommandPath(), "posbridge "); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func (t *stepTree) Steps() []string { return slices.Clone(t.steps) }

func (t *stepTree) Global(flag string) bool { return t.global.Lookup(flag) != nil }

// Resolve checks a step's command line against a fresh command tree: the
// command exists, takes the flags with valid values, and accepts the
// positional arguments; a command a step may run declares what it touches.
func (t *stepTree) Resolve(argv []string) (job.Command, error) {
	app := stepApp(t.cfg)
	root := newRoot(app)
	cmd, rest, err := root.Find(argv)
	if err != nil || cmd == root {
		return job.Command{}, fmt.Errorf("unknown command %q", strings.Join(argv[:min(len(argv), 2)], " "))
	}
	// A group command runs on its own only when it has flags of its own
	// (inquire --requests DIR --responses DIR).
	if cmd.HasSubCommands() && (len(rest) == 0 || !cmd.HasAvailableLocalFlags() || !strings.HasPrefix(rest[0], "-")) {
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			return job.Command{}, fmt.Errorf("unknown command %q for %q: one of %s", rest[0],
				strings.TrimPrefix(cmd.CommandPath(), "posbridge "), subNames(cmd))
		}
		return job.Command{}, fmt.Errorf("%q needs a subcommand: %s", strings.TrimPrefix(cmd.CommandPath(), "posbridge "), subNames(cmd))
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return job.Command{}, flagProblem(err)
	}
	pos := cmd.Flags().Args()
	if err := cmd.ValidateArgs(pos); err != nil {
		return job.Command{}, withoutUsage(err)
	}
	var c job.Command
	if i := slices.IndexFunc(app.steps, func(s stepCommand) bool { return s.cmd == cmd }); i >= 0 {
		if c, err = app.steps[i].declare(pos); err != nil {
			return job.Command{}, withoutUsage(err)
		}
		c.Step = true
	}
	c.Path, c.Positional, c.DryRun = strings.TrimPrefix(cmd.CommandPath(), "posbridge "), pos, cmd.Flags().Lookup("dry-run") != nil
	return c, nil
}

// withoutUsage is err without the "usage: " of a usage error: a job step's
// problem is the configuration's.
func withoutUsage(err error) error {
	if !errors.Is(err, errUsage) {
		return err
	}
	return errors.New(strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
}

func subNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}

// execStep runs one step's command line in this process, on the job's
// configuration and database, with the job's logger; the step's output
// goes to out.
func (a *App) execStep(jobName string, out io.Writer) job.Exec {
	root := a.logger()
	if a.step != nil {
		root = a.step.root
	}
	return func(ctx context.Context, s job.Step, argv []string, run int64, log *slog.Logger) (int, error) {
		// A run of its own on the process's factory. Its global flags keep
		// their defaults: a step cannot set them (job.Commands.Global).
		child := &App{factory: a.factory, In: strings.NewReader(""), Out: out, Err: a.Err,
			step: &stepContext{run: run, log: log.With("step", s.Index), root: root, job: jobName, index: s.Index}}
		root := newRoot(child)
		root.SetArgs(argv)
		err := explained(root.ExecuteContext(ctx))
		return exitCode(err), err
	}
}
