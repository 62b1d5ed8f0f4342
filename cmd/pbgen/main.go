package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
)

// maxRows keeps rows*rows inside 64 bits and UPCs and retail references unique.
const maxRows = 1_000_000_000

// transactionColumns are the columns of the inventory transaction upload
// that pbgen fills, a subset of what the import reads (docs/imports.md
// section 2; TestTransactionColumnsAreTheImports holds them to
// imports.TransactionColumns).
var transactionColumns = []string{"transaction_code", "item", "sku", "warehouse", "quantity", "to_warehouse", "reason",
	"reference", "transaction_date", "user"}

// header is the CSV header of kind, nil for a kind pbgen does not write.
// The load kinds take their columns from catalog, which defines what
// posbridge load reads, so a file pbgen writes always has the columns of
// the load; the generators fill them by position (TestHeaderAndRowCount
// holds the order).
func header(kind string) []string {
	if kind == "transactions" {
		return transactionColumns
	}
	names, _, err := catalog.Columns(kind)
	if err != nil {
		return nil
	}
	return names
}

const kindList = "warehouses, items, vendors, customers, invoices, inventory, transactions"

// Each generator draws from its own PCG stream, so that the item stream is
// the same whether items are written or only referenced by inventory and
// invoices.
const (
	streamItems uint64 = 0x1f3a_0001 + iota
	streamVendors
	streamCustomers
	streamInvoices
	streamInventory
	streamTransactions
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	kind      string
	rows      int64
	seed      uint64
	changePct float64
	itemRows  int64
	out       string
	xml       bool
}

// errReported is a flag error that the flag package has already printed.
var errReported = errors.New("bad flags")

// run is main without the exit, so tests can call it with buffers.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errReported):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "pbgen: %v\nRun 'pbgen -h' for usage.\n", err)
		return 2
	}
	if opts.out == "" {
		if err := generate(stdout, opts); err != nil {
			fmt.Fprintf(stderr, "pbgen: write: %v\n", err)
			return 1
		}
		return 0
	}
	if err := generateFile(opts); err != nil {
		fmt.Fprintf(stderr, "pbgen: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var seed int64
	fs := flag.NewFlagSet("pbgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kind, "kind", "", "`KIND` of load file: "+kindList)
	fs.Int64Var(&o.rows, "rows", 1000, "number `N` of data rows")
	fs.Int64Var(&seed, "seed", 1, "random seed `S`; the same flags give the same bytes")
	fs.Float64Var(&o.changePct, "change-pct", 0, "percent `P` of data rows (0-100, two decimals) that get one non-key field changed")
	fs.Int64Var(&o.itemRows, "item-rows", 0, "inventory, invoices: reference the items that pbgen -kind items -rows `M` writes (default -rows)")
	fs.StringVar(&o.out, "o", "", "output `file` (default stdout)")
	fs.BoolVar(&o.xml, "xml", false, "transactions: write the OMS inventory transaction upload XML instead of CSV")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pbgen -kind KIND -rows N [-seed S] [-change-pct P] [-item-rows M] [-o FILE]\n\n")
		fmt.Fprintf(stderr, "Writes a deterministic CSV load file for posbridge load KIND.\nKIND: %s\n\n", kindList)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errReported
	}
	o.seed = uint64(seed)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.kind == "":
		return o, fmt.Errorf("-kind is required (%s)", kindList)
	case header(o.kind) == nil:
		return o, fmt.Errorf("unknown -kind %q (want one of %s)", o.kind, kindList)
	case o.rows < 0 || o.rows > maxRows:
		return o, fmt.Errorf("-rows %d out of range 0..%d", o.rows, maxRows)
	case math.IsNaN(o.changePct) || o.changePct < 0 || o.changePct > 100:
		return o, fmt.Errorf("-change-pct %v out of range 0..100", o.changePct)
	case set["item-rows"] && o.kind != "inventory" && o.kind != "invoices" && o.kind != "transactions":
		return o, fmt.Errorf("-item-rows applies only to -kind inventory, invoices and transactions")
	case o.xml && o.kind != "transactions":
		return o, fmt.Errorf("-xml applies only to -kind transactions")
	case set["item-rows"] && (o.itemRows < 1 || o.itemRows > maxRows):
		return o, fmt.Errorf("-item-rows %d out of range 1..%d", o.itemRows, maxRows)
	}
	if !set["item-rows"] {
		o.itemRows = max(o.rows, 1)
	}
	return o, nil
}

