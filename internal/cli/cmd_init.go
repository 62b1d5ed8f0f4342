package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
)

func newInitCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data folder and the database",
		Long: `Create the data folder (data_dir) and the SQLite database in it, with the
current schema. Running it again on an existing database only applies pending
migrations. With database: postgres://... it creates the schema in that
PostgreSQL database instead, which its administrator has created, empty and
with the C locale (docs/operations.md, "Several hosts"); to bring an
existing SQLite state along, use 'posbridge db copy --to URL' instead.`,
		Example: `  posbridge init --data-dir ./data`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			existed, err := db.Exists(cmd.Context(), cfg.DatabasePath())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return fmt.Errorf("create data folder %q: %w", cfg.DataDir, err)
			}
			d, err := app.openDB(cmd.Context(), db.Options{Create: true})
			if err != nil {
				return err
			}
			v, err := d.Version(cmd.Context())
			if err != nil {
				return err
			}
			if existed {
				fmt.Fprintf(app.Out, "database %s already exists (schema version %d)\n", d.Path, v)
				return nil
			}
			fmt.Fprintf(app.Out, "created database %s (schema version %d)\n", d.Path, v)
			return nil
		},
	}
}
