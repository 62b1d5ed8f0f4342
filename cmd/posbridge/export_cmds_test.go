package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// The script commands of the export stories. XML files are checked with
// the real xmllint against the schemas in docs/schemas of this repository,
// which the commands find themselves (repoRoot), so that every script uses
// the schemas of the tree under test.

// exportFileName is the name of a finished export file: kind, UTC time of
// the run, six-digit sequence number, extension.
var exportFileName = regexp.MustCompile(`^(items|vendors|invoices|customers|inventory|mass_customers|` +
	`engagement_customers|engagement_items|engagement_sales|engagement_returns)_[0-9]{8}T[0-9]{6}Z_([0-9]{6})\.(xml|csv)$`)

// ciRequiresXmllint says whether this is CI (CI=true), where the schema
// validation must run: a missing xmllint fails the scripts there.
func ciRequiresXmllint(ts *testscript.TestScript) bool {
	return ts.Getenv("CI") == "true" || os.Getenv("CI") == "true"
}

// xmllintPath finds xmllint, or fails the script.
func xmllintPath(ts *testscript.TestScript) string {
	p, err := exec.LookPath("xmllint")
	if err != nil {
		if ciRequiresXmllint(ts) {
			ts.Fatalf("xmllint is not installed, and CI=true requires the XSD validation: install libxml2-utils")
		}
		ts.Fatalf("xmllint is not installed (package libxml2-utils); start the script with requirexmllint")
	}
	return p
}

// cmdRequireXmllint decides what a script does without xmllint. In CI
// (CI=true) that is a failure. Elsewhere it puts a program named
// xmllint-missing on the script's PATH, so that the script's next line
//
//	[exec:xmllint-missing] skip 'why'
//
// skips it. (testscript's skip ends the test as skipped even after a
// failure when ContinueOnError is set, so the skip must not run in CI, and
// a built-in condition is all a script can test.)
//
//	requirexmllint
func cmdRequireXmllint(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: requirexmllint")
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		return
	}
	if ciRequiresXmllint(ts) {
		ts.Fatalf("xmllint is not installed, and CI=true requires the XSD validation: install libxml2-utils")
	}
	dir := ts.MkAbs(".xmllint-missing")
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(dir, "xmllint-missing"), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	ts.Setenv("PATH", dir+string(os.PathListSeparator)+ts.Getenv("PATH"))
}

// schemaPath is docs/schemas/<kind>.xsd of this repository; the mass
// customer download shares the customers schema.
func schemaPath(ts *testscript.TestScript, kind string) string {
	root, err := repoRoot()
	ts.Check(err)
	if kind == "mass_customers" {
		kind = "customers"
	}
	p := filepath.Join(root, "docs", "schemas", kind+".xsd")
	if _, err := os.Stat(p); err != nil {
		ts.Fatalf("no schema for %s: %v", kind, err)
	}
	return p
}

// validate runs xmllint --noout --schema on file and returns its verdict.
func validate(ts *testscript.TestScript, kind, file string) (ok bool, out string) {
	cmd := exec.Command(xmllintPath(ts), "--noout", "--schema", schemaPath(ts, kind), ts.MkAbs(file))
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, string(b)
	case errors.As(err, &ee):
		return false, string(b)
	default:
		ts.Fatalf("xmllint: %v", err)
		return false, ""
	}
}

// cmdXSDValid validates XML files against docs/schemas/<KIND>.xsd with
// xmllint; with ! it expects every file to be rejected:
//
//	xsdvalid KIND FILE...
func cmdXSDValid(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: xsdvalid KIND FILE...")
	}
	for _, f := range args[1:] {
		ok, out := validate(ts, args[0], f)
		switch {
		case ok && neg:
			ts.Fatalf("%s validates against %s.xsd, want it rejected", f, args[0])
		case !ok && !neg:
			ts.Fatalf("%s does not validate against %s.xsd:\n%s", f, args[0], out)
		}
		// The rejection is printed, so the script can check it is the
		// one it provoked.
		fmt.Fprint(ts.Stdout(), out)
	}
}

// envelope is what the checks read of an export's XML: the Message
// attributes and the record elements of its one wrapper.
type envelope struct {
	XMLName  xml.Name
	Type     string `xml:"type,attr"`
	Sequence string `xml:"sequence,attr"`
	Count    string `xml:"count,attr"`
	Wrapper  struct {
		XMLName xml.Name
		Records []struct{ XMLName xml.Name } `xml:",any"`
	} `xml:",any"`
}