// generateFile writes to o.out and removes it again on failure, so a broken
// run does not leave a file that looks complete.
func generateFile(o options) error {
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	err = generate(f, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(o.out)
		return fmt.Errorf("write %q: %w", o.out, err)
	}
	return nil
}

// generator fills rec with the next data row. With change set it alters the
// one field documented for its kind, without drawing random numbers, so the
// rest of the file stays the same.
type generator interface {
	row(rec []string, change bool)
}

func newGenerator(o options) generator {
	switch o.kind {
	case "warehouses":
		return &warehouseGen{}
	case "items":
		return &itemsGen{items: newItemGen(o.seed, o.rows)}
	case "vendors":
		return &vendorGen{r: newRand(o.seed, streamVendors)}
	case "customers":
		return newCustomerGen(o.seed)
	case "invoices":
		return newInvoiceGen(o)
	case "inventory":
		return newInventoryGen(o)
	case "transactions":
		return newTxnGen(o)
	}
	panic("unknown kind " + o.kind)
}

// generate writes the header and o.rows data rows. With -change-pct P, data
// row i (from 0) is changed when floor((i+1)*P/100) > floor(i*P/100): exactly
// floor(rows*P/100) rows, evenly spaced.
func generate(w io.Writer, o options) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if o.xml {
		return generateXML(bw, o)
	}
	cw := csv.NewWriter(bw)
	hdr := header(o.kind)
	if err := cw.Write(hdr); err != nil {
		return err
	}
	g := newGenerator(o)
	rec := make([]string, len(hdr))
	bp := int64(math.Round(o.changePct * 100)) // basis points
	for i := range o.rows {
		g.row(rec, (i+1)*bp/10000 > i*bp/10000)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// mix is SplitMix64's finaliser: a stateless hash for values that must be
// computable out of order (the customer of an earlier invoice).
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// permuter is a keyed one-to-one map of 0..m-1 onto itself: a small Feistel
// network over 0..h*h-1, walking the cycle until the value falls below m. It
// makes row numbers look random while keeping them unique.
type permuter struct{ h, m, key uint64 }

func newPermuter(h, m, seed, salt uint64) permuter {
	return permuter{h: h, m: m, key: mix(seed ^ salt)}
}

func (p permuter) apply(i uint64) uint64 {
	x := i % p.m
	for {
		l, r := x/p.h, x%p.h
		for round := range uint64(4) {
			l, r = r, (l+mix(r^p.key+round))%p.h
		}
		x = l*p.h + r
		if x < p.m {
			return x
		}
	}
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// money formats cents as a decimal with two places.
func money(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	b := make([]byte, 0, 16)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, cents/100, 10)
	c := cents % 100
	b = append(b, '.', byte('0'+c/10), byte('0'+c%10))
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ---- shared reference data ----

type color struct{ code, name string }

var colors = []color{
	{"BLK", "Black"}, {"WHT", "White"}, {"NVY", "Navy"}, {"RED", "Red"}, {"BLU", "Blue"},
	{"GRN", "Forest Green"}, {"OLV", "Olive"}, {"GRY", "Heather Grey"}, {"CHR", "Charcoal"},
	{"TAN", "Tan"}, {"KHK", "Khaki"}, {"ORG", "Orange"}, {"YEL", "Yellow"}, {"PNK", "Pink"},
	{"PRP", "Purple"}, {"BRN", "Brown"}, {"TEA", "Teal"}, {"BRG", "Burgundy"},
}

type category struct {
	class    string
	weight   int // percent of items
	nouns    []string
	sizes    []string // empty: colour-only SKUs
	lo, hi   int64    // price range in whole units
	noSKUPct int      // percent of the category's items without SKUs
	width    bool
}

var (
	apparelSizes = []string{"XS", "S", "M", "L", "XL", "XXL"}
	categories   = []category{
		{class: "TOP", weight: 25, sizes: apparelSizes, lo: 19, hi: 89,
			nouns: []string{"T-Shirt", "Henley", "Crew Sweater", "Flannel Shirt", "Polo", "Hoodie", "Base Layer Top", "Quarter-Zip"}},
		{class: "BOT", weight: 15, sizes: []string{"28", "30", "32", "34", "36", "38"}, lo: 39, hi: 99,
			nouns: []string{"Hiking Pant", "Trail Short", "Jogger", "Chino", "Cargo Pant", "Legging"}},
		{class: "FTW", weight: 15, sizes: []string{"7", "8", "9", "10", "11", "12", "13"}, lo: 79, hi: 199, width: true,
			nouns: []string{"Trail Runner", "Hiking Boot", "Camp Sandal", "Approach Shoe", "Winter Boot", "Road Runner"}},
		{class: "OUT", weight: 15, sizes: apparelSizes, lo: 99, hi: 399,
			nouns: []string{"Rain Jacket", "Down Parka", "Softshell Jacket", "Fleece Vest", "Insulated Jacket", "Windbreaker"}},
		{class: "ACC", weight: 15, sizes: []string{"S", "M", "L", "XL"}, lo: 9, hi: 39,
			nouns: []string{"Beanie", "Wool Sock", "Ball Cap", "Neck Gaiter", "Glove", "Sun Hat"}},
		{class: "EQP", weight: 15, lo: 14, hi: 149, noSKUPct: 67,
			nouns: []string{"Daypack 22L", "Trekking Pole", "Headlamp", "Water Bottle", "Camp Mug", "Dry Bag", "Sleeping Pad", "Camp Chair"}},
	}
	adjectives = []string{"Alpine", "Summit", "Ridge", "Canyon", "Coastal", "Glacier", "Trailhead", "Boulder",
		"Cascade", "Sierra", "Tundra", "Meadow", "Harbor", "Redwood", "Basecamp", "Northwind", "Timberline",
		"Desert", "Granite", "Juniper"}
	materials = []string{"Merino", "Organic Cotton", "Recycled Nylon", "Ripstop", "Fleece-Lined", "Waterproof",
		"Lightweight", "Insulated", "Stretch", "Packable", "Heavyweight", "Hemp"}
	editions = []string{"Storm", "Trail", "Summit", "Night Sky", "Wildflower", "Heritage"}
)

type place struct{ city, state, zip, area, country string }

var places = []place{
	{"Boulder", "CO", "803", "303", "US"}, {"Denver", "CO", "802", "720", "US"}, {"Portland", "OR", "972", "503", "US"},
	{"Seattle", "WA", "981", "206", "US"}, {"Bend", "OR", "977", "541", "US"}, {"Salt Lake City", "UT", "841", "801", "US"},
	{"Missoula", "MT", "598", "406", "US"}, {"Bozeman", "MT", "597", "406", "US"}, {"Flagstaff", "AZ", "860", "928", "US"},
	{"Asheville", "NC", "288", "828", "US"}, {"Burlington", "VT", "054", "802", "US"}, {"Madison", "WI", "537", "608", "US"},
	{"Minneapolis", "MN", "554", "612", "US"}, {"Austin", "TX", "787", "512", "US"}, {"Chicago", "IL", "606", "312", "US"},
	{"Brooklyn", "NY", "112", "718", "US"}, {"Boston", "MA", "021", "617", "US"}, {"San Diego", "CA", "921", "619", "US"},
	{"Oakland", "CA", "946", "510", "US"}, {"Reno", "NV", "895", "775", "US"}, {"Anchorage", "AK", "995", "907", "US"},
	{"Duluth", "MN", "558", "218", "US"}, {"Chattanooga", "TN", "374", "423", "US"}, {"Ann Arbor", "MI", "481", "734", "US"},
	{"Vancouver", "BC", "V6B", "604", "CA"}, {"Calgary", "AB", "T2P", "403", "CA"}, {"Toronto", "ON", "M5V", "416", "CA"},
}

var (
	streets     = []string{"Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "River", "Sunset", "Ridge", "Aspen", "Willow", "Spruce", "Canyon", "Mill"}
	streetTypes = []string{"St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Way", "Ct"}
	firstNames  = []string{"Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Mia", "Lucas",
		"Harper", "Logan", "Ella", "James", "Grace", "Benjamin", "Chloé", "José", "Zoë", "Søren", "Björn", "Anaïs",
		"Renée", "Ángel", "Łucja", "Priya", "Wei", "Aiko", "Mateo", "Fatima", "Omar", "Ingrid", "Nora", "Caleb",
		"Hannah", "Diego", "Maya", "Samuel", "Lena", "Tomás"}
	lastNames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
		"Taylor", "Thomas", "Moore", "Martin", "Lee", "Clark", "Müller", "Ørsted", "García", "Peña", "Nguyễn",
		"Dubois", "Kowalski", "Fernández", "O'Brien", "Schröder", "Åberg", "Novák", "Patel", "Kim", "Yamamoto",
		"Okafor", "Rossi", "Larsen", "Hughes", "Bennett", "Ramírez", "Fischer", "Walsh", "Cohen", "Reyes"}
	companyWords = []string{"Summit", "Blue Ridge", "Peak & Pine", "Trail's End", "Cedar Creek", "High Country",
		"Riverbend", "Alpenglow", "Switchback", "Lakeside", "Granite State", "Big Sky"}
	companyKinds = []string{"Outfitters", "Trading Co.", "Mountain Shop", "Supply", "Sports", "Adventure Co."}
	companySufx  = []string{"", " LLC", " Inc.", ", Inc.", " Ltd."}
	vendorWords  = []string{"Northwind", "Cascade", "Evergreen", "Tamarack", "Bluebird", "Ironwood", "Kestrel",
		"Silverline", "Ptarmigan", "Osprey Bay", "Red Rock", "Lodgepole"}
	vendorKinds = []string{"Apparel Co.", "Outdoor Supply", "Textiles", "Footwear", "Gear Works", "Knitting Mills", "Manufacturing"}
	unitTypes   = []string{"Suite ", "Unit ", "Apt ", "Building ", "Floor "}

	asciiFold = strings.NewReplacer("é", "e", "ë", "e", "ø", "o", "Ø", "O", "ö", "o", "ü", "u", "ñ", "n", "á", "a",
		"Á", "A", "í", "i", "ó", "o", "ú", "u", "ï", "i", "å", "a", "Å", "A", "ä", "a", "Ł", "L", "ł", "l", "ễ", "e",
		"á", "a", "'", "", " ", "", "&", "", ".", "", ",", "")
	firstASCII = foldAll(firstNames)
	lastASCII  = foldAll(lastNames)
)

func foldAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(asciiFold.Replace(n))
	}
	return out
}

