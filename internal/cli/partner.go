package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/partner"
)

// partnerOf checks that partner is configured with one of the profiles.
func partnerOf(cfg *config.Config, name string, profiles ...string) (partner.Profile, error) {
	if name == "" {
		return partner.Profile{}, usageErr("--partner is required")
	}
	p, err := cfg.Partner(name)
	if err != nil {
		return p, fmt.Errorf("%w: %w", errUsage, err)
	}
	if len(profiles) > 0 && !slices.Contains(profiles, p.Kind) {
		return p, usageErr("--partner %q has profile %s; this command is for profile %s", name, p.Kind, strings.Join(profiles, " or "))
	}
	return p, nil
}

// addPartnerFlag adds --partner to an import command: the name of a
// configured partner of one of profiles, checked (after the command's own
// checks) before it runs, into *p.
func addPartnerFlag(cmd *cobra.Command, app *App, p *partner.Profile, usage string, profiles ...string) {
	var name string
	cmd.Flags().StringVar(&name, "partner", "", usage)
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(c, args); err != nil {
				return err
			}
		}
		cfg, err := app.Config()
		if err != nil {
			return err
		}
		*p, err = partnerOf(cfg, name, profiles...)
		return err
	}
}

// partnerDB loads the configuration, checks that partner name is
// configured (a usage error otherwise), and opens the database.
func (a *App) partnerDB(ctx context.Context, name string) (*config.Config, partner.Profile, *db.DB, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, partner.Profile{}, nil, err
	}
	p, err := cfg.Partner(name)
	if err != nil {
		return cfg, p, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	d, err := a.DB(ctx)
	return cfg, p, d, err
}

// knownPartner checks a list's --partner filter: a misspelt partner would
// list nothing, which reads as "none", so it is named as every command
// that takes a partner names it. An empty filter is no filter.
func (app *App) knownPartner(name string) error {
	if name == "" {
		return nil
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	_, err = partnerOf(cfg, name)
	return err
}
