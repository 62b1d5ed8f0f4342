package export

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/ledger"
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

// An outbox may be shared: hosts sharing a database may export into one
// folder (a network mount), and in one folder the exports of several
// kinds may write (a partner's folder holds its order messages and its
// inventory; --out may name any folder). Each file's name is its own:
// the kind's name and a sequence number the database hands out once, and
// the temporary names derive from it. Two runs of one kind never write at
// once (the kind's lock holds across hosts). What prepareDir cleans up is
// then only what no live run of another host, process or kind may own.

// probePrefix begins the name of the file probe makes.
const probePrefix = ".posbridge-probe-"

// prepareDir creates the output folder of an export of k and checks that
// it takes files, then removes what runs of k on this host left when they
// died: probe files of their processes, temporary markers of k's files
// (the kind's lock is held, so no live run writes one).
func prepareDir(k *kind, dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("export %s: create output folder: %w", k.name, err)
	}
	if err := probe(dir); err != nil {
		return fmt.Errorf("export %s: output folder %q is not writable: %w", k.name, dir, err)
	}
	probes, _ := filepath.Glob(filepath.Join(dir, probePrefix+"*"))
	for _, f := range probes {
		if deadProbe(filepath.Base(f)) {
			os.Remove(f)
		}
	}
	markers, _ := filepath.Glob(filepath.Join(dir, ".*.done.tmp-*"))
	for _, f := range markers {
		if kindFile(k.name, strings.TrimPrefix(filepath.Base(f), ".")) {
			os.Remove(f)
		}
	}
	return nil
}

// probe checks that dir takes a new file, named for this host and process
// so that deadProbe on another host or in another process leaves it alone.
func probe(dir string) error {
	p, err := os.CreateTemp(dir, probePattern(ledger.Hostname(), os.Getpid()))
	if err != nil {
		return err
	}
	p.Close()
	return os.Remove(p.Name())
}

// probePattern is the os.CreateTemp pattern of the probe files of process
// pid on host: .posbridge-probe-HOST-PID-RANDOM.
func probePattern(host string, pid int) string {
	return fmt.Sprintf("%s%s-%d-*", probePrefix, host, pid)
}

// deadProbe says whether name is the probe file of a process of this host
// that is gone: a probe of another host, or of a live process, may be in
// use.
func deadProbe(name string) bool {
	rest, ok := strings.CutPrefix(name, probePrefix+ledger.Hostname()+"-")
	if !ok {
		return false
	}
	pid, random, ok := strings.Cut(rest, "-")
	n, err := strconv.Atoi(pid)
	if !ok || err != nil || !digits(random) {
		return false // another host's, whose name begins with this one's and "-"
	}
	alive, _ := ledger.Alive(ledger.Hostname(), n, "")
	return !alive
}

// kindFile says whether name begins as the name of a file of the kind
// called kind does (fileName): KIND_YYYYMMDDTHHMMSSZ_, and not as one of
// another kind whose name begins with this one's and "_" (partner
// inventory of partners "a" and "a_b").
func kindFile(kind, name string) bool {
	rest, ok := strings.CutPrefix(name, kind+"_")
	const stamp = "20060102T150405Z"
	if !ok || len(rest) <= len(stamp) || rest[len(stamp)] != '_' {
		return false
	}
	_, err := time.Parse(stamp, rest[:len(stamp)])
	return err == nil
}

// digits says whether s is one or more decimal digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
