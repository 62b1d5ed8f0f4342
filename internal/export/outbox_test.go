package export

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/ledger"
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

// prepareDir removes what dead runs of its kind on this host left, and
// nothing that another host, a live process or another kind sharing the
// folder may be using.
func TestPrepareDirShared(t *testing.T) {
	dir := t.TempDir()
	host := ledger.Hostname()
	const dead = 1<<31 - 1 // above Linux's largest pid_max
	// A probe a process killed while probing left.
	p, err := os.CreateTemp(dir, probePattern(host, dead))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	gone := []string{".items_20261207T010203Z_000007.xml.done.tmp-991"}
	kept := []string{
		fmt.Sprintf(".posbridge-probe-%s-%d-124", host, os.Getpid()),                  // this live process
		fmt.Sprintf(".posbridge-probe-otherhost-%d-125", dead),                        // another host's
		fmt.Sprintf(".posbridge-probe-%s-x-%d-126", host, dead),                       // host "HOST-x"
		".vendors_20261207T010203Z_000007.xml.done.tmp-992",                           // another kind's
		".items_extra_20261207T010203Z_000001.xml.done.tmp-993",                       // kind "items_extra"
		"items_20261207T010203Z_000006.xml", ".items_20261207T010203Z_000008.xml.tmp", // a file, a file being written
	}
	for _, name := range append(append([]string(nil), gone...), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := prepareDir(kinds["items"], dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(kept)
	if !slices.Equal(left, kept) {
		t.Errorf("left %q, want %q", left, kept)
	}
}
