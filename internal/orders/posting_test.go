package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// postingRow is an event row whose every mandatory field is set.
func postingRow() eventRow {
	full := EventAddress{Name: "Abhinav Singh", Line1: "Shanti Nagar Kent", Line2: "South vihar colony", City: "Bangalore",
		State: "KARNATAKA", Zip: "560102", Country: "IN", Email: "a@example.com", Phone: "9800000078"}
	return eventRow{id: 786651, orderID: 128876, customer: full, data: eventData{EventType: EventCreate,
		EventTime: "2023-08-23T12:09:18Z", CreatedAt: "2023-08-23T12:07:18Z", OrderCode: "NYK-1", OrderTime: "2023-08-23T12:06:18Z",
		OrderType: "SO", LocationCode: "1120004561", ChannelName: "NYKAA", PaymentMethod: "COD", ShippingCharges: "0.00",
		Ship:  full,
		Items: []itemData{{Line: 2, ChannelSkuCode: "BAR00091", OrderedQuantity: 1, SellingPricePerUnit: "1200.00"}}}}
}

func TestRenderTypesAndTimes(t *testing.T) {
	for _, tc := range []struct {
		p    partner.Profile
		want []string
	}{
		{partner.Profile{}, []string{`"messageId":786651,`, `"omsSubOrderId":128876,`, `"omsSubOrderItemId":128876000002,`,
			`"eventTime":"23-08-2023T12:09:18"`, `"createdAt":"23-08-2023T12:07:18"`, `"orderTime":"23-08-2023T12:06:18"`,
			`"channelType":"ERP"`, `"isPriority":false`, `"sellingPricePerUnit":1200.00`}},
		{partner.Profile{TimeFormat: partner.TimeDocumented, ChannelType: "MARKETPLACE"}, []string{`"orderTime":"23-08-2023T12:06:18"`,
			`"channelType":"MARKETPLACE"`}},
		{partner.Profile{TimeFormat: partner.TimeISO8601}, []string{`"eventTime":"2023-08-23T12:09:18Z"`, `"orderTime":"2023-08-23T12:06:18Z"`}},
	} {
		e, err := render(postingRow(), tc.p)
		if err != nil {
			t.Fatalf("%+v: %v", tc.p, err)
		}
		b, _ := json.Marshal(e)
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%+v: %s lacks %s", tc.p, b, w)
			}
		}
	}
}

func TestRenderAddresses(t *testing.T) {
	r := postingRow()
	// A customer without an address but with an email; an order that
	// names another phone and ships to a street without a flat.
	r.customer = EventAddress{Name: "Abhinav Singh", Email: "a@example.com"}
	r.data.Customer = EventAddress{Name: "A. Singh", Phone: "9800000078"}
	r.data.Ship = EventAddress{Name: "Office", Line1: "MG Road 1", City: "Bangalore", State: "KARNATAKA", Zip: "560001", Country: "IN"}
	e, err := render(r, partner.Profile{})
	if err != nil {
		t.Fatal(err)
	}
	wantBill := EventAddress{Name: "Abhinav Singh", Line1: "MG Road 1", City: "Bangalore", State: "KARNATAKA", Zip: "560001",
		Country: "IN", Email: "a@example.com", Phone: "9800000078"}
	wantShip := EventAddress{Name: "Office", Line1: "MG Road 1", City: "Bangalore", State: "KARNATAKA", Zip: "560001",
		Country: "IN", Email: "a@example.com", Phone: "9800000078"}
	if e.BillingAddress != wantBill || e.ShippingAddress != wantShip {
		t.Errorf("billing %+v\nshipping %+v", e.BillingAddress, e.ShippingAddress)
	}

	// The flat of one address never joins the street of another.
	r = postingRow()
	r.data.Ship.Line1, r.data.Ship.Line2 = "MG Road 1", ""
	if e, _ := render(r, partner.Profile{}); e.ShippingAddress.Line2 != "" || e.BillingAddress.Line2 != "South vihar colony" {
		t.Errorf("line2: shipping %q, billing %q", e.ShippingAddress.Line2, e.BillingAddress.Line2)
	}
}

