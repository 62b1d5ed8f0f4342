package partner

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/imports"
)

// Load modes.
const (
	ModeDelta = "delta" // add and change the mappings of the file
	ModeFull  = "full"  // the file is the partner's whole listing
)

// xrefColumns are the columns of a cross reference file; the first three
// are required.
var xrefColumns = []string{"item", "sku", "external_code", "serial", "barcode", "tolerance_days"}

// ErrFile means the file as a whole cannot be loaded (unreadable, no
// header, a required column missing); nothing was applied.
var ErrFile = errors.New("file rejected")

// ErrNotFound means xref delete found no such mapping.
var ErrNotFound = errors.New("no such mapping")

// Mapping is one cross reference row.
type Mapping struct {
	Item          string `json:"item"`
	SKU           string `json:"sku"`
	ExternalCode  string `json:"external_code"`
	Serial        string `json:"serial"`
	Barcode       string `json:"barcode"`
	ToleranceDays *int64 `json:"tolerance_days"`
	UpdatedAt     string `json:"updated_at,omitempty"`

	createdAt string
}

// LoadResult says what a load did.
type LoadResult struct {
	Partner     string   `json:"partner"`
	File        string   `json:"file"`
	Mode        string   `json:"mode"`
	Read        int64    `json:"read"`
	Added       int64    `json:"added"`
	Changed     int64    `json:"changed"`
	Deleted     int64    `json:"deleted"`
	Unchanged   int64    `json:"unchanged"`
	Rejected    int64    `json:"rejected"`
	RejectsFile string   `json:"rejects_file,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

type xrefRow struct {
	line int
	raw  []string // the record as read, for the rejects file
	m    Mapping
	// codeField is the name of the partner's code in the file:
	// external_code (CSV) or channelSkuCode (JSON listing).
	codeField string
	reason    []string
}

func (r *xrefRow) reject(format string, args ...any) {
	r.reason = append(r.reason, fmt.Sprintf(format, args...))
}

type skuKey struct{ item, sku string }

// LoadOptions tunes Load.
type LoadOptions struct {
	// Mode is ModeDelta (the default when empty) or ModeFull.
	Mode string
	// FormulaGuard quotes the cells of the rejects file that a spreadsheet
	// would run as formulas (csv.formula_guard, format.SpreadsheetSafe).
	FormulaGuard bool
	// MaxFieldLength caps the partner's codes (load.max_field_length;
	// 0: DefaultMaxField): they go into the partner's JSON exports, which
	// have no narrower limit.
	MaxFieldLength int
}

// Load reads a partner's listing and applies its good rows to the
// partner's mappings in one transaction; mode full also removes the
// partner's mappings of SKUs that are not in the file. The file is either
// a CSV file (columns item, sku, external_code and optionally serial,
// barcode, tolerance_days) or Increff's listing JSON
// {"skuListings":[{channelSkuCode, channelSerialNo, barcode,
// toleranceDays}]} keyed by barcode, our UPC; its first character tells
// which (readListing). Rows are rejected, with their line and field, for:
// an unknown or deleted item/SKU (or barcode), a missing code, a SKU given
// twice, a code given twice, or a code that another SKU of the partner
// keeps. Rejected rows go to path.rejects.csv. A mapping added or changed
// is stamped with the change sequence, so the SKU goes out in the
// partner's next inventory delta.
func Load(ctx context.Context, d *db.DB, partner, path string, o LoadOptions) (*LoadResult, error) {
	mode := o.Mode
	if mode == "" {
		mode = ModeDelta
	}
	res := &LoadResult{Partner: partner, File: path, Mode: mode}
	f, err := fsx.OpenText(path)
	if err != nil {
		return res, fmt.Errorf("%s: %w: %v", path, ErrFile, err)
	}
	defer f.Close()
	conn, err := d.Conn(ctx)
	if err != nil {
		return res, db.Classify(err)
	}
	defer conn.Close()
	br := bufio.NewReader(fsx.ContextReader(ctx, f))
	var header []string
	var rows []*xrefRow
	maxLen := o.MaxFieldLength
	if maxLen <= 0 {
		maxLen = DefaultMaxField
	}
	if isJSON(br) {
		header, rows, err = readListing(ctx, conn, br, res, maxLen)
	} else {
		header, rows, err = readCSV(br, res, maxLen)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}

	err = db.WithTx(ctx, conn, true, func() error {
		// The live SKUs and the partner's stored mappings are read in the
		// write transaction that applies what they decide: read before
		// it, two loads of the partner at once both found a mapping
		// missing and added it, and the second failed on the key.
		if err := lockXref(ctx, conn, partner); err != nil {
			return err
		}
		// The change counter before the SKUs, as a catalog load takes it
		// before it deletes one: the other way round, a load that had its
		// number and came to delete a SKU this load had locked waited for
		// this one, which waited for the counter (a deadlock, one of the
		// two ended by PostgreSQL, exit 75).
		if err := catalog.HoldChangeCounter(ctx, conn); err != nil {
			return err
		}
		if err := checkSKUs(ctx, conn, rows); err != nil {
			return err
		}
		stored, err := storedMappings(ctx, conn, partner)
		if err != nil {
			return err
		}
		checkDuplicates(rows)
		checkStored(rows, stored, mode)
		var good []*xrefRow
		for _, x := range rows {
			if len(x.reason) == 0 {
				good = append(good, x)
			} else {
				res.Rejected++
			}
		}
		return apply(ctx, conn, partner, mode, good, stored, res)
	})
	if err != nil {
		return res, fmt.Errorf("%s: apply: %w", path, db.Classify(err))
	}
	if err := writeRejects(path, header, rows, res, o.FormulaGuard); err != nil {
		return res, fmt.Errorf("%s: write rejects: %w", path, err)
	}
	return res, nil
}

// codeMax are the lengths of our codes in a cross reference, those of
// the item export (docs/schemas/items.xsd): the partner's own codes are
// held to maxLen.
var codeMax = map[string]int{"item": 20, "sku": 20, "barcode": 20}

// MaxToleranceDays is the most tolerance days a mapping takes: the
// Integer of Increff's listing page.
const MaxToleranceDays = math.MaxInt32

// warningsShown is how many warnings of one kind a load names; the rest
// are counted in one more.
const warningsShown = 20

// warnings names the first warningsShown of a kind of warning and counts
// the rest, so that a header of a million columns makes 21 warnings, not
// a million.
type warnings struct {
	res  *LoadResult
	n    int
	more string // the summary of the rest: "ignoring %d more unknown columns"
}

func (w *warnings) add(msg string) {
	w.n++
	if w.n <= warningsShown {
		w.res.Warnings = append(w.res.Warnings, msg)
	}
}

// done adds the summary of the warnings not named.
func (w *warnings) done() {
	if w.n > warningsShown {
		w.res.Warnings = append(w.res.Warnings, fmt.Sprintf(w.more, w.n-warningsShown))
	}
}

// readCSV reads a cross reference CSV file: its header and its rows.
// Every field is checked (format.CheckText) with the limit of the
// export it goes to: codeMax for our codes, maxLen for the partner's.
func readCSV(r io.Reader, res *LoadResult, maxLen int) ([]string, []*xrefRow, error) {
	rr, err := format.NewCSVReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFile, err)
	}
	header := rr.Header()
	pos := map[string]int{}
	unknown := &warnings{res: res, more: "ignoring %d more unknown columns"}
	for i, h := range header {
		known := false
		for _, c := range xrefColumns {
			known = known || c == h
		}
		if !known {
			unknown.add(fmt.Sprintf("ignoring unknown column %q", format.Clip([]string{h})[0]))
			continue
		}
		pos[h] = i
	}
	unknown.done()
	var missing []string
	for _, c := range xrefColumns[:3] {
		if _, ok := pos[c]; !ok {
			missing = append(missing, strconv.Quote(c))
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%w: line 1: missing required column %s", ErrFile, strings.Join(missing, ", "))
	}
	field := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	var rows []*xrefRow
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return header, rows, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrFile, err)
		}
		res.Read++
		x := &xrefRow{line: r.Line, raw: r.Fields, codeField: "external_code"}
		rows = append(rows, x)
		if r.Err != nil {
			x.reject("%v", r.Err)
			continue
		}
		for _, c := range xrefColumns {
			n := codeMax[c]
			if n == 0 {
				n = maxLen
			}
			if err := format.CheckText(field(r.Fields, c), n); err != nil {
				x.reject("field %s %v", c, err)
			}
		}
		if len(x.reason) > 0 {
			continue
		}
		x.m = Mapping{Item: field(r.Fields, "item"), SKU: field(r.Fields, "sku"), ExternalCode: field(r.Fields, "external_code"),
			Serial: field(r.Fields, "serial"), Barcode: field(r.Fields, "barcode")}
		if x.m.Item == "" {
			x.reject("field item: required")
		}
		if x.m.ExternalCode == "" {
			x.reject("field external_code: required")
		}
		if t := field(r.Fields, "tolerance_days"); t != "" {
			if n, err := toleranceDays(t); err != nil {
				x.reject("field tolerance_days %q: %v", t, err)
			} else {
				x.m.ToleranceDays = &n
			}
		}
	}
}

// toleranceDays reads tolerance days: a whole number from 0 to
// MaxToleranceDays.
func toleranceDays(s string) (int64, error) {
	n, err := format.ParseInt(s)
	switch {
	case errors.Is(err, format.ErrRange), err == nil && n > MaxToleranceDays:
		return 0, fmt.Errorf("%w: at most %d days", format.ErrRange, MaxToleranceDays)
	case err != nil || n < 0:
		return 0, errors.New("not a whole number of days (0 or more)")
	}
	return n, nil
}

// listingHeader are the columns of a JSON listing's row in the rejects
// file, after line and error: its place in skuListings and its fields.
var listingHeader = []string{"listing", "channelSkuCode", "channelSerialNo", "barcode", "toleranceDays"}

// listingPage names the partner's page of the listing shape, for messages.
const listingPage = `Increff "Listing Creation For EFS"`

// isJSON says whether a listing file is JSON: its first character, after
// a BOM and blanks, opens an object or an array, which no CSV header
// does (it starts with a column name). The content decides, not the
// file's name.
func isJSON(br *bufio.Reader) bool {
	b, _ := br.Peek(4096)
	b = bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// listingJSON is one of skuListings. Its fields are read raw, to refuse
// a value of another type than the page documents (a barcode as a number
// would have lost its leading zeros).
type listingJSON struct {
	ChannelSkuCode  json.RawMessage `json:"channelSkuCode"`
	ChannelSerialNo json.RawMessage `json:"channelSerialNo"`
	Barcode         json.RawMessage `json:"barcode"`
	ToleranceDays   json.RawMessage `json:"toleranceDays"`
}

// listingKept are the fields of a listing that posbridge keeps.
var listingKept = Kept(listingJSON{})

// readListing reads Increff's listing JSON, {"skuListings":[…]} (the body
// of "Listing Creation For EFS"; "channelName" of the per-channel variant
// is allowed and not used: the partner is named on the command line).
// Each listing is a row, named by the line it starts on. Invalid JSON,
// another wrapper, or a key given twice in the wrapper fails the file.
func readListing(ctx context.Context, conn *sql.Conn, r io.Reader, res *LoadResult, maxLen int) ([]string, []*xrefRow, error) {
	js := imports.NewJSONStream(r)
	dec := js.Dec
	bad := func(err error) error { return fmt.Errorf("%w: %v", ErrFile, js.Invalid(err)) }
	wrapper := func(what string) error {
		return fmt.Errorf(`%w: %s: want the listing object {"skuListings":[…]} (%s)`, ErrFile, what, listingPage)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, bad(err)
	}
	if tok != json.Delim('{') {
		return nil, nil, wrapper("line 1: a JSON array")
	}
	keys := map[string]string{}
	unknown := &warnings{res: res, more: "ignoring %d more unknown keys"}
	found := false
	var rows []*xrefRow
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad(err)
		}
		key, _ := tok.(string)
		folded := strings.ToLower(key)
		if prev, ok := keys[folded]; ok {
			return nil, nil, fmt.Errorf("%w: keys %q and %q of the listing object are one key given twice: ambiguous, give it once", ErrFile, prev, key)
		}
		keys[folded] = key
		if folded != "skulistings" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, bad(err)
			}
			if folded != "channelname" {
				unknown.add(fmt.Sprintf("ignoring unknown key %q", format.Clip([]string{key})[0]))
			}
			continue
		}
		found = true
		if tok, err = dec.Token(); err != nil {
			return nil, nil, bad(err)
		}
		if tok != json.Delim('[') {
			return nil, nil, wrapper(fmt.Sprintf("%q is not an array", key))
		}
		for dec.More() {
			raw, line, err := js.Value()
			if err != nil {
				return nil, nil, bad(err)
			}
			res.Read++
			x, err := listingRow(ctx, conn, len(rows)+1, line, raw, maxLen)
			if err != nil {
				return nil, nil, err
			}
			rows = append(rows, x)
		}
		if _, err := dec.Token(); err != nil {
			return nil, nil, bad(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	if err := js.End(); errors.Is(err, imports.ErrMore) {
		return nil, nil, bad(errors.New("more after the end of the listing object"))
	} else if err != nil {
		return nil, nil, bad(err)
	}
	if !found {
		return nil, nil, wrapper(`no "skuListings"`)
	}
	unknown.done()
	return listingHeader, rows, nil
}

// listingRow checks the n-th listing, which starts on line, and finds our
// SKU by its barcode (the SKU's UPC).
func listingRow(ctx context.Context, conn *sql.Conn, n, line int, raw json.RawMessage, maxLen int) (*xrefRow, error) {
	x := &xrefRow{line: line, codeField: "channelSkuCode", raw: []string{strconv.Itoa(n), "", "", "", ""}}
	var l listingJSON
	if raw[0] != '{' {
		x.reject("skuListings[%d]: not a listing object", n)
		return x, nil
	}
	err := CheckFields(raw, maxLen, func(key string) int {
		if n := codeMax[key]; n > 0 {
			return n
		}
		return listingKept(key)
	})
	var fe *FieldError
	if errors.As(err, &fe) {
		x.reject("field %v", fe)
	} else if err != nil {
		x.reject("%v", err)
	}
	if err == nil {
		err = imports.Decode(raw, &l)
		if err != nil {
			x.reject("%v", err)
		}
	} else {
		json.Unmarshal(raw, &l) // for the rejects file
	}
	for i, v := range []json.RawMessage{l.ChannelSkuCode, l.ChannelSerialNo, l.Barcode, l.ToleranceDays} {
		x.raw[i+1] = asText(v)
	}
	if err != nil {
		return x, nil
	}
	str := func(field string, v json.RawMessage) string {
		if len(v) == 0 || string(v) == "null" {
			return ""
		}
		if v[0] != '"' {
			x.reject("field %s %s: not a string (the page documents String)", field, v)
			return ""
		}
		return strings.TrimSpace(asText(v))
	}
	x.m.ExternalCode = str("channelSkuCode", l.ChannelSkuCode)
	x.m.Serial = str("channelSerialNo", l.ChannelSerialNo)
	x.m.Barcode = str("barcode", l.Barcode)
	switch t := l.ToleranceDays; {
	case len(t) == 0 || string(t) == "null":
	case t[0] == '"':
		x.reject("field toleranceDays %s: a string, want a whole number of days (Integer) or null", t)
	default:
		if d, err := toleranceDays(string(t)); err != nil {
			x.reject("field toleranceDays %s: %v", t, err)
		} else {
			x.m.ToleranceDays = &d
		}
	}
	if x.m.ExternalCode == "" && len(x.reason) == 0 {
		x.reject("field channelSkuCode: required")
	}
	if x.m.Barcode == "" {
		if len(x.reason) == 0 {
			x.reject("field barcode: required (our SKU's UPC)")
		}
		return x, nil
	}
	item, sku, err := Resolve(ctx, conn, Profile{SKUCode: SKUCodeUPC}, x.m.Barcode)
	var ce *CodeError
	switch {
	case errors.As(err, &ce) && ce.Ambiguous:
		x.reject("field barcode %q: more than one live SKU has that UPC", x.m.Barcode)
	case errors.As(err, &ce):
		x.reject("field barcode %q: no live SKU has that UPC", x.m.Barcode)
	case err != nil:
		return nil, err
	default:
		x.m.Item, x.m.SKU = item, sku
	}
	return x, nil
}

// asText is a JSON value as the rejects file shows it: a string's text,
// anything else as written, null and a missing key empty.
func asText(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// checkSKUs rejects the rows whose SKU is not live, in the load's write
// transaction on conn. On PostgreSQL it locks the live ones against
// their deletion until the load commits: a catalog load that deletes a
// SKU outright (added and deleted before it was ever sent) waits for it,
// or this one waits for the catalog load and finds the SKU gone. Read
// unlocked, the mapping of a SKU deleted meanwhile failed on its foreign
// key (exit 1).
func checkSKUs(ctx context.Context, conn *sql.Conn, rows []*xrefRow) error {
	st, err := conn.PrepareContext(ctx, `SELECT 1 FROM skus WHERE item = ? AND sku = ? AND deleted_at IS NULL`+db.RowLock(conn, "FOR KEY SHARE"))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, x := range rows {
		if len(x.reason) > 0 || x.m.Item == "" {
			continue
		}
		err := st.QueryRowContext(ctx, x.m.Item, x.m.SKU).Scan(new(int))
		if errors.Is(err, sql.ErrNoRows) {
			x.reject("item/SKU %q/%q: unknown (not loaded, or deleted)", x.m.Item, x.m.SKU)
		} else if err != nil {
			return err
		}
	}
	return nil
}

func storedMappings(ctx context.Context, conn *sql.Conn, partner string) (map[skuKey]Mapping, error) {
	out := map[skuKey]Mapping{}
	err := list(ctx, conn, partner, func(m Mapping) error {
		out[skuKey{m.Item, m.SKU}] = m
		return nil
	})
	return out, err
}

// checkDuplicates rejects, after the first row of a SKU or of an external
// code, every later row that repeats it, naming the first.
func checkDuplicates(rows []*xrefRow) {
	bySKU, byCode := map[skuKey]int{}, map[string]*xrefRow{}
	for _, x := range rows {
		if len(x.reason) > 0 {
			continue
		}
		k := skuKey{x.m.Item, x.m.SKU}
		if first, ok := bySKU[k]; ok {
			what := fmt.Sprintf("item/SKU %q/%q", k.item, k.sku)
			if x.codeField == "channelSkuCode" {
				what = fmt.Sprintf("field barcode %q: %s", x.m.Barcode, what)
			}
			x.reject("%s: given a code on line %d already (one code per SKU)", what, first)
			continue
		}
		if first, ok := byCode[x.m.ExternalCode]; ok {
			x.reject("field %s %q: used for item/SKU %q/%q on line %d already", x.codeField, x.m.ExternalCode, first.m.Item, first.m.SKU, first.line)
			continue
		}
		bySKU[k] = x.line
		byCode[x.m.ExternalCode] = x
	}
}

// checkStored rejects rows whose code another SKU of the partner keeps
// after the load: a stored mapping of a SKU the load does not remap (its
// row is missing or rejected; a full load drops the SKUs it lacks).
// Rejecting a row can make its SKU keep a code, so this repeats until
// nothing changes.
func checkStored(rows []*xrefRow, stored map[skuKey]Mapping, mode string) {
	for {
		remapped := map[skuKey]bool{}
		for _, x := range rows {
			if len(x.reason) == 0 {
				remapped[skuKey{x.m.Item, x.m.SKU}] = true
			}
		}
		kept := map[string]skuKey{}
		for k, m := range stored {
			if remapped[k] || (mode == ModeFull && !inFile(rows, k)) {
				continue
			}
			kept[m.ExternalCode] = k
		}
		changed := false
		for _, x := range rows {
			if len(x.reason) > 0 {
				continue
			}
			if k, ok := kept[x.m.ExternalCode]; ok && k != (skuKey{x.m.Item, x.m.SKU}) {
				x.reject("field %s %q: already the code of item/SKU %q/%q for this partner", x.codeField, x.m.ExternalCode, k.item, k.sku)
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// inFile says whether a row of the file (good or rejected) names SKU k: a
// full load keeps the stored mapping of a SKU whose row was rejected.
func inFile(rows []*xrefRow, k skuKey) bool {
	for _, x := range rows {
		if x.m.Item == k.item && x.m.SKU == k.sku {
			return true
		}
	}
	return false
}

func apply(ctx context.Context, conn *sql.Conn, partner, mode string, good []*xrefRow, stored map[skuKey]Mapping, res *LoadResult) error {
	inGood := map[skuKey]bool{}
	for _, x := range good {
		inGood[skuKey{x.m.Item, x.m.SKU}] = true
	}
	var seq int64
	changeSeq := func() (int64, error) {
		var err error
		if seq == 0 {
			seq, err = catalog.NextChangeSeq(ctx, conn)
		}
		return seq, err
	}
	// del removes a mapping; its code goes on in xref_dropped until the
	// partner is sent a zero under it (dropped), unless the new code is
	// the same.
	del := func(k skuKey, newCode string) error {
		if _, err := conn.ExecContext(ctx, `DELETE FROM sku_xref WHERE partner = ? AND item = ? AND sku = ?`, partner, k.item, k.sku); err != nil {
			return err
		}
		if stored[k].ExternalCode == newCode {
			return nil
		}
		seq, err := changeSeq()
		if err != nil {
			return err
		}
		return dropped(ctx, conn, partner, stored[k], seq)
	}
	if mode == ModeFull {
		for k := range stored {
			if !inGood[k] {
				if err := del(k, ""); err != nil {
					return err
				}
				res.Deleted++
			}
		}
	}
	// Changed mappings are removed before any is written, so a code that
	// passes from one SKU to another in the file is free when it is set
	// (UNIQUE (partner, external_code)).
	var writes []Mapping
	for _, x := range good {
		k := skuKey{x.m.Item, x.m.SKU}
		old, ok := stored[k]
		switch {
		case !ok:
			res.Added++
		case old.ExternalCode == x.m.ExternalCode && old.Serial == x.m.Serial && old.Barcode == x.m.Barcode && sameDays(old.ToleranceDays, x.m.ToleranceDays):
			res.Unchanged++
			continue
		default:
			res.Changed++
			if err := del(k, x.m.ExternalCode); err != nil {
				return err
			}
			x.m.createdAt = old.createdAt
		}
		writes = append(writes, x.m)
	}
	if len(writes) == 0 {
		return nil
	}
	seq, err := changeSeq()
	if err != nil {
		return err
	}
	st, err := conn.PrepareContext(ctx, `INSERT INTO sku_xref(partner, item, sku, external_code, serial, barcode, tolerance_days, change_seq, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	now := db.Now()
	for _, m := range writes {
		created := m.createdAt
		if created == "" {
			created = now
		}
		if _, err := st.ExecContext(ctx, partner, m.Item, m.SKU, m.ExternalCode, m.Serial, m.Barcode, nullDays(m.ToleranceDays), seq, created, now); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `DELETE FROM xref_dropped WHERE partner = ? AND external_code = ?`, partner, m.ExternalCode); err != nil {
			return err
		}
	}
	return nil
}

