package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"go.yaml.in/yaml/v3"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/job"
)

func newConfigCmd(app *App) *cobra.Command {
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration, secrets redacted",
		Long: `Print the configuration posbridge would use, after the config file, POSBRIDGE_*
environment variables and flags are combined (flag > env > file > default).
Passwords, passphrases and tokens are shown as ***.`,
		Example: `  posbridge config show
  POSBRIDGE_DATA_DIR=/srv/posbridge posbridge config show`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if cfg.File != "" {
				fmt.Fprintf(app.Out, "# config file: %s\n", cfg.File)
			} else {
				fmt.Fprintln(app.Out, "# no config file found: defaults, environment and flags")
			}
			enc := yaml.NewEncoder(app.Out)
			enc.SetIndent(2)
			if err := enc.Encode(cfg.Redacted()); err != nil {
				return err
			}
			return enc.Close()
		},
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and name every problem",
		Long: `Check the configuration and print every problem found, one per line: unknown
settings, values out of range, bad formats, site folders outside the site's root, and
each job's steps checked against the commands they run. Exit 0 when it is valid, 2 when not.`,
		Example: `  posbridge config validate --config /etc/posbridge/config.yaml`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The settings, then the jobs (checked against the command tree),
			// so one run names every problem of both.
			cfg, err := config.Load(config.Options{File: app.ConfigFile, Flags: app.flags})
			var problems []error
			if err != nil {
				problems = []error{err}
				var joined interface{ Unwrap() []error }
				if errors.As(err, &joined) {
					problems = joined.Unwrap()
				}
			}
			if cfg != nil {
				problems = append(problems, siteFolderProblems(cfg)...)
				problems = append(problems, job.Validate(cfg.JobSpecs(), newStepTree(cfg))...)
			}
			if len(problems) > 0 {
				for _, e := range problems {
					fmt.Fprintln(app.Out, "problem:", e)
				}
				return fmt.Errorf("%w: %d problem(s), listed above", config.ErrInvalid, len(problems))
			}
			where := cfg.File
			if where == "" {
				where = "defaults (no config file found)"
			}
			fmt.Fprintf(app.Out, "configuration is valid: %s\n", where)
			return nil
		},
	}
	return groupCmd("config", "Show and check the configuration", show, validate)
}
