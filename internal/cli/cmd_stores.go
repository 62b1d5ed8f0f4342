package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/stores"
)

func newStoresCmd(app *App) *cobra.Command {
	group := groupCmd("stores", "The store cross reference: list, show, add, update, delete, export",
		newStoresListCmd(app), newStoresShowCmd(app), newStoresAddCmd(app), newStoresUpdateCmd(app),
		newStoresDeleteCmd(app), newStoresExportCmd(app))
	group.Long = `The store cross reference: the stores POS systems know by number, with their
address, the warehouse that holds their stock and whether they ship orders for
pickup. Keep it here by hand, or with 'posbridge import stores'; both check
a store with the same rules and messages.`
	return group
}

func newStoresListCmd(app *App) *cobra.Command {
	var active bool
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stores by number",
		Long: `List stores by number. The table and CSV show the main fields; --output json
shows every field. For a file that 'posbridge import stores' reads back, use
'posbridge stores export'.`,
		Example: `  posbridge stores list
  posbridge stores list --active --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			w := app.newRecords(out.value, "store", "name", "active", "city", "state", "postal_code",
				"country", "warehouse", "ship_for_pickup")
			err = stores.List(cmd.Context(), d, active, func(s stores.Store) error {
				return w.add(s, s.Store, s.Name, format.FormatFlag(s.Active), s.City, s.State, s.PostalCode,
					s.Country, s.Warehouse, format.FormatFlag(s.ShipForPickup))
			})
			if err != nil {
				return err
			}
			return w.close()
		},
	}
	cmd.Flags().BoolVar(&active, "active", false, "only active stores")
	out.add(cmd, "table", "json", "csv")
	return cmd
}

func newStoresShowCmd(app *App) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "show STORE",
		Short:   "Show every field of one store",
		Example: `  posbridge stores show S01`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			s, err := stores.Get(cmd.Context(), d, args[0])
			if err != nil {
				return asNotFound(err, stores.ErrNotFound, "store", args[0], "stores list")
			}
			if out.value == "json" {
				return writeJSON(app.Out, s)
			}
			tab := newTable(app.Out, "FIELD", "VALUE")
			for i, v := range s.Record().Values() {
				tab.row(stores.Columns[i], v)
			}
			tab.row("created_at", s.CreatedAt)
			tab.row("updated_at", s.UpdatedAt)
			return tab.flush()
		},
	}
	out.add(cmd, "table", "json")
	return cmd
}

// storeFlags are the flags of add and update, one per field but the store
// number, which is the argument.
var storeFlags = []struct{ flag, column, usage string }{
	{"name", "name", "store name (required)"},
	{"active", "active", "active: Y or N"},
	{"address1", "address1", "address line 1 (required to ship for pickup)"},
	{"address2", "address2", "address line 2"},
	{"city", "city", "city (required to ship for pickup)"},
	{"state", "state", "state or province (required to ship for pickup)"},
	{"postal-code", "postal_code", "postal code, at least 5 characters (required to ship for pickup)"},
	{"country", "country", "country: a 2- or 3-letter code (required to ship for pickup)"},
	{"phone", "phone", "phone number"},
	{"email", "email", "email address"},
	{"warehouse", "warehouse", "the store's warehouse (must exist)"},
	{"ship-for-pickup", "ship_for_pickup", "ships orders for pickup in the store: Y or N"},
	{"source-code", "source_code", "source code"},
	{"external-id", "external_id", "the store's id in another system"},
}

// addStoreFlags binds the field flags to r; defaults are Y for active and
// N for ship-for-pickup when withDefaults is set (add), none otherwise
// (update changes only the flags given).
func addStoreFlags(cmd *cobra.Command, r *stores.Record, withDefaults bool) {
	for _, f := range storeFlags {
		def := ""
		if withDefaults {
			switch f.column {
			case "active":
				def = "Y"
			case "ship_for_pickup":
				def = "N"
			}
		}
		cmd.Flags().StringVar(r.Field(f.column), f.flag, def, f.usage)
	}
}

func newStoresAddCmd(app *App) *cobra.Command {
	var r stores.Record
	cmd := &cobra.Command{
		Use:   "add STORE --name NAME [field flags]",
		Short: "Add a store",
		Long: `Add a store with the number STORE. The fields are checked like those of the
store upload, with its messages; a store that ships for pickup needs address1,
city, state, postal code and country. A store that exists already is an error
(use 'posbridge stores update').`,
		Example: `  posbridge stores add S03 --name "Austin South Congress" --warehouse S03
  posbridge stores add S04 --name "Denver Union Station" --ship-for-pickup Y --address1 "1701 Wynkoop St" --city Denver --state CO --postal-code 80202 --country US`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			r.Store = args[0]
			s, err := stores.Add(cmd.Context(), d, r)
			if errors.Is(err, stores.ErrExists) {
				return fmt.Errorf("%w (use 'posbridge stores update' to change it)", err)
			}
			if err != nil {
				return storeErr(err)
			}
			fmt.Fprintf(app.Out, "store %s added\n", s.Store)
			return nil
		},
	}
	addStoreFlags(cmd, &r, true)
	return cmd
}

func newStoresUpdateCmd(app *App) *cobra.Command {
	var r stores.Record
	cmd := &cobra.Command{
		Use:   "update STORE --FIELD VALUE...",
		Short: "Change fields of a store",
		Long: `Change the fields given by flags; the others keep their values. The store as
changed is checked like a store of the upload, with its messages. Give an empty
value to clear a field, as in --address2 "".`,
		Example: `  posbridge stores update S01 --name "Boulder Pearl St" --phone 303-555-0101
  posbridge stores update S02 --active N`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var given []string
			for _, f := range storeFlags {
				if cmd.Flags().Changed(f.flag) {
					given = append(given, f.column)
				}
			}
			if len(given) == 0 {
				return usageErr("give at least one field to change, such as --name (see '%s --help')", cmd.CommandPath())
			}
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			diff, err := stores.Update(cmd.Context(), d, args[0], func(cur *stores.Record) {
				for _, c := range given {
					*cur.Field(c) = *r.Field(c)
				}
			})
			if err != nil {
				return storeErr(err)
			}
			if len(diff) == 0 {
				fmt.Fprintf(app.Out, "store %s unchanged\n", args[0])
				return nil
			}
			fmt.Fprintf(app.Out, "store %s updated: %s\n", args[0], strings.Join(diff, ", "))
			return nil
		},
	}
	addStoreFlags(cmd, &r, false)
	return cmd
}

// storeErr words a store that failed its checks for the command line.
func storeErr(err error) error {
	var invalid *stores.InvalidError
	if errors.As(err, &invalid) {
		return fmt.Errorf("invalid store: %w", err)
	}
	return err
}

func newStoresDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "delete STORE",
		Short:   "Delete a store",
		Example: `  posbridge stores delete S03`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.DB(cmd.Context())
			if err != nil {
				return err
			}
			if err := stores.Delete(cmd.Context(), d, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "store %s deleted\n", args[0])
			return nil
		},
	}
}

func newStoresExportCmd(app *App) *cobra.Command {
	var kind, out string
	cmd := &cobra.Command{
		Use:   "export [--format csv|xml] [--out FILE]",
		Short: "Write every store as a store upload file",
		Long: `Write every store, by number, in the CSV or XML form of the store upload, so
the file can be edited and given back to 'posbridge import stores'. The file
goes to stdout, or with --out to FILE (written under a temporary name and
renamed, so a reader never sees half of it). In CSV, a cell a spreadsheet
would run as a formula (=, +, -, @ first, not a number) gets a ' in front,
which the upload reads back (csv.formula_guard).`,
		Example: `  posbridge stores export > stores.csv
  posbridge stores export --format xml --out stores.xml`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if kind != "csv" && kind != "xml" {
				return usageErr("--format %q: want csv or xml", kind)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, d, err := app.ConfigDB(ctx)
			if err != nil {
				return err
			}
			guard := cfg.CSV.FormulaGuard
			if out == "" {
				_, err := stores.Export(ctx, d, app.Out, kind, guard)
				return err
			}
			var n int
			err = fsx.WriteAtomic(out, 0o640, func(w io.Writer) (err error) {
				n, err = stores.Export(ctx, d, w, kind, guard)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "%d stores written to %s\n", n, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "format", "csv", "file format: csv or xml")
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of stdout")
	return cmd
}