func TestRenderRefusesEmptyMandatory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*eventRow)
		want   string
	}{
		{"no city anywhere", func(r *eventRow) { r.customer.City, r.data.Ship.City = "", "" },
			"empty billingAddress.city, shippingAddress.city: the sales posting requires them"},
		{"no email, no phone", func(r *eventRow) {
			r.customer.Email, r.data.Ship.Email, r.customer.Phone, r.data.Ship.Phone = "", "", "", ""
		},
			"empty billingAddress.email, billingAddress.phone, shippingAddress.email, shippingAddress.phone"},
		{"no payment method", func(r *eventRow) { r.data.PaymentMethod = "" }, "empty paymentMethod"},
		{"no location", func(r *eventRow) { r.data.LocationCode = "" }, "empty locationCode"},
		{"no order time", func(r *eventRow) { r.data.OrderTime = "" }, "empty orderTime"},
		{"no sku code", func(r *eventRow) { r.data.Items[0].ChannelSkuCode = "" }, "empty subOrderItems[0].channelSkuCode"},
		{"no lines", func(r *eventRow) { r.data.Items = nil }, "empty subOrderItems"},
		{"rowNo too large", func(r *eventRow) { r.data.Items[0].Line = lineIDs }, "subOrderItems[0]: rowNo 1000000 leaves no omsSubOrderItemId"},
		{"blank is empty", func(r *eventRow) { r.customer.Zip, r.data.Ship.Zip = " ", "" }, "empty billingAddress.zip, shippingAddress.zip"},
	} {
		r := postingRow()
		tc.change(&r)
		if _, err := render(r, partner.Profile{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRenderPayloadOfBefore: a payload stored before the ids became
// numbers (omsSubOrderId "SO0000001-1", no line) still renders, with
// numeric ids from the rows.
func TestRenderPayloadOfBefore(t *testing.T) {
	old := `{"messageId":0,"eventType":"SUBORDER_CREATE","eventTime":"2026-03-01T10:20:00Z","createdAt":"2026-03-01T10:20:00Z",
"orderCode":"SO0000001","parentOrderCode":"W1001","omsSubOrderId":"SO0000001-1","orderTime":"2026-03-01T10:15:00Z","orderType":"SO",
"locationCode":"101","channelName":"estore","channelType":"ONLINE","paymentMethod":"COD","isPriority":false,"shippingCharges":5.00,
"billingAddress":{"name":"José Müller","line1":"","line2":"","line3":"","city":"","state":"","zip":"","country":"","email":"j@example.com","phone":"8015555732"},
"shippingAddress":{"name":"José Müller","line1":"1621 Canyon Blvd","line2":"","line3":"","city":"Salt Lake City","state":"UT","zip":"84107","country":"US","email":"","phone":""},
"subOrderItems":[{"barcode":"073621000667","channelSkuCode":"SH-BLK-L","omsSubOrderItemId":"SO0000001-1-12","orderItemCodes":["SO0000001-12"],
"externalItemCodes":["W1001-12"],"orderedQuantity":3,"cancelledQuantity":0,"fulfilledQuantity":0,"hoppedQuantity":0,"sellingPricePerUnit":179.00,
"channelDiscount":17.90,"sellerDiscount":0.00,"giftChargePerUnit":0.00,"shippingCharge":0.00}]}`
	r := eventRow{id: 7, orderID: 1}
	if err := json.Unmarshal([]byte(old), &r.data); err != nil {
		t.Fatal(err)
	}
	e, err := render(r, partner.Profile{})
	if err != nil {
		t.Fatal(err)
	}
	if e.MessageID != 7 || e.OmsSubOrderID != 1 || e.SubOrderItems[0].OmsSubOrderItemID != 1000012 || e.ChannelType != "ERP" ||
		e.BillingAddress.Phone != "8015555732" || e.ShippingAddress.Phone != "8015555732" {
		t.Errorf("%+v", e)
	}
}

// TestClaimEventsHolds: an event with an empty mandatory field, one whose
// payload cannot be read and a later event of the same order stay ready
// and are returned; the others are claimed.
func TestClaimEventsHolds(t *testing.T) {
	ctx := context.Background()
	d := seed(t)
	order := func(key, city string) string {
		return fmt.Sprintf(`{"onlineReferenceNo": %q, "createdAt": "2026-03-01 10:00:00", "paymentMode": 1,
	  "customerName": "Ana Lima", "customerMobile": "555-0100", "customerEmail": "ana@example.com",
	  "shippingName": "Ana Lima", "shippingAddress1": "12 Elm St", "shippingPlace": %q, "shippingState": "CO",
	  "shippingCountry": "US", "shippingPincode": 80302, "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": 1}]}`, key, city)
	}
	path := filepath.Join(t.TempDir(), "o.json")
	os.WriteFile(path, []byte("["+order("W1", "Boulder")+","+order("W2", "")+","+order("W3", "Boulder")+"]"), 0o644)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Location: "101", Warehouse: "S01"}
	if res, _, err := Import(ctx, d, p, path, imports.Options{}); err != nil || res.Applied != 3 {
		t.Fatalf("import: %+v %v", res, err)
	}
	if _, err := d.ExecContext(ctx, `UPDATE order_messages SET payload = '{"eventType":' WHERE stream = 'events'
  AND order_id = (SELECT id FROM orders WHERE external_key = 'W3')`); err != nil {
		t.Fatal(err)
	}
	// W3's cancel could go out by itself, but not before its create.
	if _, err := Cancel(ctx, d, "SO0000003", 0, 0); err != nil {
		t.Fatal(err)
	}
	n, held, err := ClaimEvents(ctx, d, p, 99, 0, 0)
	if err != nil || n != 1 || len(held) != 3 {
		t.Fatalf("ClaimEvents: %d %+v %v; want 1 claimed, 3 held", n, held, err)
	}
	for i, want := range []string{"(SUBORDER_CREATE) of order SO0000002: empty billingAddress.city, shippingAddress.city",
		"(SUBORDER_CREATE) of order SO0000003: stored payload",
		"(SUBORDER_CANCEL) of order SO0000003: event 5 of the order is held, and it goes first"} {
		if !strings.Contains(held[i].String(), want) {
			t.Errorf("held[%d]: %s, want %s", i, held[i], want)
		}
	}
	var ready int
	d.QueryRowContext(ctx, `SELECT count(*) FROM order_messages WHERE stream = 'events' AND status = 'ready'`).Scan(&ready)
	if ready != 3 {
		t.Errorf("%d events ready after the claim, want the 3 held", ready)
	}
}
