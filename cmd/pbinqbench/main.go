package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/inquiry"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pbinqbench:", err)
		os.Exit(1)
	}
}

// lookup is one question, as posbridge flags, as an inquiry query and as
// one SQL statement for the sqlite3 shell.
type lookup struct {
	kind string // inventory or customer
	by   string // the selector: item, sku, upc, retail_ref, name, email, phone, postal_code
	args []string
	inv  *inquiry.InventoryQuery
	cust *inquiry.CustomerQuery
	sql  string
}

// timing is what one way of timing measured per lookup.
type timing struct {
	posbridge, reference []time.Duration
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pbinqbench", flag.ContinueOnError)
	data := fs.String("data", "", "posbridge data folder holding posbridge.db (required)")
	pb := fs.String("posbridge", "", "the posbridge binary (required)")
	sqlite := fs.String("sqlite3", "sqlite3", "the sqlite3 shell")
	n := fs.Int("n", 1000, "lookups of each kind")
	seed := fs.Uint64("seed", 1, "seed of the random picks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *pb == "" || *n < 1 {
		return errors.New("-data and -posbridge are required, -n at least 1")
	}
	path := filepath.Join(*data, "posbridge.db")
	ctx := context.Background()
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	r := rand.New(rand.NewPCG(*seed, 0x1a9))
	fmt.Fprintf(stderr, "picking %d SKUs and %d customers\n", *n, *n)
	lookups, err := pick(ctx, d, r, *n)
	if err != nil {
		return err
	}
	r.Shuffle(len(lookups), func(i, j int) { lookups[i], lookups[j] = lookups[j], lookups[i] })

	fmt.Fprintln(stderr, "query: in one posbridge process")
	query := map[string]*timing{}
	byKind := func(m map[string]*timing, k string) *timing {
		if m[k] == nil {
			m[k] = &timing{}
		}
		return m[k]
	}
	for _, l := range lookups {
		start := time.Now()
		found, err := ask(ctx, d, l)
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(l.args, " "), err)
		}
		if found == 0 {
			return fmt.Errorf("%s: found nothing", strings.Join(l.args, " "))
		}
		byKind(query, l.kind).posbridge = append(byKind(query, l.kind).posbridge, took)
	}
	fmt.Fprintln(stderr, "query: in one sqlite3 shell with .timer on")
	shell, err := shellTimes(*sqlite, path, lookups)
	if err != nil {
		return err
	}
	for i, l := range lookups {
		byKind(query, l.kind).reference = append(byKind(query, l.kind).reference, shell[i])
	}

	fmt.Fprintln(stderr, "process: one posbridge process and one sqlite3 process per lookup")
	procs := map[string]*timing{}
	perBy := map[string]*timing{}
	env := append(os.Environ(), "POSBRIDGE_DATA_DIR="+*data)
	for _, l := range lookups {
		t, err := timeProcess(env, *pb, append(append([]string{"inquire"}, l.args...), "--output", "json", "-q")...)
		if err != nil {
			return err
		}
		byKind(procs, l.kind).posbridge = append(byKind(procs, l.kind).posbridge, t)
		byKind(perBy, l.kind+" by "+l.by).posbridge = append(byKind(perBy, l.kind+" by "+l.by).posbridge, t)
		t, err = timeProcess(nil, *sqlite, path, l.sql)
		if err != nil {
			return err
		}
		byKind(procs, l.kind).reference = append(byKind(procs, l.kind).reference, t)
		byKind(perBy, l.kind+" by "+l.by).reference = append(byKind(perBy, l.kind+" by "+l.by).reference, t)
	}

	w := bufio.NewWriter(stdout)
	for _, kind := range []string{"inventory", "customer"} {
		name := map[string]string{"inventory": "inventory inquiry", "customer": "customer search"}[kind]
		row(w, name+", one process per lookup", procs[kind], "`sqlite3 DB 'SQL'` per lookup")
		row(w, name+", the query in a warm process", query[kind], "`sqlite3` `.timer on` user+sys")
	}
	keys := make([]string, 0, len(perBy))
	for k := range perBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row(w, k+", one process per lookup", perBy[k], "`sqlite3 DB 'SQL'` per lookup")
	}
	return w.Flush()
}

