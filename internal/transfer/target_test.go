package transfer

import (
	"net/url"
	"testing"
)

// A pull's remote is named as asked for: the endpoint's own query merged
// with the run's, and no "?" without a query.
func TestTarget(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		query    url.Values
		want     string
	}{
		{"/api/v1/purchaseOrders", nil, "/api/v1/purchaseOrders"},
		{"/api/v1/purchaseOrders", url.Values{"page": {"2"}}, "/api/v1/purchaseOrders?page=2"},
		{"/api/v1/purchaseOrders?goodsOwnerId=7", nil, "/api/v1/purchaseOrders?goodsOwnerId=7"},
		{"/api/v1/purchaseOrders?goodsOwnerId=7&page=9", url.Values{"page": {"2"}}, "/api/v1/purchaseOrders?goodsOwnerId=7&page=2"},
	} {
		got, err := target(c.endpoint, c.query)
		if err != nil || got.String() != c.want {
			t.Errorf("%s %v: %v, %v; want %s", c.endpoint, c.query, got, err, c.want)
		}
	}
	for _, bad := range []string{"api", "https://elsewhere.example/x", "//elsewhere.example/x"} {
		if _, err := target(bad, nil); err == nil {
			t.Errorf("%s: taken", bad)
		}
	}
}