// address draws a street address; address2 is empty for most.
func address(r *rand.Rand) (addr1, addr2 string, p place, postal string) {
	addr1 = itoa(int64(10+r.IntN(9990))) + " " + pick(r, streets) + " " + pick(r, streetTypes)
	if r.IntN(100) < 20 {
		addr2 = pick(r, unitTypes) + itoa(int64(1+r.IntN(400)))
	}
	p = pick(r, places)
	if p.country == "CA" {
		b := []byte{p.zip[0], p.zip[1], p.zip[2], ' ', byte('0' + r.IntN(10)), byte('A' + r.IntN(26)), byte('0' + r.IntN(10))}
		postal = string(b)
	} else {
		postal = fmt.Sprintf("%s%02d", p.zip, r.IntN(100))
	}
	return addr1, addr2, p, postal
}

// phone draws a number in the place's area code; change moves the last four
// digits without drawing.
func phone(r *rand.Rand, p place, change bool) string {
	exch, line := 200+r.IntN(800), r.IntN(10000)
	if change {
		line = (line + 1) % 10000
	}
	return fmt.Sprintf("%s-%03d-%04d", p.area, exch, line)
}

// ---- warehouses ----

type warehouseGen struct{ n int64 }

var dcCities = []string{"Reno", "Columbus", "Allentown", "Dallas", "Atlanta", "Memphis", "Ontario", "Joliet", "Sparks", "Tracy"}

