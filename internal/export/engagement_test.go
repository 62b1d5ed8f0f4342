package export

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/trigger"
)

// The loads of the feed tests: three customers, two items (one with two
// SKUs, one without SKUs), an invoice and a credit.
const (
	feedCustomers = "customer,last_name,email\nC1,Ash,a@example.com\nC2,Birch,b@example.com\nC3,Cedar,c@example.com\n"
	feedItems     = "item,sku,description,price\nIT1,S1,Mug,10.00\nIT1,S2,Mug,10.00\nIT2,,Tape,3.50\n"
	feedInvoices  = "invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price\n" +
		"I1,O1,C1,I,2026-01-02,1,IT1,S1,2,10.00\nI1,O1,C1,I,2026-01-02,2,IT2,,1,3.50\nI2,O1,C1,C,2026-01-09,1,IT1,S1,-1,10.00\n"
)

// feedFixture is a database loaded with the feed test data.
func feedFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.load("customers", catalog.ModeDelta, feedCustomers)
	f.load("items", catalog.ModeDelta, feedItems)
	f.load("invoices", catalog.ModeDelta, feedInvoices)
	return f
}

// feedRun runs the feed and returns what each kind sent: per file kind
// the records as "ACTION KEY" (sales and returns: the invoice number),
// sorted; a kind without a file is left out.
func (f *fixture) feed(o Options) map[string][]string {
	f.t.Helper()
	res, err := Engagement(context.Background(), f.d, o)
	if err != nil {
		f.t.Fatalf("Engagement: %v", err)
	}
	return f.sent(res)
}

// sent reads the files of a feed run.
func (f *fixture) sent(res *Result) map[string][]string {
	f.t.Helper()
	out := map[string][]string{}
	for _, file := range res.Files {
		b, err := os.ReadFile(file.Path)
		if err != nil {
			f.t.Fatal(err)
		}
		var m struct {
			Count   int `xml:"count,attr"`
			Wrapper struct {
				Records []struct {
					Attrs []xml.Attr `xml:",any,attr"`
				} `xml:",any"`
			} `xml:",any"`
		}
		if err := xml.Unmarshal(b, &m); err != nil {
			f.t.Fatalf("%s: %v", file.Name, err)
		}
		if m.Count != len(m.Wrapper.Records) || int64(m.Count) != file.Records {
			f.t.Errorf("%s: count %d, %d records, result says %d", file.Name, m.Count, len(m.Wrapper.Records), file.Records)
		}
		var recs []string
		for _, r := range m.Wrapper.Records {
			a := map[string]string{}
			for _, x := range r.Attrs {
				a[x.Name.Local] = x.Value
			}
			switch file.Kind {
			case "engagement_customers":
				recs = append(recs, a["action"]+" "+a["customer_number"])
			case "engagement_items":
				recs = append(recs, a["action"]+" "+a["item_number"]+"/"+a["sku_code"])
			default:
				recs = append(recs, a["invoice_number"])
			}
		}
		sort.Strings(recs)
		out[file.Kind] = append(out[file.Kind], recs...)
	}
	return out
}

func (f *fixture) wantSent(what string, got map[string][]string, want map[string][]string) {
	f.t.Helper()
	for _, k := range EngagementKinds {
		f.want(what+": "+k, got[k], want[k]...)
	}
}

func (f *fixture) watermarks() []string {
	return f.rows(`SELECT kind, coalesce(CAST(change_seq AS TEXT), 'NULL') FROM feed_watermarks ORDER BY kind`)
}

