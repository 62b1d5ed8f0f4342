package stores

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// known is the warehouse check of the tests: DC1 and S01 exist.
func known(wh string) (bool, error) { return wh == "DC1" || wh == "S01", nil }

func TestCheckMessages(t *testing.T) {
	pickup := Record{Store: "S01", Name: "Boulder", Active: "Y", Address1: "1 Pearl St", City: "Boulder",
		State: "CO", PostalCode: "80302", Country: "US", ShipForPickup: "Y"}
	with := func(edit func(*Record)) Record {
		r := pickup
		edit(&r)
		return r
	}
	tests := []struct {
		name string
		rec  Record
		want string // "" for a valid record
	}{
		{"valid pickup store", pickup, ""},
		{"minimal store", Record{Store: "S9", Name: "Nine", Active: "n"}, ""},
		{"flags in other spellings", with(func(r *Record) { r.Active, r.ShipForPickup = "true", "1" }), ""},
		{"3-letter country", with(func(r *Record) { r.Country = "usa" }), ""},
		{"store number", with(func(r *Record) { r.Store = " " }), "Store # is required."},
		{"name", with(func(r *Record) { r.Name = "" }), "Store name is required."},
		{"active missing", with(func(r *Record) { r.Active = "" }), "Active flag is required."},
		{"active invalid", with(func(r *Record) { r.Active = "X" }), "Invalid active flag."},
		{"address 1", with(func(r *Record) { r.Address1 = "" }), "Address 1 is required."},
		{"city", with(func(r *Record) { r.City = "" }), "City is required."},
		{"state", with(func(r *Record) { r.State = "" }), "State is required."},
		{"country missing", with(func(r *Record) { r.Country = "" }), "Country is required."},
		{"country with a digit", with(func(r *Record) { r.Country = "U5" }), "Country is invalid."},
		{"country too long", with(func(r *Record) { r.Country = "USAA" }), "Country is invalid."},
		{"country of one letter", with(func(r *Record) { r.Country = "U" }), "Country is invalid."},
		{"postal code missing", with(func(r *Record) { r.PostalCode = "" }), "Postal Code is required."},
		{"postal code short", with(func(r *Record) { r.PostalCode = "8030" }), "Postal Code is invalid, must be at least 5 characters."},
		{"address not needed without pickup", Record{Store: "S9", Name: "Nine", Active: "Y", ShipForPickup: "N"}, ""},
		{"country checked without pickup", Record{Store: "S9", Name: "Nine", Active: "Y", Country: "1"}, "Country is invalid."},
		{"pickup flag", with(func(r *Record) { r.ShipForPickup = "maybe" }), "Invalid ship for pickup flag."},
		{"warehouse", with(func(r *Record) { r.Warehouse = "ZZ" }), "Warehouse ZZ does not exist."},
		{"known warehouse", with(func(r *Record) { r.Warehouse = "DC1" }), ""},
		{"too long", with(func(r *Record) { r.Name = strings.Repeat("n", 61) }), "Store name is 61 characters long, at most 60 allowed."},
		{"not UTF-8", with(func(r *Record) { r.City = "M\xfcnchen" }), "City is not valid UTF-8."},
		{"NUL byte", with(func(r *Record) { r.Phone = "303\x00" }), "Phone contains a NUL byte."},
		{"control character", with(func(r *Record) { r.Address2 = "Suite\x1b[31m 5" }), "Address 2 contains the control character U+001B."},
		{"DEL", with(func(r *Record) { r.ExternalID = "X\x7f" }), "External ID contains the control character U+007F."},
		{"tab allowed", with(func(r *Record) { r.Address2 = "Suite\t5" }), ""},
		{"all in order", Record{Name: "", Active: "X", ShipForPickup: "Y", Country: "U5", PostalCode: "123",
			Warehouse: "ZZ", Email: strings.Repeat("e", 121), SourceCode: "\xff"},
			"Store # is required. Store name is required. Invalid active flag. Address 1 is required. City is required. " +
				"State is required. Country is invalid. Postal Code is invalid, must be at least 5 characters. " +
				"Warehouse ZZ does not exist. Email is 121 characters long, at most 120 allowed. Source code is not valid UTF-8."},
		{"pickup flag before warehouse", Record{Store: "S9", Name: "Nine", Active: "Y", ShipForPickup: "?", Warehouse: "ZZ"},
			"Invalid ship for pickup flag. Warehouse ZZ does not exist."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(tt.rec, known)
			got := ""
			if err != nil {
				var invalid *InvalidError
				if !errors.As(err, &invalid) {
					t.Fatalf("error %v is not an *InvalidError", err)
				}
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckNormalizes(t *testing.T) {
	s, err := Check(Record{Store: " S9 ", Name: "Nine ", Active: "yes", Country: "us", ShipForPickup: ""}, known)
	if err != nil {
		t.Fatal(err)
	}
	want := Store{Store: "S9", Name: "Nine", Active: true, Country: "US"}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if r := s.Record(); r.Active != "Y" || r.ShipForPickup != "N" {
		t.Errorf("Record flags %q %q, want Y N", r.Active, r.ShipForPickup)
	}
}

func TestCheckWarehouseLookupFails(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := Check(Record{Store: "S9", Name: "Nine", Active: "Y", Warehouse: "DC1"},
		func(string) (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the lookup error", err)
	}
}

// readAll reads every record of a store upload.
func readAll(t *testing.T, body, path string) []row {
	t.Helper()
	src, err := newReader(strings.NewReader(body), path, "auto")
	if err != nil {
		t.Fatal(err)
	}
	var all []row
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
}

// The CSV and XML forms of the same stores read the same, whatever the
// column order, and the XML form is what writeXML writes.
func TestReadCSVAndXMLAlike(t *testing.T) {
	recs := []Record{
		{Store: "S01", Name: "Pickup, Quotes & \"Co\"", Active: "Y", Address1: "12 Main St\nDock 4", City: "Denver",
			State: "CO", PostalCode: "80202", Country: "US", ShipForPickup: "Y"},
		{Store: "S02", Name: "Plain <Store>", Active: "N", ShipForPickup: "N", ExternalID: "x-2"},
	}
	csvBody := "external_id,store,name,active,address1,city,state,postal_code,country,ship_for_pickup\n" +
		"\"\",S01,\"Pickup, Quotes & \"\"Co\"\"\",Y,\"12 Main St\nDock 4\",Denver,CO,80202,US,Y\n" +
		"x-2,S02,Plain <Store>,N,,,,,,N\n"
	var xb strings.Builder
	xb.WriteString("<Stores>\n")
	for _, r := range recs {
		if err := writeXML(&xb, r); err != nil {
			t.Fatal(err)
		}
	}
	xb.WriteString("</Stores>\n")
	for _, c := range []struct{ path, body string }{{"s.csv", csvBody}, {"s.xml", xb.String()}} {
		got := readAll(t, c.body, c.path)
		if len(got) != len(recs) {
			t.Fatalf("%s: %d records, want %d", c.path, len(got), len(recs))
		}
		for i, r := range got {
			if r.err != nil || !reflect.DeepEqual(r.rec, recs[i]) {
				t.Errorf("%s record %d:\n got %+v (%v)\nwant %+v", c.path, i+1, r.rec, r.err, recs[i])
			}
		}
	}
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct{ path, body, want string }{
		{"s.csv", "store,name,city\nS1,One,Denver\n", `line 1: missing required column "active"`},
		{"s.csv", "", "file is empty"},
		{"s.xml", "<Warehouses/>", "root element is <Warehouses>, want <Stores>"},
		{"s.xml", "<Stores><Store store=\"S1\"", "truncated file?"},
		{"s.xml", `<!DOCTYPE Stores [<!ENTITY a "aaaa">]><Stores><Store name="&a;"/></Stores>`, "invalid character entity &a;"},
	}
	for _, tt := range tests {
		src, err := newReader(strings.NewReader(tt.body), tt.path, "auto")
		for err == nil {
			_, err = src.next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: got %v, want an error with %q", tt.path, tt.body, err, tt.want)
		}
	}
}
