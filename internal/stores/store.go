package stores

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/format"
)

// Store is one store of the cross reference.
type Store struct {
	Store         string `json:"store"`
	Name          string `json:"name"`
	Active        bool   `json:"active"`
	Address1      string `json:"address1"`
	Address2      string `json:"address2"`
	City          string `json:"city"`
	State         string `json:"state"`
	PostalCode    string `json:"postal_code"`
	Country       string `json:"country"`
	Phone         string `json:"phone"`
	Email         string `json:"email"`
	Warehouse     string `json:"warehouse"`
	ShipForPickup bool   `json:"ship_for_pickup"`
	SourceCode    string `json:"source_code"`
	ExternalID    string `json:"external_id"`
	CreatedAt     string `json:"created_at,omitempty"`
	UpdatedAt     string `json:"updated_at,omitempty"`
}

// Record is a store as text, the way the upload and the command line give
// it: flags as Y/N (or true/false, 1/0). The csv tags are the columns of
// docs/stores.md section 1; the XML form uses the same names as attributes.
type Record struct {
	Store         string `csv:"store"`
	Name          string `csv:"name"`
	Active        string `csv:"active"`
	Address1      string `csv:"address1"`
	Address2      string `csv:"address2"`
	City          string `csv:"city"`
	State         string `csv:"state"`
	PostalCode    string `csv:"postal_code"`
	Country       string `csv:"country"`
	Phone         string `csv:"phone"`
	Email         string `csv:"email"`
	Warehouse     string `csv:"warehouse"`
	ShipForPickup string `csv:"ship_for_pickup"`
	SourceCode    string `csv:"source_code"`
	ExternalID    string `csv:"external_id"`
}

// Columns are the column names of the upload and the export, in file order.
var Columns = []string{"store", "name", "active", "address1", "address2", "city", "state", "postal_code",
	"country", "phone", "email", "warehouse", "ship_for_pickup", "source_code", "external_id"}

// required are the columns a CSV upload must have.
var required = []string{"store", "name", "active"}

// column describes a field for messages: its name in the OMS wording and
// its greatest length (0: checked otherwise).
type column struct {
	label string
	max   int
}

// columnInfo follows Columns.
var columnInfo = []column{
	{"Store #", 10}, {"Store name", 60}, {"Active flag", 0}, {"Address 1", 60}, {"Address 2", 60},
	{"City", 40}, {"State", 20}, {"Postal Code", 20}, {"Country", 0}, {"Phone", 30}, {"Email", 120},
	{"Warehouse", 10}, {"Ship for pickup flag", 0}, {"Source code", 20}, {"External ID", 30},
}

// fields returns pointers to the fields in the order of Columns.
func (r *Record) fields() []*string {
	return []*string{&r.Store, &r.Name, &r.Active, &r.Address1, &r.Address2, &r.City, &r.State, &r.PostalCode,
		&r.Country, &r.Phone, &r.Email, &r.Warehouse, &r.ShipForPickup, &r.SourceCode, &r.ExternalID}
}

// Field returns the field of the named column, or nil for an unknown name.
func (r *Record) Field(name string) *string {
	for i, c := range Columns {
		if c == name {
			return r.fields()[i]
		}
	}
	return nil
}

// Values returns the fields in the order of Columns.
func (r Record) Values() []string {
	ptrs := r.fields()
	out := make([]string, len(ptrs))
	for i, p := range ptrs {
		out[i] = *p
	}
	return out
}

// Record returns the store as text, flags as Y or N.
func (s Store) Record() Record {
	return Record{Store: s.Store, Name: s.Name, Active: format.FormatFlag(s.Active), Address1: s.Address1,
		Address2: s.Address2, City: s.City, State: s.State, PostalCode: s.PostalCode, Country: s.Country,
		Phone: s.Phone, Email: s.Email, Warehouse: s.Warehouse, ShipForPickup: format.FormatFlag(s.ShipForPickup),
		SourceCode: s.SourceCode, ExternalID: s.ExternalID}
}

