package partner

import (
	"errors"
	"strings"
)

// Kinds of partner profile: the dialect a partner speaks.
const (
	OMS         = "oms"          // the native OMS formats
	ExternalOMS = "external-oms" // absolute inventory, order events (docs/partners.md)
	StorePOS    = "store-pos"    // matrix items online, sales orders (docs/partners.md)
	WMS         = "wms"          // a warehouse system serving stores (docs/partners.md)
)

// SKU code sources of a partner: how a SKU is named in its files.
const (
	SKUCodeItem = "item" // our item and SKU codes
	SKUCodeUPC  = "upc"  // the SKU's UPC/EAN
	SKUCodeXref = "xref" // the partner's own code, from the cross reference (xref load); the default
)

// Time formats of partner messages.
const (
	TimeDocumented = "documented" // the shape the partner's documentation shows
	TimeISO8601    = "iso8601"    // YYYY-MM-DDThh:mm:ssZ
)

// ErrInvalid means a partner's configuration lacks what a command needs
// of it, or names a warehouse that is not loaded: the operator fixes the
// configuration (or loads the warehouse); its text is the one of every
// configuration problem.
var ErrInvalid = errors.New("invalid configuration")

// Profile is a configured partner: a system with a dialect of its own
// (partners.NAME in the configuration, docs/partners.md).
type Profile struct {
	// Name is the partner's name in the configuration; it goes into the
	// names of its files, folders, watermarks and cross references.
	Name string
	// Kind is the profile: OMS, ExternalOMS, StorePOS or WMS.
	Kind string
	// SKUCode says how the partner names SKUs: SKUCodeItem, SKUCodeUPC
	// or SKUCodeXref ("" too).
	SKUCode string
	// Location is the partner's code for the place it trades from (its
	// locationCode / locationId / warehouseId); Warehouse is ours.
	Location  string
	Warehouse string
	// Site is where its files go and come from; optional.
	Site string
	// Locations maps the partner's own ids of the places it trades from
	// to our warehouses (WarehouseFor).
	Locations map[string]string
	// WarehouseID is the partner's number of Warehouse (a WMS's
	// warehouseId), written in its inventory per warehouse.
	WarehouseID int64
	// GoodsOwnerID is the WMS goods owner the partner stands for
	// (goodsOwnerId); a message of another goods owner is refused. 0: any.
	GoodsOwnerID int64
	// TimeFormat is how times go out in the partner's JSON messages:
	// TimeDocumented (also "") or TimeISO8601.
	TimeFormat string
	// ChannelType goes into an external OMS's sales posting events
	// (channelType); empty means ERP.
	ChannelType string
	// Endpoints are the paths of the partner's API on its http site by
	// what goes there: order-events, orders, purchase-orders, ...
	Endpoints map[string]string
}

// WarehouseFor is our warehouse for the partner's place id: Warehouse for
// an empty id or for Location, the Locations entry for a mapped one (any
// letter case: YAML keys are read in lower case), and ok false for an id
// the partner's config does not map.
func (p Profile) WarehouseFor(id string) (warehouse string, ok bool) {
	id = strings.TrimSpace(id)
	if id == "" {
		return p.Warehouse, true
	}
	for k, w := range p.Locations {
		if strings.EqualFold(k, id) {
			return w, true
		}
	}
	if strings.EqualFold(id, p.Location) {
		return p.Warehouse, true
	}
	return "", false
}
