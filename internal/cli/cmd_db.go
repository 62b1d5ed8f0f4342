package cli

import (
	"fmt"

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
		Use:   "status",
		Short: "Show the database, its engine, size, schema version and row counts",
		Long: `Show the database (the SQLite file, or the PostgreSQL URL without its
password), its backend (sqlite or postgres) and the engine's version, its
size (the SQLite file; pg_database_size on PostgreSQL), its schema version
against this binary's, and the rows of every table.`,
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
			info, err := d.Info(cmd.Context())
			if err != nil {
				return err
			}
			counts, err := d.TableCounts(cmd.Context())
			if err != nil {
				return err
			}
			latest := db.LatestVersion()
			if out.value == "json" {
				return writeJSON(app.Out, map[string]any{
					"path": d.Path, "backend": info.Backend, "server_version": info.ServerVersion,
					"schema_version": v, "latest_version": latest,
					"pending_migrations": latest - v, "size_bytes": info.SizeBytes, "tables": counts,
				})
			}
			fmt.Fprintf(app.Out, "database:       %s\n", d.Path)
			fmt.Fprintf(app.Out, "backend:        %s\n", info.Backend)
			fmt.Fprintf(app.Out, "server version: %s\n", info.ServerVersion)
			fmt.Fprintf(app.Out, "size:           %d bytes\n", info.SizeBytes)
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
	return groupCmd("db", "Manage the database: migrate, status, backup, copy", migrate, status, backup, newDBCopyCmd(app))
}

func newDBCopyCmd(app *App) *cobra.Command {
	var to string
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "copy --to URL",
		Short: "Copy the SQLite database into an empty PostgreSQL database",
		Long: `Copy the whole state of the configured SQLite database (every table, the
file sequences and the ledgers included) into the empty PostgreSQL database
of URL: create the schema there, copy every table, then read each back and
compare its row count and checksum with the SQLite side. All of it is one
PostgreSQL transaction: a copy that fails leaves the target empty. A target
that has posbridge tables already is refused.

The SQLite database is read in one read transaction, as it stands when the
copy starts; stop the cron jobs and timers first, so that nothing is written
to it afterwards, then point 'database:' at URL (docs/operations.md,
"Several hosts"). The password comes from the URL, PGPASSWORD or ~/.pgpass
and is never printed.`,
		Example: `  posbridge db copy --to 'postgres://posbridge@db1.example.com:5432/posbridge?sslmode=verify-full'`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErr("db copy needs --to URL, the PostgreSQL database to copy to")
			}
			if !db.IsURL(to) {
				return usageErr("--to %q: not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)", to)
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if from := cfg.DatabasePath(); db.IsURL(from) {
				return usageErr("db copy copies a SQLite database, and the configured database %s is PostgreSQL already", db.Redact(from))
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			tables, err := d.CopyTo(cmd.Context(), to, db.Options{BusyTimeout: cfg.DB.BusyTimeout})
			if err != nil {
				return err
			}
			var rows int64
			for _, t := range tables {
				rows += t.Rows
			}
			v, err := d.Version(cmd.Context())
			if err != nil {
				return err
			}
			if out.value == "json" {
				return writeJSON(app.Out, map[string]any{
					"from": d.Path, "to": db.Redact(to), "schema_version": v, "rows": rows, "tables": tables,
				})
			}
			t := newTable(app.Out, "TABLE", "ROWS", "CHECKSUM", "CHECK")
			for _, c := range tables {
				t.row(c.Table, c.Rows, c.Checksum[:16], "ok")
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "copied %d tables, %d rows from %s to %s (schema version %d)\n",
				len(tables), rows, d.Path, db.Redact(to), v)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "URL of the empty PostgreSQL database to copy to (postgres://USER@HOST:PORT/DATABASE)")
	out.add(cmd, "table", "json")
	return cmd
}