func (g *warehouseGen) row(rec []string, change bool) {
	g.n++
	code, name, alloc, store := "", "", "Y", "N"
	switch n := g.n; {
	case n == 4 || n == 5:
		code = fmt.Sprintf("S%02d", n-3)
		name = [...]string{"Boulder Pearl Street Store", "Portland Pearl District Store"}[n-4]
		store = "Y"
	case n == 3:
		code, name, alloc = "W3", "Reno Returns Center", "N"
	default:
		w := n
		if n > 5 {
			w = n - 2
		}
		code = "W" + itoa(w)
		name = dcCities[(w-1)%int64(len(dcCities))] + " Distribution Center"
		if w > int64(len(dcCities)) {
			name += " " + itoa((w-1)/int64(len(dcCities))+1)
		}
	}
	if change {
		name += " Annex"
	}
	rec[0], rec[1], rec[2], rec[3] = code, name, alloc, store
}

// ---- items ----

// item is the item being emitted; only one is kept in memory at a time.
type item struct {
	number, description, class, vendor, status, width string
	cat                                               *category
	dashed                                            bool // SKU style "BLU-XL" rather than "BLU  XL"
	noSKU                                             bool
	colors                                            [4]int
	nColors                                           int
	sizes                                             []string
	price, costPct                                    int64
	count                                             int // SKU rows
}

