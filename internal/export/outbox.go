package export

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Outbox says where the exports write when no --out says otherwise, so a
// push can name what an export wrote instead of a folder (push --outbox).
type Outbox struct {
	// Dir is the outbox folder (export.outbox).
	Dir string
	// MassCustomers is the folder of the mass customer download
	// (export.mass_customers.folder); "" when none is set.
	MassCustomers string
	// Partners are the names of the configured partners.
	Partners []string
}

// partnerPrefix names a partner's folder: partner:NAME.
const partnerPrefix = "partner:"

// kindDir is the folder an export of a kind writes to by default.
func kindDir(outbox, kind string) string { return filepath.Join(outbox, kind) }

// partnerDir is the folder the exports for a partner (its order messages
// and inventory) write to by default.
func partnerDir(outbox, partner string) string { return filepath.Join(outbox, "partners", partner) }

// outboxNames are the export names Outbox.Folder takes besides
// partner:NAME, as the export commands are called.
func outboxNames() []string {
	return append(append([]string(nil), Kinds...), "engagement", "mass-customers")
}

// Folder is the folder the export called name writes to by default: an
// export command (items, vendors, invoices, customers, inventory,
// engagement, mass-customers) or partner:NAME, the folder of the exports
// for a configured partner. An unknown name is an error listing the
// names there are.
func (o Outbox) Folder(name string) (string, error) {
	if partner, ok := strings.CutPrefix(name, partnerPrefix); ok {
		if i := slices.IndexFunc(o.Partners, func(p string) bool { return strings.EqualFold(p, partner) }); i >= 0 {
			return partnerDir(o.Dir, o.Partners[i]), nil
		}
		known := "none configured"
		if len(o.Partners) > 0 {
			known = partnerPrefix + strings.Join(o.Partners, ", "+partnerPrefix)
		}
		return "", fmt.Errorf("%q: no partner %q (partners: %s)", name, partner, known)
	}
	switch {
	case name == "engagement" || slices.Contains(Kinds, name):
		return kindDir(o.Dir, name), nil
	case name == "mass-customers" && o.MassCustomers != "":
		return o.MassCustomers, nil
	case name == "mass-customers":
		return "", fmt.Errorf("%q: the mass customer download has no folder of its own: set export.mass_customers.folder, or push --from the folder its --out names", name)
	}
	return "", fmt.Errorf("%q: want an export (%s) or partner:NAME", name, strings.Join(outboxNames(), ", "))
}
