package catalog

// The row types are the CSV formats of docs/formats.md section 2: the csv tag is
// the column name, the load tag its rules:
//
//	key       part of the record key (duplicates in one file are rejected)
//	required  must not be empty
//	type=T    text (default), int, qty, decimal, flag, date: qty is a
//	          quantity and decimal an amount, both within their ranges
//	          (docs/formats.md, "Numbers")
//	max=N     at most N characters (text)
//	min=N     at least N (int, qty, decimal)
//	default=V the value of an empty field
//	col=C     the staging column, when the CSV name is an SQL keyword
//	upper     stored in upper case (codes)

type warehouseRow struct {
	Warehouse   string `csv:"warehouse" load:"key,required,max=10"`
	Name        string `csv:"name" load:"required,max=60"`
	Allocatable string `csv:"allocatable" load:"type=flag,default=Y"`
	Store       string `csv:"store" load:"type=flag,default=N"`
}

type itemRow struct {
	Item           string `csv:"item" load:"key,required,max=20"`
	SKU            string `csv:"sku" load:"key,max=20"`
	Description    string `csv:"description" load:"required,max=120"`
	SKUDescription string `csv:"sku_description" load:"max=120"`
	ItemClass      string `csv:"item_class" load:"max=10"`
	Vendor         string `csv:"vendor" load:"max=20"`
	Status         string `csv:"status" load:"max=10"`
	Color          string `csv:"color" load:"max=30"`
	Size           string `csv:"size" load:"max=30"`
	Width          string `csv:"width" load:"max=30"`
	UPC            string `csv:"upc" load:"max=20"`
	RetailRef      string `csv:"retail_ref" load:"max=30"`
	Price          string `csv:"price" load:"type=decimal,min=0"`
	Cost           string `csv:"cost" load:"type=decimal,min=0"`
}

type vendorRow struct {
	Vendor     string `csv:"vendor" load:"key,required,max=20"`
	Name       string `csv:"name" load:"required,max=60"`
	Address1   string `csv:"address1" load:"max=60"`
	Address2   string `csv:"address2" load:"max=60"`
	City       string `csv:"city" load:"max=40"`
	State      string `csv:"state" load:"max=20"`
	PostalCode string `csv:"postal_code" load:"max=20"`
	Country    string `csv:"country" load:"max=3"`
	Contact    string `csv:"contact" load:"max=60"`
	Email      string `csv:"email" load:"max=120"`
	Phone      string `csv:"phone" load:"max=30"`
}

type customerRow struct {
	Customer      string `csv:"customer" load:"key,required,max=20"`
	AltCustomer   string `csv:"alt_customer" load:"max=30"`
	CustomerClass string `csv:"customer_class" load:"max=10"`
	FirstName     string `csv:"first_name" load:"max=60"`
	LastName      string `csv:"last_name" load:"max=60"`
	CompanyName   string `csv:"company_name" load:"max=60"`
	Address1      string `csv:"address1" load:"max=60"`
	Address2      string `csv:"address2" load:"max=60"`
	City          string `csv:"city" load:"max=40"`
	State         string `csv:"state" load:"max=20"`
	PostalCode    string `csv:"postal_code" load:"max=20"`
	Country       string `csv:"country" load:"max=3"`
	Email         string `csv:"email" load:"max=120"`
	Phone         string `csv:"phone" load:"max=30"`
	EmailOptIn    string `csv:"email_opt_in" load:"type=flag,default=N"`
}

type invoiceRow struct {
	Invoice     string `csv:"invoice" load:"key,required,max=20"`
	Order       string `csv:"order" load:"required,max=20,col=order_no"`
	Customer    string `csv:"customer" load:"required,max=20"`
	InvoiceType string `csv:"invoice_type" load:"max=1,upper,default=I"`
	InvoiceDate string `csv:"invoice_date" load:"required,type=date"`
	Line        string `csv:"line" load:"key,required,type=int,min=1,col=line_no"`
	Item        string `csv:"item" load:"required,max=20"`
	SKU         string `csv:"sku" load:"max=20"`
	Quantity    string `csv:"quantity" load:"required,type=qty"`
	UnitPrice   string `csv:"unit_price" load:"required,type=decimal"`
	Discount    string `csv:"discount" load:"type=decimal"`
	Tax         string `csv:"tax" load:"type=decimal"`
	Freight     string `csv:"freight" load:"type=decimal"`
}

type inventoryRow struct {
	Item      string `csv:"item" load:"key,required,max=20"`
	SKU       string `csv:"sku" load:"key,max=20"`
	Warehouse string `csv:"warehouse" load:"key,required,max=10"`
	Location  string `csv:"location" load:"key,max=20"`
	OnHand    string `csv:"on_hand" load:"required,type=qty"`
	Reserved  string `csv:"reserved" load:"type=qty,min=0,default=0"`
	Threshold string `csv:"threshold" load:"type=qty,min=0"`
}
