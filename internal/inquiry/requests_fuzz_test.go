package inquiry

import (
	"testing"
)

// FuzzRequest feeds request files to the parser: it never panics, and a
// request it accepts is exactly one of the three kinds, with that kind's
// element.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`<Message source="S01" type="CWINVENTORYINQUIRY"><InventoryInquiry item_number="IT1" sku_code="A"/></Message>`,
		`<Message><CustomerSearch last_name="sm" limit="3" after="x"/></Message>`,
		`<Message><CustomerHistory customer_number="1" detail="Y"/></Message>`,
		`<Message type="CWCustHistIn"><CustHistRequest company="1" alternate_sold_to_id="S1" send_detail="Y" ship_to_number=""/></Message>`,
		`<Message><CustomerSearch last_name="x"/><CustomerHistory customer_number="1"/></Message>`,
		`<Message><OrderInquiry/></Message>`,
		`<Request/>`,
		`<Message><CustomerSearch email=x/></Message>`,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req request
		kind, err := parseRequest(data, &req)
		if err != nil {
			return
		}
		switch kind {
		case TypeInventory:
			if req.Inventory == nil {
				t.Fatalf("%q: kind %s without its element", data, kind)
			}
		case TypeSearch:
			if req.Search == nil {
				t.Fatalf("%q: kind %s without its element", data, kind)
			}
		case TypeHistory:
			if req.History == nil && req.custHist == nil {
				t.Fatalf("%q: kind %s without its element", data, kind)
			}
		default:
			t.Fatalf("%q: accepted with kind %q", data, kind)
		}
	})
}
