package export

import (
	"path/filepath"
	"strings"
	"testing"
)

// The folder of each export name is where that export writes by default
// (the same functions choose it), and an unknown name lists the names.
func TestOutboxFolder(t *testing.T) {
	o := Outbox{Dir: "/srv/outbox", MassCustomers: "/srv/mass", Partners: []string{"estore", "increff"}}
	for name, want := range map[string]string{
		"items": "/srv/outbox/items", "inventory": "/srv/outbox/inventory", "engagement": "/srv/outbox/engagement",
		"mass-customers": "/srv/mass", "partner:increff": "/srv/outbox/partners/increff", "partner:ESTORE": "/srv/outbox/partners/estore",
	} {
		if got, err := o.Folder(name); err != nil || got != filepath.FromSlash(want) {
			t.Errorf("Folder(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	var opt Options
	opt.Outbox = o.Dir
	opt.defaults(kinds["items"])
	if got, _ := o.Folder("items"); got != opt.Dir {
		t.Errorf("Folder(items) = %q, the export writes to %q", got, opt.Dir)
	}
	for name, want := range map[string]string{
		"itemz":          "want an export (items, vendors, invoices, customers, inventory, engagement, mass-customers) or partner:NAME",
		"partner:nobody": `no partner "nobody" (partners: partner:estore, partner:increff)`,
		"partner:":       `no partner ""`,
		"mass_customers": "want an export",
	} {
		if _, err := o.Folder(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Folder(%q) = %v, want %q", name, err, want)
		}
	}
	if _, err := (Outbox{Dir: "/o"}).Folder("mass-customers"); err == nil || !strings.Contains(err.Error(), "export.mass_customers.folder") {
		t.Errorf("mass-customers without a folder: %v", err)
	}
	if _, err := (Outbox{Dir: "/o"}).Folder("partner:x"); err == nil || !strings.Contains(err.Error(), "none configured") {
		t.Errorf("no partners: %v", err)
	}
}
