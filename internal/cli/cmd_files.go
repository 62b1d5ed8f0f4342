package cli

import (
	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/ledger"
)

func newFilesCmd(app *App) *cobra.Command {
	var direction, kind string
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the file ledger: loads and imports in, exports out",
		Example: `  posbridge files list --direction out --kind items
  posbridge files list --output json`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if direction != "" && direction != "in" && direction != "out" {
				return usageErr("--direction %q: want in or out", direction)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			w := app.newRecords(out.value, "id", "direction", "kind", "name", "records", "rejected", "status", "sha256", "created", "error")
			err = ledger.ListFiles(cmd.Context(), d, ledger.FileFilter{Direction: direction, Kind: kind}, func(f ledger.File, msg string) error {
				obj := map[string]any{"id": f.ID, "direction": f.Direction, "kind": f.Kind, "name": f.Name, "path": f.Path,
					"records": f.Records, "rejected": f.Rejected, "status": f.Status, "sha256": f.SHA256, "size": f.Size,
					"run_id": f.RunID, "created_at": f.CreatedAt, "error": msg}
				return w.add(obj, f.ID, f.Direction, f.Kind, f.Name, f.Records, f.Rejected, f.Status, f.SHA256, f.CreatedAt, msg)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	list.Flags().StringVar(&direction, "direction", "", "in or out")
	list.Flags().StringVar(&kind, "kind", "", "file kind, such as items or load-items")
	out.add(list, "table", "json", "csv")
	return groupCmd("files", "The ledger of files in and out", list)
}