// row writes one Markdown table row: the measurement, its count, p50 and
// p99 of posbridge and of the reference in milliseconds, and the ratios.
func row(w io.Writer, name string, t *timing, ref string) {
	p := func(d []time.Duration, q int) float64 { return float64(percentile(d, q)) / float64(time.Millisecond) }
	fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %s |\n", name, len(t.posbridge),
		p(t.posbridge, 50), p(t.posbridge, 99), p(t.reference, 50), p(t.reference, 99),
		p(t.posbridge, 50)/p(t.reference, 50), p(t.posbridge, 99)/p(t.reference, 99), ref)
}

// percentile is the nearest-rank q-th percentile of d.
func percentile(d []time.Duration, q int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*q + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func ask(ctx context.Context, d *db.DB, l lookup) (int, error) {
	if l.inv != nil {
		r, err := inquiry.Inventory(ctx, d, *l.inv)
		if err != nil {
			return 0, err
		}
		return len(r.SKUs), nil
	}
	p, err := inquiry.SearchCustomers(ctx, d, *l.cust)
	if err != nil {
		return 0, err
	}
	return len(p.Customers), nil
}

func timeProcess(env []string, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return time.Since(start), nil
}

// shellTimes runs every lookup's statement in one sqlite3 shell with
// .timer on and returns the user + sys time of each.
func shellTimes(sqlite, path string, lookups []lookup) ([]time.Duration, error) {
	var script strings.Builder
	script.WriteString(".timer on\n.output /dev/null\n")
	for _, l := range lookups {
		script.WriteString(l.sql + "\n")
	}
	cmd := exec.Command(sqlite, path)
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sqlite3: %w", err)
	}
	var times []time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		// Run Time: real 0.001 user 0.000526 sys 0.000000
		f := strings.Fields(line)
		if len(f) != 8 || f[0] != "Run" {
			continue
		}
		user, err1 := strconv.ParseFloat(f[5], 64)
		sys, err2 := strconv.ParseFloat(f[7], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("sqlite3 .timer line %q", line)
		}
		times = append(times, time.Duration((user+sys)*float64(time.Second)))
	}
	if len(times) != len(lookups) {
		return nil, fmt.Errorf("sqlite3: %d timer lines for %d statements", len(times), len(lookups))
	}
	return times, nil
}