// skuRow is one row of the item stream.
type skuRow struct {
	it               *item
	index            int64 // 0-based row number in the stream
	sku, color, size string
	colorName        string
	price            int64
}

// itemGen is the item stream of `pbgen -kind items -rows N`; inventory and
// invoices replay it to reference SKUs that exist.
type itemGen struct {
	r         *rand.Rand
	rows      int64
	emitted   int64 // rows returned
	items     int64 // items started
	maxVendor int
	cur       item
	pos       int
	upc, rr   permuter
}

func newItemGen(seed uint64, rows int64) *itemGen {
	return &itemGen{
		r:         newRand(seed, streamItems),
		rows:      rows,
		maxVendor: int(max(rows/200, 5)),
		upc:       newPermuter(100_000, 10_000_000_000, seed, 0x0bc),
		rr:        newPermuter(100_000, 9_000_000_000, seed, 0x7ef),
		pos:       -1,
	}
}

func (g *itemGen) newItem() {
	r, it := g.r, &g.cur
	*it = item{}
	g.items++
	it.number = fmt.Sprintf("IT%07d", g.items)
	w := r.IntN(100)
	for i := range categories {
		if w < categories[i].weight || i == len(categories)-1 {
			it.cat = &categories[i]
			break
		}
		w -= categories[i].weight
	}
	c := it.cat
	it.class = c.class
	desc := pick(r, adjectives) + " " + pick(r, materials) + " " + pick(r, c.nouns)
	switch s := r.IntN(100); {
	case s < 4:
		desc += `, "` + pick(r, editions) + `" edition`
	case s < 8:
		desc += " 2"
	case s < 11:
		desc += ", Women's"
	}
	it.description = desc
	it.vendor = fmt.Sprintf("V%05d", 1+r.IntN(g.maxVendor))
	it.status = "A"
	if r.IntN(100) < 6 {
		it.status = "I"
	}
	if c.width {
		it.width = "M"
		if r.IntN(100) < 30 {
			it.width = "W"
		}
	}
	it.dashed = r.IntN(2) == 0
	units := c.lo + r.Int64N(c.hi-c.lo+1)
	it.price = units*100 + [...]int64{99, 99, 99, 0, 50}[r.IntN(5)]
	it.costPct = 38 + r.Int64N(25)
	if r.IntN(100) < c.noSKUPct {
		it.noSKU, it.count = true, 1
		return
	}
	maxColors := 3
	if len(c.sizes) == 0 {
		maxColors = 4
	}
	it.nColors = 1 + r.IntN(maxColors)
	var perm [32]int // >= len(colors)
	for i := range perm {
		perm[i] = i
	}
	for i := range it.nColors {
		j := i + r.IntN(len(colors)-i)
		perm[i], perm[j] = perm[j], perm[i]
		it.colors[i] = perm[i]
	}
	it.count = it.nColors
	if len(c.sizes) > 0 {
		s := 1 + r.IntN(4)
		start := r.IntN(len(c.sizes) - s + 1)
		it.sizes = c.sizes[start : start+s]
		it.count *= s
	}
}