// InvalidError lists what is wrong with a store record, in the OMS store
// upload wording.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string { return strings.Join(e.Problems, " ") }

// ErrNotFound means no store has the given number.
var ErrNotFound = errors.New("store does not exist")

// ErrExists means a store of that number is already there.
var ErrExists = errors.New("store already exists")

// WarehouseExists says whether a warehouse is known.
type WarehouseExists func(warehouse string) (bool, error)

// Check validates a record and returns the store it describes, or an
// *InvalidError with every problem in a fixed order: required fields and
// flags, the address of a store that ships for pickup, the ship for pickup
// flag, the warehouse, then lengths and encodings. Other errors come from
// known.
func Check(r Record, known WarehouseExists) (Store, error) {
	vals := r.Values()
	// A field that is not text is reported as such and checked no further.
	broken := make([]string, len(vals))
	for i, v := range vals {
		v = strings.TrimSpace(v)
		if err := format.CheckText(v, 0); err != nil {
			broken[i] = columnInfo[i].label + " " + err.Error() + "."
			v = ""
		}
		vals[i] = v
	}
	var t Record
	for i, p := range t.fields() {
		*p = vals[i]
	}
	var problems []string
	bad := func(msg string) { problems = append(problems, msg) }
	given := func(name, v string) bool { return v != "" || broken[index(name)] != "" }

	s := Store{Store: t.Store, Name: t.Name, Address1: t.Address1, Address2: t.Address2, City: t.City,
		State: t.State, PostalCode: t.PostalCode, Country: strings.ToUpper(t.Country), Phone: t.Phone,
		Email: t.Email, Warehouse: t.Warehouse, SourceCode: t.SourceCode, ExternalID: t.ExternalID}
	if !given("store", t.Store) {
		bad("Store # is required.")
	}
	if !given("name", t.Name) {
		bad("Store name is required.")
	}
	var err error
	switch {
	case !given("active", t.Active):
		bad("Active flag is required.")
	case t.Active != "":
		if s.Active, err = format.ParseFlag(t.Active); err != nil {
			bad("Invalid active flag.")
		}
	}
	pickupOK := true
	if t.ShipForPickup != "" {
		s.ShipForPickup, err = format.ParseFlag(t.ShipForPickup)
		pickupOK = err == nil
	}
	need := func(name, v, msg string) {
		if s.ShipForPickup && !given(name, v) {
			bad(msg)
		}
	}
	need("address1", t.Address1, "Address 1 is required.")
	need("city", t.City, "City is required.")
	need("state", t.State, "State is required.")
	need("country", t.Country, "Country is required.")
	if t.Country != "" && !isCountry(t.Country) {
		bad("Country is invalid.")
	}
	need("postal_code", t.PostalCode, "Postal Code is required.")
	if t.PostalCode != "" && utf8.RuneCountInString(t.PostalCode) < 5 {
		bad("Postal Code is invalid, must be at least 5 characters.")
	}
	if !pickupOK {
		bad("Invalid ship for pickup flag.")
	}
	if t.Warehouse != "" && len(t.Warehouse) <= columnInfo[index("warehouse")].max {
		ok, err := known(t.Warehouse)
		if err != nil {
			return s, err
		}
		if !ok {
			bad(fmt.Sprintf("Warehouse %s does not exist.", t.Warehouse))
		}
	}
	for i, v := range vals {
		if limit := columnInfo[i].max; limit > 0 {
			if err := format.CheckText(v, limit); err != nil {
				bad(fmt.Sprintf("%s %v.", columnInfo[i].label, err))
			}
		}
	}
	for _, msg := range broken {
		if msg != "" {
			bad(msg)
		}
	}
	if len(problems) > 0 {
		return s, &InvalidError{Problems: problems}
	}
	return s, nil
}

func index(name string) int {
	for i, c := range Columns {
		if c == name {
			return i
		}
	}
	panic("stores: unknown column " + name)
}

// isCountry accepts a 2- or 3-letter code.
func isCountry(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