// exportShape is per kind the message type, wrapper and record element.
var exportShape = map[string][3]string{
	"items":          {"CWITEMOUT", "Items", "Item"},
	"vendors":        {"CWVENDOROUT", "Vendors", "Vendor"},
	"invoices":       {"CWINVOICEOUT", "Invoices", "InvoiceHeader"},
	"customers":      {"CWCUSTOMERDOWNLOAD", "Customers", "Customer"},
	"mass_customers": {"CWCUSTOMERDOWNLOAD", "Customers", "Customer"},
	"inventory":      {"CWINVENTORYDOWNLOAD", "InventoryItems", "InventoryItem"},
	// The Customer Engagement feed.
	"engagement_customers": {"CECUSTOMERS", "Customers", "Customer"},
	"engagement_items":     {"CEITEMS", "Items", "Item"},
	"engagement_sales":     {"CESALES", "Sales", "Sale"},
	"engagement_returns":   {"CERETURNS", "Returns", "Return"},
}

// checkEnvelope checks what a schema cannot: the type of the file's kind,
// count = the number of records, sequence = the number in the file name.
func checkEnvelope(kind, seq string, b []byte) error {
	var e envelope
	if err := xml.Unmarshal(b, &e); err != nil {
		return err
	}
	shape := exportShape[kind]
	if e.XMLName.Local != "Message" || e.Type != shape[0] || e.Wrapper.XMLName.Local != shape[1] {
		return fmt.Errorf("envelope is <%s type=%q><%s>, want <Message type=%q><%s>", e.XMLName.Local, e.Type,
			e.Wrapper.XMLName.Local, shape[0], shape[1])
	}
	for _, r := range e.Wrapper.Records {
		if r.XMLName.Local != shape[2] {
			return fmt.Errorf("<%s> in <%s>, want only <%s>", r.XMLName.Local, shape[1], shape[2])
		}
	}
	if e.Count != strconv.Itoa(len(e.Wrapper.Records)) {
		return fmt.Errorf("count=%q, but the file holds %d <%s>", e.Count, len(e.Wrapper.Records), shape[2])
	}
	if want := strings.TrimLeft(seq, "0"); e.Sequence != want {
		return fmt.Errorf("sequence=%q, the file name says %s", e.Sequence, seq)
	}
	return nil
}

// cmdXSDValidAll validates every .xml file under the folders against the
// schema of its kind (from its name, which must be an export file name)
// and checks the envelope rules a schema cannot express: the type of the
// kind, count equal to the number of records, sequence equal to the
// number in the file name. It prints "validated N XML files"; finding no
// XML file at all is a failure:
//
//	xsdvalidall DIR...
func cmdXSDValidAll(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: xsdvalidall DIR...")
	}
	n := 0
	for _, dir := range args {
		err := filepath.WalkDir(ts.MkAbs(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".xml" {
				return err
			}
			m := exportFileName.FindStringSubmatch(d.Name())
			if m == nil {
				ts.Fatalf("%s: not an export file name", path)
			}
			if ok, out := validate(ts, m[1], path); !ok {
				ts.Fatalf("%s does not validate against %s.xsd:\n%s", path, m[1], out)
			}
			b, err := os.ReadFile(path)
			ts.Check(err)
			if err := checkEnvelope(m[1], m[2], b); err != nil {
				ts.Fatalf("%s: %v", path, err)
			}
			n++
			return nil
		})
		ts.Check(err)
	}
	if n == 0 {
		ts.Fatalf("xsdvalidall: no XML file under %s", strings.Join(args, ", "))
	}
	fmt.Fprintf(ts.Stdout(), "validated %d XML files\n", n)
}

// cmdXPath prints the result of an XPath expression on an XML file, read
// by xmllint (so with a real XML parser's view of escapes):
//
//	xpath FILE EXPR
func cmdXPath(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: xpath FILE EXPR")
	}
	cmd := exec.Command(xmllintPath(ts), "--xpath", args[1], ts.MkAbs(args[0]))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		ts.Fatalf("xmllint --xpath %q %s: %v\n%s", args[1], args[0], err, stderr.String())
	}
	if len(out) == 0 || out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	ts.Stdout().Write(out)
}

// cmdSHA256 prints the SHA-256 of a file in hex, or with -set puts it in
// the script variable VAR:
//
//	sha256 [-set VAR] FILE
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	var setVar string
	if len(args) == 3 && args[0] == "-set" {
		setVar, args = args[1], args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sha256 [-set VAR] FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	ts.Check(err)
	sum := hex.EncodeToString(h.Sum(nil))
	if setVar != "" {
		ts.Setenv(setVar, sum)
		return
	}
	fmt.Fprintln(ts.Stdout(), sum)
}

// cmdLsdir prints the names in a folder, hidden ones included, sorted, one
// a line (so a script sees leftover temporary files too):
//
//	lsdir DIR
func cmdLsdir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lsdir DIR")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, e := range entries {
		fmt.Fprintln(ts.Stdout(), e.Name())
	}
}