// next returns the next row of the stream, or false after rows rows.
func (g *itemGen) next() (skuRow, bool) {
	if g.emitted >= g.rows {
		return skuRow{}, false
	}
	if g.pos < 0 || g.pos >= g.cur.count {
		g.newItem()
		g.pos = 0
	}
	it := &g.cur
	row := skuRow{it: it, index: g.emitted, price: it.price}
	if !it.noSKU {
		nSizes := max(len(it.sizes), 1)
		c := colors[it.colors[g.pos/nSizes]]
		row.color, row.colorName = c.code, c.name
		row.sku = c.code
		if len(it.sizes) > 0 {
			row.size = it.sizes[g.pos%nSizes]
			if row.size == "XXL" || row.size == "38" || row.size == "13" {
				row.price += 500
			}
			if it.dashed {
				row.sku = c.code + "-" + row.size
			} else {
				row.sku = fmt.Sprintf("%-5s%s", c.code, row.size)
			}
		}
	}
	g.pos++
	g.emitted++
	return row, true
}

// upc returns a unique UPC-A with a valid check digit.
func (g *itemGen) upcOf(index int64) string {
	var b [12]byte
	v := 80_000_000_000 + g.upc.apply(uint64(index))
	sum := 0
	for i := 10; i >= 0; i-- {
		d := int(v % 10)
		v /= 10
		b[i] = byte('0' + d)
		if i%2 == 0 {
			sum += 3 * d
		} else {
			sum += d
		}
	}
	b[11] = byte('0' + (10-sum%10)%10)
	return string(b[:])
}

func (g *itemGen) retailRefOf(index int64) string {
	return strconv.FormatUint(1_000_000_000+g.rr.apply(uint64(index)), 10)
}

type itemsGen struct{ items *itemGen }

func (g *itemsGen) row(rec []string, change bool) {
	s, _ := g.items.next()
	it := s.it
	skuDesc := ""
	switch {
	case s.size != "":
		skuDesc = s.colorName + " / " + s.size
	case s.colorName != "":
		skuDesc = s.colorName
	}
	price := s.price
	if change {
		price += 100
	}
	rec[0], rec[1], rec[2], rec[3] = it.number, s.sku, it.description, skuDesc
	rec[4], rec[5], rec[6] = it.class, it.vendor, it.status
	rec[7], rec[8], rec[9] = s.color, s.size, it.width
	rec[10], rec[11] = g.items.upcOf(s.index), g.items.retailRefOf(s.index)
	rec[12], rec[13] = money(price), money(s.price*it.costPct/100)
}

// ---- vendors ----

type vendorGen struct {
	r *rand.Rand
	n int64
}

func (g *vendorGen) row(rec []string, change bool) {
	r := g.r
	g.n++
	name := pick(r, vendorWords) + " " + pick(r, vendorKinds)
	a1, a2, p, postal := address(r)
	fi, li := r.IntN(len(firstNames)), r.IntN(len(lastNames))
	domain := strings.ToLower(asciiFold.Replace(name))
	domain = strings.TrimSuffix(domain, "co") + ".example.com"
	rec[0], rec[1], rec[2], rec[3] = fmt.Sprintf("V%05d", g.n), name, a1, a2
	rec[4], rec[5], rec[6], rec[7] = p.city, p.state, postal, p.country
	rec[8] = firstNames[fi] + " " + lastNames[li]
	rec[9] = firstASCII[fi] + "." + lastASCII[li] + "@" + domain
	rec[10] = phone(r, p, change)
}

