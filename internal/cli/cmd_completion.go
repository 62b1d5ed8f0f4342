package cli

import (
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
)

// completionShells are the shells posbridge completion writes a script for,
// in the order the help names them.
var completionShells = []string{"bash", "zsh", "fish"}

// completionScripts writes the script of each shell, with or without the
// descriptions shown beside the choices.
var completionScripts = map[string]func(root *cobra.Command, w io.Writer, desc bool) error{
	"bash": (*cobra.Command).GenBashCompletionV2,
	"zsh": func(root *cobra.Command, w io.Writer, desc bool) error {
		if desc {
			return root.GenZshCompletion(w)
		}
		return root.GenZshCompletionNoDesc(w)
	},
	"fish": (*cobra.Command).GenFishCompletion,
}

func newCompletionCmd(app *App) *cobra.Command {
	var noDesc bool
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print a script that makes the shell complete posbridge's commands, flags and
values: job names after run and jobs show, site names after --site, sites test
and sites ls (both read from the config that --config or the usual search
finds), and the values of --log-format. The script asks posbridge itself for
the choices, so it stays right after posbridge is upgraded.

bash needs the bash-completion package. For every user, or for yourself, or
for the current shell only:

    posbridge completion bash > /usr/share/bash-completion/completions/posbridge
    posbridge completion bash > ~/.local/share/bash-completion/completions/posbridge
    source <(posbridge completion bash)

zsh needs compinit (autoload -U compinit; compinit in ~/.zshrc). Write the
script to a folder of $fpath, named _posbridge:

    posbridge completion zsh > /usr/local/share/zsh/site-functions/_posbridge

fish:

    posbridge completion fish > ~/.config/fish/completions/posbridge.fish

Completion takes effect in new shells. The man pages are made with make man
(see docs/operations.md).`,
		Example: `  posbridge completion bash > /usr/share/bash-completion/completions/posbridge
  posbridge completion zsh > /usr/local/share/zsh/site-functions/_posbridge
  posbridge completion fish > ~/.config/fish/completions/posbridge.fish`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1)(cmd, args); err != nil {
				return err
			}
			if !slices.Contains(completionShells, args[0]) {
				return usageErr("unknown shell %q: want %s", args[0], strings.Join(completionShells, ", "))
			}
			return nil
		},
		ValidArgsFunction: firstArg(func() []cobra.Completion { return completionShells }),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completionScripts[args[0]](cmd.Root(), app.Out, !noDesc)
		},
	}
	cmd.Flags().BoolVar(&noDesc, "no-descriptions", false, "complete without the descriptions beside the choices")
	return cmd
}

// addCompletions completes the values the command tree cannot know by
// itself. The commands are found by their path, after the tree is built,
// so that the files that build them need not know about completion.
func addCompletions(app *App, root *cobra.Command) {
	jobs := firstArg(func() []cobra.Completion { return app.completionNames(jobChoices) })
	sites := func() []cobra.Completion { return app.completionNames(siteChoices) }
	for _, path := range []string{"run", "jobs show"} {
		if c := findCmd(root, path); c != nil {
			c.ValidArgsFunction = jobs
		}
	}
	for _, path := range []string{"sites test", "sites ls"} {
		if c := findCmd(root, path); c != nil {
			c.ValidArgsFunction = firstArg(sites)
		}
	}
	for _, path := range []string{"push", "pull", "transfers list"} {
		if c := findCmd(root, path); c != nil {
			c.RegisterFlagCompletionFunc("site", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return sites(), cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
	root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.RegisterFlagCompletionFunc("config", cobra.FixedCompletions([]cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt))
	root.RegisterFlagCompletionFunc("data-dir", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs))
}

// findCmd finds a command by its path below the root, like "jobs show".
func findCmd(root *cobra.Command, path string) *cobra.Command {
	c, rest, err := root.Find(strings.Fields(path))
	if err != nil || len(rest) > 0 || c == root {
		return nil
	}
	return c
}

// firstArg completes the first positional argument with choices, and
// nothing (not even file names) after it.
func firstArg(choices func() []cobra.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return choices(), cobra.ShellCompDirectiveNoFileComp
	}
}

// completionNames lists names from the config for completion. A config
// with problems still completes what it holds; one that cannot be read
// completes nothing, quietly: the shell has no place to show an error.
func (a *App) completionNames(names func(*config.Config) []cobra.Completion) []cobra.Completion {
	cfg, err := config.Load(config.Options{File: a.ConfigFile, Flags: a.flags})
	if cfg == nil {
		cobra.CompDebugln("load config: "+err.Error(), false)
		return nil
	}
	return names(cfg)
}

func jobChoices(cfg *config.Config) []cobra.Completion {
	var out []cobra.Completion
	for _, name := range slices.Sorted(maps.Keys(cfg.Jobs)) {
		out = append(out, withDesc(name, cfg.Jobs[name].Description))
	}
	return out
}

func siteChoices(cfg *config.Config) []cobra.Completion {
	var out []cobra.Completion
	for _, name := range slices.Sorted(maps.Keys(cfg.Sites)) {
		s := cfg.Sites[name]
		desc := s.Type + " " + s.Dir
		if s.Type == "sftp" {
			desc = s.Type + " " + s.User + "@" + s.Host
		}
		out = append(out, withDesc(name, strings.TrimSpace(desc)))
	}
	return out
}

func withDesc(name, desc string) cobra.Completion {
	if desc == "" {
		return name
	}
	return cobra.CompletionWithDesc(name, desc)
}