// cmdPick puts DIR/NAME (with -name: NAME) into the script variable VAR,
// where NAME is the one entry of DIR that matches REGEXP; none or several
// fail:
//
//	pick [-name] VAR DIR REGEXP
func cmdPick(ts *testscript.TestScript, neg bool, args []string) {
	nameOnly := len(args) > 0 && args[0] == "-name"
	if nameOnly {
		args = args[1:]
	}
	if neg || len(args) != 3 {
		ts.Fatalf("usage: pick [-name] VAR DIR REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	entries, err := os.ReadDir(ts.MkAbs(args[1]))
	ts.Check(err)
	var names []string
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		ts.Fatalf("pick: %d entries of %s match %q, want 1: %v", len(names), args[1], args[2], names)
	}
	if nameOnly {
		ts.Setenv(args[0], names[0])
		return
	}
	ts.Setenv(args[0], filepath.Join(args[1], names[0]))
}

// cmdEditFile writes OUT as IN with every OLD replaced by NEW; IN without
// OLD fails, so a script cannot think it changed what it did not:
//
//	editfile IN OUT OLD NEW
func cmdEditFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: editfile IN OUT OLD NEW")
	}
	in := ts.ReadFile(args[0])
	if !strings.Contains(in, args[2]) {
		ts.Fatalf("editfile: %s does not contain %q", args[0], args[2])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(strings.ReplaceAll(in, args[2], args[3])), 0o644))
}

// cmdDropLines writes OUT as IN without the lines that match REGEXP, and
// fails when no line matches:
//
//	droplines IN OUT REGEXP
func cmdDropLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: droplines IN OUT REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	var out strings.Builder
	dropped := 0
	for _, line := range strings.SplitAfter(ts.ReadFile(args[0]), "\n") {
		if line != "" && re.MatchString(strings.TrimSuffix(line, "\n")) {
			dropped++
			continue
		}
		out.WriteString(line)
	}
	if dropped == 0 {
		ts.Fatalf("droplines: no line of %s matches %q", args[0], args[2])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(out.String()), 0o644))
}

// cmdCSVRead parses a CSV file with encoding/csv, strictly (RFC 4180
// quoting, every row as wide as the header), and prints each row as a
// JSON array, one a line, so that control characters show as escapes:
//
//	csvread FILE
func cmdCSVRead(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: csvread FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	r := csv.NewReader(f)
	rows, err := r.ReadAll()
	if err != nil {
		ts.Fatalf("csvread %s: %v", args[0], err)
	}
	enc := json.NewEncoder(ts.Stdout())
	enc.SetEscapeHTML(false)
	for _, row := range rows {
		ts.Check(enc.Encode(row))
	}
}

// cmdUnescape copies IN to OUT, replacing the escapes of unescapeText by
// the characters they stand for, so that a script can hold a file with
// control characters in readable form:
//
//	unescape IN OUT
func cmdUnescape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: unescape IN OUT")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(unescapeText(ts, ts.ReadFile(args[0]))), 0o644))
}

// unescapeText is in with the escapes \t, \n, \r, \xHH, \uHHHH and \\
// replaced by the characters they stand for.
func unescapeText(ts *testscript.TestScript, in string) string {
	var out strings.Builder
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' || i+1 == len(in) {
			out.WriteByte(in[i])
			continue
		}
		i++
		switch c := in[i]; c {
		case 't':
			out.WriteByte('\t')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case '\\':
			out.WriteByte('\\')
		case 'x', 'u':
			width := 2
			if c == 'u' {
				width = 4
			}
			if i+width >= len(in) {
				ts.Fatalf("unescape: short \\%c escape", c)
			}
			v, err := strconv.ParseUint(in[i+1:i+1+width], 16, 32)
			if err != nil {
				ts.Fatalf("unescape: bad \\%c escape %q", c, in[i+1:i+1+width])
			}
			if c == 'x' {
				out.WriteByte(byte(v))
			} else {
				out.WriteRune(rune(v))
			}
			i += width
		default:
			ts.Fatalf("unescape: unknown escape \\%c", c)
		}
	}
	return out.String()
}

// cmdSeqs prints the sequence numbers of the export files in a folder,
// in order, one a line, and fails when a name is not an export file name
// (a leftover temporary file, say) or a number repeats:
//
//	seqs DIR
func cmdSeqs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: seqs DIR")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var seqs []int
	seen := map[int]string{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".done")
		m := exportFileName.FindStringSubmatch(name)
		if m == nil {
			ts.Fatalf("seqs: %s in %s is not an export file or marker", e.Name(), args[0])
		}
		if name != e.Name() {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		if other, ok := seen[n]; ok {
			ts.Fatalf("seqs: %s and %s have the same sequence number", other, e.Name())
		}
		seen[n] = e.Name()
		seqs = append(seqs, n)
	}
	sort.Ints(seqs)
	for _, n := range seqs {
		fmt.Fprintln(ts.Stdout(), n)
	}
}