// TestEngagementFeed: the first feed sends everything live, the next one
// nothing, and after loads exactly the changes: added, changed and deleted
// customers and SKUs, the SKUs of an item whose item-level fields changed,
// and new invoices, while a changed invoice is not sent again.
func TestEngagementFeed(t *testing.T) {
	f := feedFixture(t)
	o := f.opts()
	f.wantSent("first feed", f.feed(o), map[string][]string{
		"engagement_customers": {"A C1", "A C2", "A C3"},
		"engagement_items":     {"A IT1/S1", "A IT1/S2", "A IT2/"},
		"engagement_sales":     {"I1"},
		"engagement_returns":   {"I2"},
	})
	f.want("watermarks", f.watermarks(), "engagement_customers|3", "engagement_items|3", "engagement_returns|3", "engagement_sales|3")
	var want []string
	for _, name := range f.rows(`SELECT name FROM files WHERE direction = 'out' ORDER BY name`) {
		want = append(want, filepath.Join("engagement", name))
	}
	f.want("the outbox", f.outboxFiles(), want...)
	f.wantSent("nothing new", f.feed(o), nil)

	// C2 changes, C4 is new, C3 is gone from a full load; IT1's
	// description changes on a row of S1 only; IT2 is deleted; a new
	// invoice, and a change to I1, which was sent already.
	f.load("customers", catalog.ModeFull, "customer,last_name,email\nC1,Ash,a@example.com\nC2,Birch,b2@example.com\nC4,Dogwood,d@example.com\n")
	f.load("items", catalog.ModeDelta, "item,sku,description,price\nIT1,S1,Big mug,10.00\nIT3,S9,Pen,1.00\n")
	f.load("items", catalog.ModeFull, "item,sku,description,price\nIT1,S1,Big mug,10.00\nIT1,S2,Big mug,10.00\nIT3,S9,Pen,1.00\n")
	f.load("invoices", catalog.ModeDelta, "invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price\n"+
		"I1,O1,C1,I,2026-01-02,1,IT1,S1,3,10.00\nI3,O3,C4,I,2026-02-01,1,IT3,S9,5,1.00\n")
	f.wantSent("after loads", f.feed(o), map[string][]string{
		"engagement_customers": {"A C4", "C C2", "D C3"},
		"engagement_items":     {"A IT3/S9", "C IT1/S1", "C IT1/S2", "D IT2/"},
		"engagement_sales":     {"I3"},
	})
	f.wantSent("nothing new again", f.feed(o), nil)
}

// TestEngagementTombstones: a tombstone stays until the feed has sent its
// delete, even when the trigger export sent it first; and once the feed is
// in use, a record added and deleted before its trigger went out is kept
// as a tombstone for the feed instead of being removed.
func TestEngagementTombstones(t *testing.T) {
	ctx := context.Background()
	f := feedFixture(t)
	o := f.opts()
	if _, err := Run(ctx, f.d, "customers", o); err != nil {
		t.Fatal(err)
	}
	f.feed(o)

	// C3 deleted: the customers export sends its D, which would release
	// the tombstone, but the feed has not sent it yet.
	f.load("customers", catalog.ModeFull, "customer,last_name\nC1,Ash\nC2,Birch\n")
	if _, err := Run(ctx, f.d, "customers", o); err != nil {
		t.Fatal(err)
	}
	if _, err := trigger.Purge(ctx, f.d, 0, false); err != nil {
		t.Fatal(err)
	}
	f.want("tombstone held for the feed", f.rows(`SELECT customer FROM customers WHERE deleted_at IS NOT NULL`), "C3")

	// C5 added (trigger A pending) and deleted before the customers
	// export: the A is cancelled, but the feed may have sent C5.
	f.load("customers", catalog.ModeDelta, "customer,last_name\nC5,Elm\n")
	f.wantSent("C5 added", f.feed(o), map[string][]string{"engagement_customers": {"A C5", "D C3"}})
	f.load("customers", catalog.ModeFull, "customer,last_name\nC1,Ash\nC2,Birch\n")
	f.want("no trigger for C5", f.rows(`SELECT capture, status FROM triggers WHERE record_key = 'C5'`))
	f.want("C5 kept as a tombstone", f.rows(`SELECT customer FROM customers WHERE deleted_at IS NOT NULL ORDER BY 1`), "C3", "C5")
	f.wantSent("C5 deleted", f.feed(o), map[string][]string{"engagement_customers": {"D C5"}})
	if _, err := trigger.Purge(ctx, f.d, 0, false); err != nil {
		t.Fatal(err)
	}
	f.want("tombstones gone once sent", f.rows(`SELECT customer FROM customers WHERE deleted_at IS NOT NULL`))

	// Without a feed, nothing changes: the cancelled add is removed.
	g := newFixture(t)
	g.load("customers", catalog.ModeDelta, "customer,last_name\nC1,Ash\nC5,Elm\n")
	g.load("customers", catalog.ModeFull, "customer,last_name\nC1,Ash\n")
	g.want("no feed: C5 removed", g.rows(`SELECT customer FROM customers WHERE customer = 'C5'`))
}

// TestEngagementSince: a resend sends what changed at or after the time
// and leaves the watermarks; the next feed sends what is new since the
// last feed all the same. Before a first feed a resend is refused.
func TestEngagementSince(t *testing.T) {
	ctx := context.Background()
	f := feedFixture(t)
	o := f.opts()
	o.Since = "2000-01-01T00:00:00Z"
	if _, err := Engagement(ctx, f.d, o); !errors.Is(err, ErrNoFeedYet) {
		t.Fatalf("a resend before the first feed: %v, want ErrNoFeedYet", err)
	}
	f.want("no file", f.outboxFiles())
	f.want("no watermark", f.watermarks())
	o.Since = ""
	f.feed(o)
	f.load("customers", catalog.ModeDelta, "customer,last_name\nC2,Birch-Smith\n")
	marks := f.watermarks()

	// The receiver has had every record: all are changes now.
	o.Since = "2000-01-01T00:00:00Z"
	f.wantSent("resend", f.feed(o), map[string][]string{
		"engagement_customers": {"C C1", "C C2", "C C3"},
		"engagement_items":     {"C IT1/S1", "C IT1/S2", "C IT2/"},
		"engagement_sales":     {"I1"},
		"engagement_returns":   {"I2"},
	})
	f.want("watermarks after the resend", f.watermarks(), marks...)
	o.Since = time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05Z")
	f.wantSent("resend of the future", f.feed(o), nil)
	o.Since = ""
	f.wantSent("next feed", f.feed(o), map[string][]string{"engagement_customers": {"C C2"}})
}

