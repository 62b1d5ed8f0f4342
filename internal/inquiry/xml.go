package inquiry

import (
	"encoding/xml"
	"io"

	"github.com/posbridge/posbridge/internal/format"
)

// The XML form of an inventory inquiry's answer (docs/inquiries.md,
// docs/schemas/inventory_inquiry.xsd). Names follow the item export:
// item_number, description, sku_code, retail_reference_number; flags are
// Y or N, amounts have a decimal point, empty values are left out. The
// SKU elements are the ones of an inventory inquiry response file.
type xmlInventory struct {
	XMLName               xml.Name `xml:"InventoryInquiry"`
	Item                  string   `xml:"item_number,attr,omitempty"`
	SKU                   string   `xml:"sku_code,attr,omitempty"`
	UPC                   string   `xml:"upc,attr,omitempty"`
	RetailRef             string   `xml:"retail_reference_number,attr,omitempty"`
	Warehouse             string   `xml:"warehouse,attr,omitempty"`
	ExcludeNonAllocatable string   `xml:"exclude_non_allocatable,attr"`
	Count                 int      `xml:"count,attr"`
	SKUs                  []XMLSKU `xml:"SKU"`
}

// XMLSKU is the SKU element of an inventory inquiry's XML answer: one SKU
// with its attributes, a Warehouse element per warehouse and the Total.
type XMLSKU struct {
	Item           string          `xml:"item_number,attr"`
	Description    string          `xml:"description,attr,omitempty"`
	ItemClass      string          `xml:"item_class,attr,omitempty"`
	Vendor         string          `xml:"vendor_number,attr,omitempty"`
	Status         string          `xml:"status,attr,omitempty"`
	SKU            string          `xml:"sku_code,attr,omitempty"`
	SKUDescription string          `xml:"sku_description,attr,omitempty"`
	Color          string          `xml:"color,attr,omitempty"`
	Size           string          `xml:"size,attr,omitempty"`
	Width          string          `xml:"width,attr,omitempty"`
	UPC            string          `xml:"upc,attr,omitempty"`
	RetailRef      string          `xml:"retail_reference_number,attr,omitempty"`
	Price          string          `xml:"price,attr,omitempty"`
	Warehouses     []XMLWarehouse  `xml:"Warehouse"`
	Total          XMLStockNumbers `xml:"Total"`
}

// XMLStockNumbers are the quantities of a Warehouse or Total element.
type XMLStockNumbers struct {
	OnHand      int64 `xml:"on_hand,attr"`
	Reserved    int64 `xml:"reserved,attr"`
	Available   int64 `xml:"available,attr"`
	Backordered int64 `xml:"backordered,attr"`
}

// XMLWarehouse is the stock of a SKU in one warehouse.
type XMLWarehouse struct {
	Warehouse   string `xml:"warehouse,attr"`
	Name        string `xml:"name,attr,omitempty"`
	Allocatable string `xml:"allocatable,attr"`
	XMLStockNumbers
}

func xmlNumbers(s Stock) XMLStockNumbers {
	return XMLStockNumbers{OnHand: s.OnHand, Reserved: s.Reserved, Available: s.Available, Backordered: s.Backordered}
}

// XMLSKUs returns the SKU elements of r.
func XMLSKUs(r *InventoryResult) []XMLSKU {
	out := make([]XMLSKU, 0, len(r.SKUs))
	for _, k := range r.SKUs {
		x := XMLSKU{Item: k.Item, Description: k.ItemDescription, ItemClass: k.ItemClass, Vendor: k.Vendor, Status: k.Status,
			SKU: k.SKU, SKUDescription: k.SKUDescription, Color: k.Color, Size: k.Size, Width: k.Width,
			UPC: k.UPC, RetailRef: k.RetailRef, Total: xmlNumbers(k.Total)}
		if k.Price != nil {
			x.Price = k.Price.String()
		}
		for _, s := range k.Warehouses {
			x.Warehouses = append(x.Warehouses, XMLWarehouse{Warehouse: s.Warehouse, Name: s.Name,
				Allocatable: format.FormatFlag(s.Allocatable), XMLStockNumbers: xmlNumbers(s)})
		}
		out = append(out, x)
	}
	return out
}

// WriteInventoryXML writes r as an InventoryInquiry document: the query
// as attributes, count (the number of SKU elements) and the SKUs.
func WriteInventoryXML(w io.Writer, r *InventoryResult) error {
	doc := xmlInventory{Item: r.Query.Item, SKU: r.Query.SKU, UPC: r.Query.UPC, RetailRef: r.Query.RetailRef,
		Warehouse: r.Query.Warehouse, ExcludeNonAllocatable: format.FormatFlag(r.Query.ExcludeNonAllocatable),
		Count: len(r.SKUs), SKUs: XMLSKUs(r)}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