// lockXref makes the changes of partner's cross reference in conn's write
// transaction wait for each other on PostgreSQL, where writers run at
// once, as SQLite's write transactions do: a load reads the mappings the
// other left, and a delete meets the mapping a load put in place of the
// one it read (it had gone for the replaced row, found it gone, and said
// there was no mapping).
func lockXref(ctx context.Context, conn *sql.Conn, partner string) error {
	return db.LockForTx(ctx, conn, "xref "+partner)
}

// dropped records that partner no longer has code m.ExternalCode (of
// m's SKU) as of change seq: the partner still sells the last figure it
// was sent under it, so its next inventory export sends a zero there
// (export.PartnerInventory).
func dropped(ctx context.Context, conn *sql.Conn, partner string, m Mapping, seq int64) error {
	_, err := conn.ExecContext(ctx, `INSERT INTO xref_dropped(partner, external_code, item, sku, change_seq, dropped_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(partner, external_code) DO UPDATE SET item = excluded.item, sku = excluded.sku, change_seq = excluded.change_seq,
  dropped_at = excluded.dropped_at`, partner, m.ExternalCode, m.Item, m.SKU, seq, db.Now())
	return err
}

func sameDays(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func nullDays(d *int64) any {
	if d == nil {
		return nil
	}
	return *d
}

// writeRejects writes path.rejects.csv (line, error, the row as read), or
// removes a stale one when nothing was rejected.
func writeRejects(path string, header []string, rows []*xrefRow, res *LoadResult, guard bool) error {
	out := path + ".rejects.csv"
	if res.Rejected == 0 {
		if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	err := fsx.WriteAtomic(out, 0o640, func(w io.Writer) error {
		cw := format.NewCSVWriter(w, guard)
		cw.Write(append([]string{"line", "error"}, header...))
		for _, x := range rows {
			if len(x.reason) == 0 {
				continue
			}
			cw.Write(append([]string{strconv.Itoa(x.line), strings.Join(x.reason, "; ")}, format.Clip(x.raw)...))
		}
		cw.Flush()
		return cw.Error()
	})
	if err == nil {
		res.RejectsFile = out
	}
	return err
}

// List streams the partner's mappings in item/SKU order.
func List(ctx context.Context, d *db.DB, partner string, fn func(Mapping) error) error {
	conn, err := d.Conn(ctx)
	if err != nil {
		return db.Classify(err)
	}
	defer conn.Close()
	return list(ctx, conn, partner, fn)
}

func list(ctx context.Context, conn *sql.Conn, partner string, fn func(Mapping) error) error {
	rows, err := conn.QueryContext(ctx, `SELECT item, sku, external_code, serial, barcode, tolerance_days, created_at, updated_at
FROM sku_xref WHERE partner = ? ORDER BY item, sku`, partner)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m Mapping
		var t sql.NullInt64
		if err := rows.Scan(&m.Item, &m.SKU, &m.ExternalCode, &m.Serial, &m.Barcode, &t, &m.createdAt, &m.UpdatedAt); err != nil {
			return err
		}
		if t.Valid {
			m.ToleranceDays = &t.Int64
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Unmapped is a live SKU without a code for a partner.
type Unmapped struct {
	Item        string `json:"item"`
	SKU         string `json:"sku"`
	Description string `json:"description"`
	UPC         string `json:"upc"`
}

// ListUnmapped streams the live SKUs that have no code for the partner, in
// item/SKU order.
func ListUnmapped(ctx context.Context, d *db.DB, partner string, fn func(Unmapped) error) error {
	rows, err := d.QueryContext(ctx, `SELECT k.item, k.sku, i.description || CASE WHEN k.sku_description <> '' THEN ' - ' || k.sku_description ELSE '' END, k.upc
FROM skus k JOIN items i ON i.item = k.item
WHERE k.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM sku_xref x WHERE x.partner = ? AND x.item = k.item AND x.sku = k.sku)
ORDER BY k.item, k.sku`, partner)
	if err != nil {
		return db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u Unmapped
		if err := rows.Scan(&u.Item, &u.SKU, &u.Description, &u.UPC); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Delete removes one mapping of the partner: by item and SKU, or by the
// external code when code is not empty. It returns the mapping removed,
// or ErrNotFound. The partner's next inventory export sends a zero under
// the code (dropped): the partner would go on selling the figure it was
// last sent there.
func Delete(ctx context.Context, d *db.DB, partner, item, sku, code string) (Mapping, error) {
	var m Mapping
	conn, err := d.Conn(ctx)
	if err != nil {
		return m, db.Classify(err)
	}
	defer conn.Close()
	err = db.WithTx(ctx, conn, true, func() error {
		if err := lockXref(ctx, conn, partner); err != nil {
			return err
		}
		q, args := `item = ? AND sku = ?`, []any{partner, item, sku}
		if code != "" {
			q, args = `external_code = ?`, []any{partner, code}
		}
		err := conn.QueryRowContext(ctx, `DELETE FROM sku_xref WHERE partner = ? AND `+q+` RETURNING item, sku, external_code`, args...).
			Scan(&m.Item, &m.SKU, &m.ExternalCode)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		seq, err := catalog.NextChangeSeq(ctx, conn)
		if err != nil {
			return err
		}
		return dropped(ctx, conn, partner, m, seq)
	})
	if errors.Is(err, ErrNotFound) {
		return m, err
	}
	return m, db.Classify(err)
}
