package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/ledger"
)

func newTransfersCmd(app *App) *cobra.Command {
	var site, status string
	var deliveries bool
	var out outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the transfer ledger: every file pushed or pulled",
		Example: `  posbridge transfers list --site partner --status failed
  posbridge transfers list --output json
  posbridge transfers list --deliveries --site pos-api --status rejected`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if deliveries {
				switch status {
				case "", ledger.DeliveryStarted, ledger.DeliveryDone, ledger.DeliveryRejected, ledger.DeliveryFailed:
					return nil
				}
				return usageErr("--status %q: with --deliveries want started, done, rejected or failed", status)
			}
			switch status {
			case "", ledger.TransferStarted, ledger.TransferDone, ledger.TransferFailed, ledger.TransferSkipped:
				return nil
			}
			return usageErr("--status %q: want started, done, failed or skipped", status)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			if deliveries {
				w := app.newRecords(out.value, "id", "site", "endpoint", "key", "record", "local_path", "status", "code", "attempts", "updated", "error")
				err = ledger.ListDeliveries(cmd.Context(), d, ledger.TransferFilter{Site: strings.ToLower(site), Status: status}, func(x ledger.Delivery) error {
					return w.add(x, x.ID, x.Site, x.Endpoint, x.Key, x.Record, x.LocalPath, x.Status, x.HTTPStatus, x.Attempts, x.UpdatedAt, x.Error)
				})
				if err != nil {
					return err
				}
				return w.close()
			}
			w := app.newRecords(out.value, "id", "site", "direction", "remote_path", "local_path", "size", "status", "updated", "error")
			err = ledger.ListTransfers(cmd.Context(), d, ledger.TransferFilter{Site: strings.ToLower(site), Status: status}, func(t ledger.Transfer) error {
				return w.add(t, t.ID, t.Site, t.Direction, t.RemotePath, t.LocalPath, t.Size, t.Status, t.UpdatedAt, t.Error)
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	list.Flags().StringVar(&site, "site", "", "only this site")
	list.Flags().StringVar(&status, "status", "", "only this status: started, done, failed or skipped (with --deliveries: started, done, rejected or failed)")
	list.Flags().BoolVar(&deliveries, "deliveries", false, "the records delivered to http sites, by key, with the answer's status code")
	out.add(list, "table", "json", "csv")
	return groupCmd("transfers", "The ledger of files pushed to and pulled from sites", list)
}