// pick draws n live SKUs and n live customers with a last name and makes
// a lookup of each.
func pick(ctx context.Context, d *db.DB, r *rand.Rand, n int) ([]lookup, error) {
	skus, err := sample(ctx, d, r, n, `SELECT item, sku, upc, retail_ref FROM skus WHERE deleted_at IS NULL`)
	if err != nil {
		return nil, err
	}
	custs, err := sample(ctx, d, r, n, `SELECT last_name, email, phone, postal_code FROM customers
WHERE deleted_at IS NULL AND last_name <> '' AND email LIKE '%@%' AND phone <> '' AND postal_code <> ''`)
	if err != nil {
		return nil, err
	}
	if len(skus) < n || len(custs) < n {
		return nil, fmt.Errorf("found %d SKUs and %d customers, want %d of each", len(skus), len(custs), n)
	}
	var out []lookup
	for i, s := range skus {
		item, sku, upc, ref := s[0], s[1], s[2], s[3]
		l := lookup{kind: "inventory"}
		switch {
		case i%5 < 2:
			l.by, l.args, l.inv = "item", []string{"inventory", "--item", item}, &inquiry.InventoryQuery{Item: item}
			l.sql = inventorySQL("k.item = " + quote(item))
		case i%5 == 2:
			l.by, l.args, l.inv = "sku", []string{"inventory", "--item", item, "--sku", sku}, &inquiry.InventoryQuery{Item: item, SKU: sku}
			l.sql = inventorySQL("k.item = " + quote(item) + " AND k.sku = " + quote(sku))
		case i%5 == 3 && upc != "":
			l.by, l.args, l.inv = "upc", []string{"inventory", "--upc", upc}, &inquiry.InventoryQuery{UPC: upc}
			l.sql = inventorySQL("k.upc = " + quote(upc) + " AND k.upc <> ''")
		case ref != "":
			l.by, l.args, l.inv = "retail_ref", []string{"inventory", "--retail-ref", ref}, &inquiry.InventoryQuery{RetailRef: ref}
			l.sql = inventorySQL("k.retail_ref = " + quote(ref) + " AND k.retail_ref <> ''")
		default:
			l.by, l.args, l.inv = "item", []string{"inventory", "--item", item}, &inquiry.InventoryQuery{Item: item}
			l.sql = inventorySQL("k.item = " + quote(item))
		}
		out = append(out, l)
	}
	for i, c := range custs {
		last, email, phone, postal := c[0], c[1], c[2], c[3]
		var q inquiry.CustomerQuery
		var flag string
		switch i % 4 {
		case 0:
			q, flag = inquiry.CustomerQuery{Field: inquiry.ByName, Value: firstRunes(last, 3)}, "--last-name"
		case 1:
			q, flag = inquiry.CustomerQuery{Field: inquiry.ByEmail, Value: email[:strings.IndexByte(email, '@')]}, "--email"
		case 2:
			q, flag = inquiry.CustomerQuery{Field: inquiry.ByPhone, Value: phone}, "--phone"
			if dg := inquiry.Digits(phone); len(dg) == 10 {
				q.Value = "(" + dg[:3] + ") " + dg[3:6] + "-" + dg[6:]
			}
		default:
			q, flag = inquiry.CustomerQuery{Field: inquiry.ByPostalCode, Value: firstRunes(postal, 3)}, "--postal-code"
		}
		query, qargs, err := q.PageSQL()
		if err != nil {
			return nil, err
		}
		out = append(out, lookup{kind: "customer", by: q.Field, args: []string{"customer", flag, q.Value}, cust: &q,
			sql: literal(query, qargs) + ";"})
	}
	return out, nil
}

// inventorySQL answers an inventory inquiry in one statement: the SKUs
// with their item and their stock summed per warehouse.
func inventorySQL(where string) string {
	return `SELECT k.item, k.sku, i.description, k.sku_description, i.item_class, i.vendor, i.status, k.color, k.size, k.width,
k.upc, k.retail_ref, k.price, v.warehouse, w.name, w.allocatable, sum(v.on_hand), sum(v.reserved), sum(v.backordered)
FROM skus k JOIN items i ON i.item = k.item LEFT JOIN inventory v ON v.item = k.item AND v.sku = k.sku
LEFT JOIN warehouses w ON w.warehouse = v.warehouse
WHERE ` + where + ` AND k.deleted_at IS NULL AND i.deleted_at IS NULL
GROUP BY k.item, k.sku, v.warehouse ORDER BY k.item, k.sku, v.warehouse;`
}

// sample draws n rows of four text columns uniformly (reservoir sampling).
func sample(ctx context.Context, d *db.DB, r *rand.Rand, n int, query string) ([][4]string, error) {
	rows, err := d.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][4]string
	seen := 0
	for rows.Next() {
		var v [4]string
		if err := rows.Scan(&v[0], &v[1], &v[2], &v[3]); err != nil {
			return nil, err
		}
		seen++
		if len(out) < n {
			out = append(out, v)
		} else if j := r.IntN(seen); j < n {
			out[j] = v
		}
	}
	return out, rows.Err()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// literal puts the arguments of query into it, for the sqlite3 shell.
func literal(query string, args []any) string {
	var b strings.Builder
	for _, a := range args {
		i := strings.IndexByte(query, '?')
		b.WriteString(query[:i])
		switch a := a.(type) {
		case string:
			b.WriteString(quote(a))
		default:
			fmt.Fprint(&b, a)
		}
		query = query[i+1:]
	}
	b.WriteString(query)
	return b.String()
}
