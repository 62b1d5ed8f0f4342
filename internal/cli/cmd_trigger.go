package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/job"
	"github.com/posbridge/posbridge/internal/trigger"
)

func newTriggerCmd(app *App) *cobra.Command {
	return groupCmd("trigger", "The outbound trigger table: list, show, generate, retry, delete, purge",
		newTriggerListCmd(app), newTriggerShowCmd(app), newTriggerGenerateCmd(app),
		newTriggerRetryCmd(app), newTriggerDeleteCmd(app), newTriggerPurgeCmd(app))
}

func newTriggerListCmd(app *App) *cobra.Command {
	var f trigger.Filter
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List triggers, oldest first",
		Long: `List outbound triggers, oldest first. KEY is the record number, ITEM/SKU for
item and inventory triggers. FILE is the export file a processed trigger went into.`,
		Example: `  posbridge trigger list --type SKU --status ready
  posbridge trigger list --status error --output json
  posbridge trigger list --key IT1001/RED-M --limit 0`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			f.Code = strings.ToUpper(f.Code)
			if f.Code != "" && !slices.Contains(trigger.Codes, f.Code) {
				return usageErr("--type %q: want one of %s", f.Code, strings.Join(trigger.Codes, ", "))
			}
			f.Status = strings.ToLower(f.Status)
			if f.Status == "x" {
				f.Status = trigger.StatusProcessed
			}
			if f.Status != "" && !slices.Contains(trigger.Statuses, f.Status) {
				return usageErr("--status %q: want one of %s", f.Status, strings.Join(trigger.Statuses, ", "))
			}
			if f.Limit < 0 {
				return usageErr("--limit must be 0 (all) or more")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			limit := f.Limit
			if limit > 0 {
				f.Limit = limit + 1
			}
			w := app.newRecords(out.value, "id", "type", "key", "capture", "status", "attempts", "file", "updated", "error")
			shown := 0
			more := false
			err = trigger.List(cmd.Context(), d, f, func(t trigger.Trigger) error {
				if limit > 0 && shown == limit {
					more = true
					return nil
				}
				shown++
				return w.add(t, t.ID, t.FileCode, t.DisplayKey(), t.Capture, t.Status, t.Attempts, t.File, t.UpdatedAt, t.LastError)
			})
			if err != nil {
				return err
			}
			if err := w.close(); err != nil {
				return err
			}
			if more {
				app.logger().Info(fmt.Sprintf("showing the first %d triggers; use --limit 0 for all", limit))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Code, "type", "", "file code: "+strings.Join(trigger.Codes, ", "))
	fl.StringVar(&f.Status, "status", "", "status: "+strings.Join(trigger.Statuses, ", "))
	fl.StringVar(&f.Key, "key", "", "record key, or ITEM/SKU")
	fl.IntVar(&f.Limit, "limit", 200, "at most this many triggers (0: all)")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

// triggersDB reads the trigger ids of args and opens the database.
func triggersDB(cmd *cobra.Command, app *App, args []string) ([]int64, *db.DB, error) {
	ids, err := parseIDs(args)
	if err != nil {
		return nil, nil, err
	}
	d, err := app.DB(cmd.Context())
	return ids, d, err
}

// parseIDs reads trigger ids; anything but a positive number is a usage
// error.
func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageErr("%q is not a trigger id", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func newTriggerShowCmd(app *App) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one trigger",
		Example: `  posbridge trigger show 42`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, d, err := triggersDB(cmd, app, args)
			if err != nil {
				return err
			}
			t, err := trigger.Get(cmd.Context(), d, ids[0])
			if err != nil {
				return asNotFound(err, trigger.ErrNotFound, "trigger", fmt.Sprint(ids[0]), "trigger list")
			}
			if out.value == "json" {
				return writeJSON(app.Out, t)
			}
			tab := newTable(app.Out, "FIELD", "VALUE")
			for _, kv := range [][2]any{
				{"id", t.ID}, {"type", t.FileCode}, {"key", t.DisplayKey()}, {"capture", t.Capture},
				{"status", t.Status}, {"attempts", t.Attempts}, {"last error", t.LastError}, {"file", t.File},
				{"created", t.CreatedAt}, {"updated", t.UpdatedAt}, {"processed", t.ProcessedAt},
			} {
				tab.row(kv[0], kv[1])
			}
			return tab.flush()
		},
	}
	out.add(cmd, "table", "json")
	return cmd
}