// ---- customers ----

type customerGen struct {
	r   *rand.Rand
	n   int64
	alt permuter
}

func newCustomerGen(seed uint64) *customerGen {
	// 9,999,000 alternate numbers S0001-000 .. S9999-999.
	return &customerGen{r: newRand(seed, streamCustomers), alt: newPermuter(10_000, 9_999_000, seed, 0xa17)}
}

var emailDomains = []string{"example.com", "example.net", "example.org", "mail.example.com"}

func (g *customerGen) row(rec []string, change bool) {
	r := g.r
	g.n++
	alt := ""
	if r.IntN(100) < 30 {
		v := g.alt.apply(uint64(g.n - 1))
		alt = fmt.Sprintf("S%04d-%03d", 1+v/1000, v%1000)
	}
	class := "RT"
	switch c := r.IntN(100); {
	case c >= 92:
		class = "EM"
	case c >= 80:
		class = "WH"
	}
	fi, li := r.IntN(len(firstNames)), r.IntN(len(lastNames))
	first, last, company := firstNames[fi], lastNames[li], ""
	email := firstASCII[fi] + "." + lastASCII[li] + itoa(g.n%100) + "@" + pick(r, emailDomains)
	if class == "WH" {
		company = pick(r, companyWords) + " " + pick(r, companyKinds) + pick(r, companySufx)
		if r.IntN(2) == 0 {
			first, last = "", ""
			email = "purchasing@" + strings.ToLower(asciiFold.Replace(company)) + ".example.com"
		}
	}
	a1, a2, p, postal := address(r)
	optIn := "N"
	if r.IntN(100) < 60 {
		optIn = "Y"
	}
	rec[0], rec[1], rec[2] = itoa(100000+g.n), alt, class
	rec[3], rec[4], rec[5] = first, last, company
	rec[6], rec[7], rec[8], rec[9], rec[10], rec[11] = a1, a2, p.city, p.state, postal, p.country
	rec[12], rec[13], rec[14] = email, phone(r, p, change), optIn
}

// ---- invoices ----

var invoiceDates = func() []string {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
	var out []string
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format("2006-01-02"))
	}
	return out
}()

var freights = []string{"0.00", "0.00", "5.95", "9.95", "14.95"}

type invoiceGen struct {
	r         *rand.Rand
	seed      uint64
	rows      int64
	itemRows  int64
	items     *itemGen
	customers uint64
	stride    int

	k                                       int64 // invoices started
	line, linesLeft                         int
	invoice, order, customer, typ, date, fr string
	credit                                  bool
}

func newInvoiceGen(o options) *invoiceGen {
	return &invoiceGen{
		r:         newRand(o.seed, streamInvoices),
		seed:      o.seed,
		rows:      o.rows,
		itemRows:  o.itemRows,
		items:     newItemGen(o.seed, o.itemRows),
		customers: uint64(max(o.rows/10, 10)),
		stride:    int(max(o.itemRows/max(o.rows, 1), 1)),
	}
}

// customerOf is a hash, not a draw, so a credit can name the customer of the
// earlier invoice whose order it credits.
func (g *invoiceGen) customerOf(k int64) string {
	return itoa(100001 + int64(mix(g.seed^0x5eed^uint64(k)*0x9e37)%g.customers))
}

// nextSKU walks the item stream forward, starting it again at its end.
func (g *invoiceGen) nextSKU() skuRow {
	s, ok := g.items.next()
	if !ok {
		g.items = newItemGen(g.seed, g.itemRows)
		s, _ = g.items.next()
	}
	return s
}

