package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/posbridge/posbridge/internal/config"
)

func newRoot(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "posbridge",
		Short: "Batch file exchange between an OMS and POS, warehouse and online-store systems",
		Long: `posbridge keeps the state of master data, inventory and outbound triggers in one
SQLite file, loads upstream extracts, and exchanges files with partner systems.

Exit codes: 0 done (also "nothing to do"), 1 failed (nothing half-applied),
2 usage or configuration error, 3 done but some records were rejected,
75 temporary failure (database busy, lock held): try again later.

Data goes to stdout, messages to stderr.`,
		Example: `  posbridge init --data-dir /srv/posbridge
  posbridge load items items.csv --mode full
  posbridge trigger list --status ready
  posbridge status`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          unknownSub,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			if app.step != nil {
				return // a job step logs with its job's logger
			}
			// Flags are parsed now; the logger may depend on them.
			app.log = nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true // completion.go has posbridge's own
	root.Version = readBuildInfo().line()
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&app.ConfigFile, "config", "", "config file (default: ./posbridge.yaml, $XDG_CONFIG_HOME/posbridge/config.yaml, /etc/posbridge/config.yaml)")
	pf.String("data-dir", "", "data folder holding posbridge.db (config data_dir, env POSBRIDGE_DATA_DIR)")
	annotate(pf, "data-dir", "data_dir")
	pf.StringVar(&app.LogFormat, "log-format", "", "log format on stderr: text or json (config log.format)")
	annotate(pf, "log-format", "log.format")
	pf.BoolVarP(&app.Quiet, "quiet", "q", false, "only warnings and errors on stderr")
	pf.BoolVarP(&app.Verbose, "verbose", "v", false, "debug messages on stderr")
	app.flags = pf
	// cobra's own help command prints the root help for an unknown topic
	// and exits 0; an unknown topic is a usage error like an unknown command.
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return usageErr("unknown help topic %q (see 'posbridge --help')", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see '%s --help')", flagProblem(err), c.CommandPath())
	})
	root.SetOut(app.Out)
	root.SetErr(app.Err)

	// Help lists the commands by name; the order here is the order in
	// which the commands declare that job steps may run them, which
	// messages follow (stepNames): the data's way from load to push and
	// pull, then the upkeep.
	root.AddCommand(
		newInitCmd(app),
		newConfigCmd(app),
		newLoadCmd(app),
		newTriggerCmd(app),
		newExportCmd(app),
		newImportCmd(app),
		newStoresCmd(app),
		newXrefCmd(app),
		newOrdersCmd(app),
		newReturnsCmd(app),
		newFilesCmd(app),
		newPushCmd(app),
		newPullCmd(app),
		newSitesCmd(app),
		newTransfersCmd(app),
		newInquireCmd(app),
		newStatusCmd(app),
		newRunCmd(app),
		newJobsCmd(app),
		newDBCmd(app),
		newRunsCmd(app),
		newCompletionCmd(app),
		newVersionCmd(app),
	)
	addCompletions(app, root)
	return root
}

func annotate(fs *pflag.FlagSet, flag, key string) {
	fs.SetAnnotation(flag, config.FlagKeyAnnotation, []string{key})
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s takes %d argument(s), got %d (see '%s --help')", cmd.CommandPath(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// unknownSub rejects arguments to a command that only has subcommands.
func unknownSub(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return nil
}

// noArgs is cobra.NoArgs reporting a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// groupCmd is a command that only holds subcommands; its examples are
// the first example of each subcommand.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	var examples []string
	for _, s := range subs {
		if first, _, _ := strings.Cut(s.Example, "\n"); first != "" {
			examples = append(examples, first)
		}
	}
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: strings.Join(examples, "\n"),
		Args:    unknownSub,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("%s needs a subcommand (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

// addSubs adds subcommands to a group and extends its examples.
func addSubs(group *cobra.Command, subs ...*cobra.Command) {
	for _, s := range subs {
		if first, _, _ := strings.Cut(s.Example, "\n"); first != "" {
			if group.Example != "" {
				group.Example += "\n"
			}
			group.Example += first
		}
		group.AddCommand(s)
	}
}

// flagProblem says what is wrong with a number too large for its flag
// in the user's terms; pflag's message quotes strconv.
func flagProblem(err error) error {
	var iv *pflag.InvalidValueError
	var ne *strconv.NumError
	if !errors.As(err, &iv) || !errors.As(err, &ne) {
		return err
	}
	name := "--" + iv.GetFlag().Name
	bits := 64
	if t := iv.GetFlag().Value.Type(); strings.HasSuffix(t, "32") {
		bits = 32
	}
	switch {
	case errors.Is(ne.Err, strconv.ErrRange) && strings.HasPrefix(ne.Num, "-"):
		return fmt.Errorf("%s %s: out of range: at least %d", name, ne.Num, -int64(1)<<(bits-1))
	case errors.Is(ne.Err, strconv.ErrRange):
		return fmt.Errorf("%s %s: out of range: at most %d", name, ne.Num, int64(1)<<(bits-1)-1)
	}
	return err
}