// TestEngagementSnapshot: a load that commits while a feed writes its file
// is not in that file, and the next feed sends it.
func TestEngagementSnapshot(t *testing.T) {
	f := feedFixture(t)
	o := f.opts()
	loaded := false
	o.create = func(path string, perm os.FileMode) (io.WriteCloser, error) {
		if strings.Contains(path, "engagement_customers") && !loaded {
			loaded = true
			f.load("customers", catalog.ModeDelta, "customer,last_name\nC1,Ashe\nC9,Yew\n")
		}
		return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	}
	got := f.feed(o)
	f.want("first feed", got["engagement_customers"], "A C1", "A C2", "A C3")
	got = f.feed(o)
	f.want("next feed", got["engagement_customers"], "A C9", "C C1")
}

// TestEngagementWriteFails: a file that cannot be written is abandoned and
// its watermark stays, so the next feed sends the same records.
func TestEngagementWriteFails(t *testing.T) {
	ctx := context.Background()
	f := feedFixture(t)
	o := f.opts()
	o.create = failingCreate(2, 100)
	if _, err := Engagement(ctx, f.d, o); !errors.Is(err, errDiskFull) {
		t.Fatalf("Engagement: %v, want a full disk", err)
	}
	f.want("ledger", f.rows(`SELECT kind, status, coalesce(CAST(change_to AS TEXT), 'NULL') FROM files WHERE direction = 'out' ORDER BY id`),
		"engagement_customers|complete|3", "engagement_items|abandoned|3")
	f.want("watermarks", f.watermarks(), "engagement_customers|3", "engagement_items|NULL")
	o.create = nil
	f.wantSent("the next feed", f.feed(o), map[string][]string{
		"engagement_items":   {"A IT1/S1", "A IT1/S2", "A IT2/"},
		"engagement_sales":   {"I1"},
		"engagement_returns": {"I2"},
	})
	for _, name := range f.outboxFiles() {
		if strings.HasPrefix(filepath.Base(name), ".") {
			t.Errorf("left behind: %s", name)
		}
	}
}

// TestEngagementInvoiceBackAfterDelete: an invoice deleted before any
// feed sent it (a tombstone, since its add went out to the POS) and loaded
// again after a feed is sent then, although its first change sequence is
// below the watermark.
func TestEngagementInvoiceBackAfterDelete(t *testing.T) {
	f := feedFixture(t)
	o := f.opts()
	f.load("invoices", catalog.ModeDelta, "invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price\n"+
		"I5,O5,C2,I,2026-03-01,1,IT2,,1,3.50\n")
	if _, err := Run(context.Background(), f.d, "invoices", o); err != nil {
		t.Fatal(err)
	}
	f.load("invoices", catalog.ModeFull, feedInvoices)
	f.want("I5 deleted", f.rows(`SELECT CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END FROM invoices WHERE invoice = 'I5'`), "1")
	f.wantSent("first feed", f.feed(o), map[string][]string{
		"engagement_customers": {"A C1", "A C2", "A C3"},
		"engagement_items":     {"A IT1/S1", "A IT1/S2", "A IT2/"},
		"engagement_sales":     {"I1"},
		"engagement_returns":   {"I2"},
	})
	f.load("invoices", catalog.ModeDelta, "invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price\n"+
		"I5,O5,C2,I,2026-03-01,1,IT2,,1,3.50\n")
	f.wantSent("I5 back", f.feed(o), map[string][]string{"engagement_sales": {"I5"}})
}

func TestParseSince(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-11-23T05:00:00Z", "2026-11-23T05:00:00Z"},
		{"2026-11-23T06:00:00+01:00", "2026-11-23T05:00:00Z"},
		{"2026-11-23T05:00:00", "2026-11-23T05:00:00Z"},
		{"2026-11-23", "2026-11-23T00:00:00Z"},
		{"2026-11-23 05:00", ""},
		{"yesterday", ""},
		{"2026-13-01", ""},
		{"", ""},
	} {
		got, err := ParseSince(c.in)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("ParseSince(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