func newTriggerGenerateCmd(app *App) *cobra.Command {
	var o trigger.GenerateOptions
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Create a trigger for every record of a kind (initial load to a new POS)",
		Long: `Create one A (add) trigger for every live record of the chosen kind, in one
statement, skipping records that already have a pending trigger. Use it for the
initial full load to a new POS, then export as usual.`,
		Example: `  posbridge trigger generate --type item
  posbridge trigger generate --type customer --where-class RT --dry-run`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(trigger.GenerateKinds, o.Kind) {
				return usageErr("--type %q: want one of %s", o.Kind, strings.Join(trigger.GenerateKinds, ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			o.Warn = func(msg string) { app.logger().Warn(msg) }
			res, err := trigger.Generate(cmd.Context(), d, o)
			if err != nil {
				if errors.Is(err, trigger.ErrNoClass) {
					return usageErr("%v", err)
				}
				return err
			}
			if out.value == "json" {
				return writeJSON(app.Out, res)
			}
			fmt.Fprintf(app.Out, "%sgenerate %s (%s): %d selected, %d created, %d skipped (already pending)\n",
				dryRunPrefix(o.DryRun), o.Kind, res.FileCode, res.Selected, res.Created, res.Skipped)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Kind, "type", "", "record kind: "+strings.Join(trigger.GenerateKinds, ", ")+" (required)")
	fl.StringVar(&o.Class, "where-class", "", "only records of this item or customer class")
	fl.BoolVar(&o.DryRun, "dry-run", false, "count what would be created and change nothing")
	out.add(cmd, "text", "json")
	app.declareStep(cmd, locking(job.TriggersLock))
	return cmd
}

func newTriggerRetryCmd(app *App) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry ID... | --all-errors",
		Short: "Make triggers in error ready again",
		Example: `  posbridge trigger retry 17 18
  posbridge trigger retry --all-errors`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageErr("give trigger ids or --all-errors, not both or neither")
			}
			return changeTriggers(cmd, app, args, "made ready", func(ctx context.Context, d *db.DB, ids []int64) (int64, error) {
				return trigger.Retry(ctx, d, ids, all)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all-errors", false, "retry every trigger in error")
	return cmd
}

func newTriggerDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID...",
		Short:   "Delete triggers (the partner will not be told of those changes)",
		Example: `  posbridge trigger delete 17 18`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("give at least one trigger id")
			}
			return changeTriggers(cmd, app, args, "deleted", trigger.Delete)
		},
	}
}

// changeTriggers applies change to the triggers whose ids are args, the
// way retry and delete do, and says how many it changed: "2 triggers
// deleted".
func changeTriggers(cmd *cobra.Command, app *App, args []string, done string,
	change func(ctx context.Context, d *db.DB, ids []int64) (int64, error)) error {
	ids, d, err := triggersDB(cmd, app, args)
	if err != nil {
		return err
	}
	n, err := change(cmd.Context(), d, ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "%d triggers %s\n", n, done)
	return nil
}

func newTriggerPurgeCmd(app *App) *cobra.Command {
	var older string
	var dry bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete processed triggers older than a given age",
		Long: `Delete processed triggers whose processing is older than --older-than (default:
triggers.purge_days from the config), and remove the tombstones of deleted
records that no trigger still needs.`,
		Example: `  posbridge trigger purge
  posbridge trigger purge --older-than 30d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			age := time.Duration(cfg.Triggers.PurgeDays) * 24 * time.Hour
			if older != "" {
				if age, err = parseAge(older); err != nil {
					return usageErr("--older-than %q: %v", older, err)
				}
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			n, err := trigger.Purge(cmd.Context(), d, age, dry)
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "%s%d processed triggers older than %s purged\n", dryRunPrefix(dry), n, formatAge(age))
			return nil
		},
	}
	cmd.Flags().StringVar(&older, "older-than", "", "age such as 7d, 36h or 90m (default: triggers.purge_days)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "count and change nothing")
	app.declareStep(cmd, locking(job.TriggersLock))
	return cmd
}

// parseAge reads a duration that also accepts days: 7d, 1d12h, 36h.
func parseAge(s string) (time.Duration, error) {
	var days int
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want a duration like 7d, 36h or 90m")
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("want a duration like 7d, 36h or 90m")
		}
		rest = d
	}
	return time.Duration(days)*24*time.Hour + rest, nil
}

// formatAge writes an age the way parseAge reads it: 1d12h, 90m is 1h30m.
func formatAge(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
