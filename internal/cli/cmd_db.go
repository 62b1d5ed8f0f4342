package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
)

func newDBCmd(app *App) *cobra.Command {
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations",
		Long: `Apply the schema migrations embedded in this binary that the database does not
have yet, each in its own transaction. Other commands do this on their own;
run it explicitly after an upgrade to see what changed. A database written by
a newer posbridge is refused.`,
		Example: `  posbridge db migrate`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.openDB(cmd.Context(), db.Options{NoMigrate: true})
			if err != nil {
				return err
			}
			applied, err := d.Migrate(cmd.Context())
			for _, m := range applied {
				fmt.Fprintf(app.Out, "applied %s\n", m)
			}
			if err != nil {
				return err
			}
			v, _ := d.Version(cmd.Context())
			if len(applied) == 0 {
				fmt.Fprintf(app.Out, "schema is up to date (version %d)\n", v)
			} else {
				fmt.Fprintf(app.Out, "schema now at version %d\n", v)
			}
			return nil
		},
	}
	var out outputFlag
	status := &cobra.Command{
		Use:     "status",
		Short:   "Show the database path, schema version and row counts",
		Example: `  posbridge db status --output json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.openDB(cmd.Context(), db.Options{NoMigrate: true})
			if err != nil {
				return err
			}
			v, err := d.Version(cmd.Context())
			if err != nil {
				return err
			}
			counts, err := d.TableCounts(cmd.Context())
			if err != nil {
				return err
			}
			var size int64
			if st, err := os.Stat(d.Path); err == nil {
				size = st.Size()
			}
			latest := db.LatestVersion()
			if out.value == "json" {
				return writeJSON(app.Out, map[string]any{
					"path": d.Path, "schema_version": v, "latest_version": latest,
					"pending_migrations": latest - v, "size_bytes": size, "tables": counts,
				})
			}
			fmt.Fprintf(app.Out, "database:       %s\n", d.Path)
			fmt.Fprintf(app.Out, "size:           %d bytes\n", size)
			fmt.Fprintf(app.Out, "schema version: %d (this binary: %d", v, latest)
			if v < latest {
				fmt.Fprintf(app.Out, "; %d pending, run 'posbridge db migrate'", latest-v)
			}
			fmt.Fprintln(app.Out, ")")
			t := newTable(app.Out, "TABLE", "ROWS")
			for _, c := range counts {
				t.row(c.Table, c.Rows)
			}
			return t.flush()
		},
	}
	out.add(status, "table", "json")
	var force bool
	backup := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the live database",
		Long: `Write a consistent online copy of the database to FILE (SQLite VACUUM INTO),
while other posbridge processes keep working. The copy is written under a
temporary name and renamed when complete.`,
		Example: `  posbridge db backup /backup/posbridge-$(date +%F).db`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			if err := d.Backup(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "backup written to %s\n", args[0])
			return nil
		},
	}
	backup.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	app.declareStep(backup, locking())
	return groupCmd("db", "Manage the database: migrate, status, backup", migrate, status, backup)
}