func (g *invoiceGen) startInvoice() {
	r := g.r
	k := g.k
	g.k++
	g.invoice = itoa(1000001 + k)
	g.credit = k > 0 && r.IntN(100) < 10
	src := k
	if g.credit {
		src = r.Int64N(k)
		g.typ, g.linesLeft, g.fr = "C", 1+r.IntN(2), "0.00"
	} else {
		g.typ, g.linesLeft = "I", 1+r.IntN(5)
		g.fr = pick(r, freights)
	}
	g.order = itoa(2000001 + src)
	g.customer = g.customerOf(src)
	// About 2.85 lines per invoice on average: spread the dates over the year.
	day := int(float64(k) * 2.85 * float64(len(invoiceDates)) / float64(max(g.rows, 1)))
	g.date = invoiceDates[min(day, len(invoiceDates)-1)]
	g.line = 0
}

func (g *invoiceGen) row(rec []string, change bool) {
	if g.linesLeft == 0 {
		g.startInvoice()
	}
	r := g.r
	g.line++
	g.linesLeft--
	var s skuRow
	for range 1 + r.IntN(2*g.stride) {
		s = g.nextSKU()
	}
	qty := int64(1)
	if r.IntN(100) < 25 {
		qty += r.Int64N(3)
	}
	if g.credit {
		qty = -qty
	}
	ext := qty * s.price
	var disc int64
	switch d := r.IntN(100); {
	case d < 10:
		disc = ext / 5
	case d < 25:
		disc = ext / 10
	}
	tax := (ext - disc) * 825 / 10000
	freight := "0.00"
	if g.line == 1 {
		freight = g.fr
	}
	price := s.price
	if change {
		price += 100
	}
	rec[0], rec[1], rec[2], rec[3], rec[4] = g.invoice, g.order, g.customer, g.typ, g.date
	rec[5], rec[6], rec[7], rec[8] = strconv.Itoa(g.line), s.it.number, s.sku, itoa(qty)
	rec[9], rec[10], rec[11], rec[12] = money(price), money(disc), money(tax), freight
}

// ---- inventory ----

var inventoryWarehouses = []string{"W1", "W2", "W3", "S01", "S02"}

type inventoryGen struct {
	r              *rand.Rand
	items          *itemGen
	rows, itemRows int64
	pair           int64 // item rows consumed
	cur            skuRow
	left, j        int64
	start          int
}

func newInventoryGen(o options) *inventoryGen {
	return &inventoryGen{r: newRand(o.seed, streamInventory), items: newItemGen(o.seed, o.itemRows),
		rows: o.rows, itemRows: o.itemRows}
}

func (g *inventoryGen) row(rec []string, change bool) {
	r := g.r
	for g.left == 0 {
		// Item row i gets its even share of the rows: the shares add up to rows.
		i := g.pair
		g.cur, _ = g.items.next()
		g.pair++
		g.left = (i+1)*g.rows/g.itemRows - i*g.rows/g.itemRows
		g.j = 0
		g.start = r.IntN(len(inventoryWarehouses))
	}
	wh := inventoryWarehouses[(g.start+int(g.j))%len(inventoryWarehouses)]
	slot := g.j/int64(len(inventoryWarehouses)) + 1 // distinct per SKU and warehouse
	g.j++
	g.left--
	var loc string
	if wh[0] == 'S' {
		loc = fmt.Sprintf("SF%02d", slot)
	} else {
		loc = fmt.Sprintf("%c%02d-%02d", 'A'+r.IntN(12), 1+r.IntN(40), slot)
	}
	onHand := int64(r.IntN(501))
	if r.IntN(100) < 8 {
		onHand = 0
	}
	var reserved int64
	if r.IntN(100) >= 60 {
		reserved = r.Int64N(onHand + 1)
	}
	var threshold int64
	if r.IntN(100) >= 40 {
		threshold = 5 + r.Int64N(16)
	}
	if change {
		onHand++
	}
	rec[0], rec[1], rec[2], rec[3] = g.cur.it.number, g.cur.sku, wh, loc
	rec[4], rec[5], rec[6] = itoa(onHand), itoa(reserved), itoa(threshold)
}
