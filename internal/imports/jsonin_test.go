package imports

import (
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`[{"a":1},{"a":2}]`, ""},
		{`{"status":"pending","Status":"cancelled"}`, `keys "status" and "Status" in the record are one field in two spellings`},
		{`{"status":"pending","status":"cancelled"}`, `key "status" is given twice in the record`},
		{`{"salesOrder":{"orderItems":[{"rowNo":1,"ROWNO":2}]}}`, `keys "rowNo" and "ROWNO" in salesOrder.orderItems[]`},
		{`{"a":{"b":{"c":1,"c":2}}}`, `key "c" is given twice in a.b`},
		{`{"a":[[{"x":1,"X":1}]]}`, `in a[][]`},
		{`{"status":1,"ſtatus":2}`, `keys "status" and "ſtatus"`},
		{`{"k":1,"\u212a":2}`, `keys "k" and "K"`},
	} {
		err := CheckKeys([]byte(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.in, err, c.want)
		}
	}
	var v struct{ Status string }
	if err := Decode([]byte(`{"STATUS":"pending"}`), &v); err != nil || v.Status != "pending" {
		t.Errorf("Decode: %v %+v", err, v)
	}
}
