package inquiry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Message types of request files (docs/formats.md, section 8); a
// response's type is the request's with RESPONSE after it.
const (
	TypeInventory = "CWINVENTORYINQUIRY"
	TypeSearch    = "CWCUSTOMERSEARCH"
	TypeHistory   = "CWCUSTOMERHISTORY"
	// TypeUnknown answers a file whose request could not be told.
	TypeUnknown = "CWINQUIRY"
	// TypeCustHistIn is Oracle's customer history request (page "Generic
	// Customer History API"), answered as a TypeHistory inquiry.
	TypeCustHistIn = "CWCustHistIn"
)

// Response statuses.
const (
	StatusOK       = "ok"
	StatusNotFound = "not_found"
	StatusError    = "error"
)

// MaxRequestSize caps a request file: a request is one element.
const MaxRequestSize = 1 << 20

// request is a request file as read.
type request struct {
	XMLName   xml.Name `xml:"Message"`
	Source    string   `xml:"source,attr"`
	Target    string   `xml:"target,attr"`
	Type      string   `xml:"type,attr"`
	RequestID string   `xml:"request_id,attr"`

	Inventory *struct {
		Item          string `xml:"item_number,attr"`
		SKU           string `xml:"sku_code,attr"`
		UPC           string `xml:"upc,attr"`
		RetailRef     string `xml:"retail_reference_number,attr"`
		Warehouse     string `xml:"warehouse,attr"`
		ExcludeNonAll string `xml:"exclude_non_allocatable,attr"`
	} `xml:"InventoryInquiry"`
	Search *struct {
		Customer    string `xml:"customer_number,attr"`
		AltCustomer string `xml:"alt_customer_number,attr"`
		LastName    string `xml:"last_name,attr"`
		FirstName   string `xml:"first_name,attr"`
		PostalCode  string `xml:"postal_code,attr"`
		Email       string `xml:"email,attr"`
		Phone       string `xml:"phone,attr"`
		Company     string `xml:"company_name,attr"`
		Exact       string `xml:"exact,attr"`
		Limit       string `xml:"limit,attr"`
		After       string `xml:"after,attr"`
	} `xml:"CustomerSearch"`
	History *struct {
		Customer    string `xml:"customer_number,attr"`
		AltCustomer string `xml:"alt_customer_number,attr"`
		Orders      string `xml:"orders,attr"`
		Order       string `xml:"order_number,attr"`
		Detail      string `xml:"detail,attr"`
	} `xml:"CustomerHistory"`
	// Others catches any other element: an unknown request, or the
	// request element of an Oracle message.
	Others []struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
	} `xml:",any"`

	// custHist is the request of a CWCustHistIn message, set by kind.
	custHist *custHistIn
}

// kind says which request the file holds, and checks there is one.
func (r *request) kind() (string, error) {
	if strings.EqualFold(r.Type, TypeCustHistIn) {
		return r.custHistKind()
	}
	var kinds []string
	if r.Inventory != nil {
		kinds = append(kinds, TypeInventory)
	}
	if r.Search != nil {
		kinds = append(kinds, TypeSearch)
	}
	if r.History != nil {
		kinds = append(kinds, TypeHistory)
	}
	for _, o := range r.Others {
		return "", fmt.Errorf("unknown request element <%s>: want one of InventoryInquiry, CustomerSearch, CustomerHistory", o.XMLName.Local)
	}
	switch len(kinds) {
	case 0:
		return "", errors.New("no request in the message: want one of InventoryInquiry, CustomerSearch, CustomerHistory")
	case 1:
	default:
		return "", fmt.Errorf("%d requests in one message: a request file holds one", len(kinds))
	}
	if r.Type != "" && !strings.EqualFold(r.Type, kinds[0]) {
		return kinds[0], fmt.Errorf("message type %q does not match its request (%s)", r.Type, kinds[0])
	}
	return kinds[0], nil
}

// fieldError names the attribute a problem is in.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return fmt.Sprintf("attribute %s: %s", e.field, e.msg) }
func (e *fieldError) Unwrap() error { return ErrQuery }

func flagAttr(field, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := format.ParseFlag(v)
	if err != nil {
		return false, &fieldError{field, err.Error()}
	}
	return b, nil
}

// intAttr reads a count (limit, orders) of at most max; the query checks
// the range of a number that fits in an int, and a longer one is out of
// that range too, not something other than a number.
func intAttr(field, v string, max int) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := format.ParseInt(strings.TrimSpace(v))
	switch {
	case errors.Is(err, format.ErrRange) || err == nil && (n > int64(max) || n < -int64(max)):
		return 0, &fieldError{field, fmt.Sprintf("%q: want 1 to %d", v, max)}
	case err != nil:
		return 0, &fieldError{field, fmt.Sprintf("%q is not a whole number", v)}
	}
	return int(n), nil
}

// answer runs the request and returns the response body and how many
// records it holds; company is the company posbridge answers for.
func (r *request) answer(ctx context.Context, d *db.DB, kind string, company int) (body any, count int, err error) {
	if r.custHist != nil {
		return r.custHist.answer(ctx, d, company)
	}
	switch kind {
	case TypeInventory:
		in := r.Inventory
		q := InventoryQuery{Item: in.Item, SKU: in.SKU, UPC: in.UPC, RetailRef: in.RetailRef, Warehouse: in.Warehouse}
		if q.ExcludeNonAllocatable, err = flagAttr("exclude_non_allocatable", in.ExcludeNonAll); err != nil {
			return nil, 0, err
		}
		res, err := Inventory(ctx, d, q)
		if err != nil {
			return nil, 0, err
		}
		return inventoryResponse(res), len(res.SKUs), nil
	case TypeSearch:
		in := r.Search
		q, err := NewCustomerQuery(map[string]string{"customer": in.Customer, "alt_customer": in.AltCustomer,
			"last_name": in.LastName, "first_name": in.FirstName, "postal_code": in.PostalCode, "email": in.Email,
			"phone": in.Phone, "company": in.Company})
		if err != nil {
			return nil, 0, err
		}
		q.After = in.After
		if q.Exact, err = flagAttr("exact", in.Exact); err != nil {
			return nil, 0, err
		}
		if q.Limit, err = intAttr("limit", in.Limit, MaxLimit); err != nil {
			return nil, 0, err
		}
		page, err := SearchCustomers(ctx, d, q)
		if err != nil {
			return nil, 0, err
		}
		return searchResponse(page), len(page.Customers), nil
	case TypeHistory:
		in := r.History
		q := HistoryQuery{Customer: in.Customer, AltCustomer: in.AltCustomer, Order: in.Order}
		if q.Orders, err = intAttr("orders", in.Orders, MaxOrders); err != nil {
			return nil, 0, err
		}
		if q.Detail, err = flagAttr("detail", in.Detail); err != nil {
			return nil, 0, err
		}
		res, err := History(ctx, d, q)
		if err != nil {
			return nil, 0, err
		}
		count := len(res.Orders)
		if res.Customer == nil {
			count = 0
		}
		return historyResponse(res), count, nil
	}
	return nil, 0, fmt.Errorf("%w: unknown request %s", ErrQuery, kind)
}

// RequestOptions say where request files go and how responses look.
type RequestOptions struct {
	// Responses is the folder of the response files.
	Responses string
	// Folders are where answered requests go (processed/ and error/ in
	// the request folder by default) and how old a file must be.
	Folders imports.Folders
	// Source and Company go into the response envelope.
	Source  string
	Company int
	// RunID is the run the ledger rows belong to (0: none recorded).
	RunID int64
}

// Outcome is what happened to one request file.
type Outcome struct {
	Request  string `json:"request"`
	Response string `json:"response,omitempty"`
	MovedTo  string `json:"moved_to,omitempty"`
	Type     string `json:"type,omitempty"`
	Status   string `json:"status"`
	Records  int    `json:"records"`
	// Error is what was wrong with the request (an error response was
	// written), or why the file was left in place.
	Error string `json:"error,omitempty"`
	// Waiting is set for a file left for the next run (too young).
	Waiting bool `json:"waiting,omitempty"`
}

// AnswerFolder answers every request file of folder in name order: it
// writes the response (atomically, replacing one of the same name), then
// moves the request to the processed folder, or to the error folder when
// the request was malformed (its response says why). A failure that is
// not the request's (the database, the disk) stops the run and leaves the
// request where it is for the next one: answering again is harmless.
func AnswerFolder(ctx context.Context, d *db.DB, folder string, o RequestOptions, each func(Outcome)) error {
	names, err := imports.Waiting(folder)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Responses, 0o750); err != nil {
		return fmt.Errorf("responses folder: %w", err)
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(folder, n)
		st, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // taken away meanwhile
		}
		if err == nil && o.Folders.Settling(path, st) {
			each(Outcome{Request: path, Waiting: true, Status: "waiting"})
			continue
		}
		out, err := answerFile(ctx, d, path, o)
		if errors.Is(err, errTaken) {
			// Another run (of this host or one sharing the folder) took
			// the request between the listing and now; it answers it.
			if o.Folders.Warn != nil {
				o.Folders.Warn(path + ": taken by another run, skipped")
			}
			continue
		}
		if err != nil {
			return err
		}
		each(out)
	}
	return nil
}

// errTaken is answerFile's error for a request another run took away.
var errTaken = errors.New("taken by another run")

// answerFile answers one request file; the error is a failure that is not
// the request's, or errTaken.
func answerFile(ctx context.Context, d *db.DB, path string, o RequestOptions) (Outcome, error) {
	out := Outcome{Request: path}
	data, readErr := readRequest(path)
	if imports.Taken(path, readErr) {
		return out, errTaken
	}
	var req request
	kind := TypeUnknown
	var body any
	var problem error
	switch {
	case readErr != nil:
		problem = readErr
	default:
		var k string
		var err error
		k, err = parseRequest(data, &req)
		if k != "" {
			kind = k
		}
		if err != nil {
			problem = err
			break
		}
		body, out.Records, err = req.answer(ctx, d, kind, o.Company)
		switch {
		case errors.Is(err, ErrQuery), errors.Is(err, ErrCursor):
			problem = err
		case err != nil:
			return out, fmt.Errorf("answer %s: %w", path, err)
		}
	}
	out.Type = kind
	env := envelope{Source: o.Source, Target: req.Source, Type: kind + "RESPONSE", Company: o.Company,
		Created: db.Now(), RequestID: req.RequestID, RequestFile: filepath.Base(path), Count: out.Records}
	switch {
	case problem != nil:
		env.Status = StatusError
		env.Count = 0
		env.Error = &responseError{Message: problem.Error()}
		var fe *fieldError
		var qe *QueryError
		switch {
		case errors.As(problem, &fe):
			env.Error.Field = fe.field
		case errors.As(problem, &qe):
			name := attrName
			if req.custHist != nil {
				name = custHistName
			}
			env.Error.Message = qe.Message(name)
			// The attributes at fault, when the message names few
			// enough to say which (not "one of seven").
			if len(qe.Fields) > 0 && len(qe.Fields) <= 2 {
				names := make([]string, len(qe.Fields))
				for i, f := range qe.Fields {
					names[i] = name(f)
				}
				env.Error.Field = strings.Join(names, ",")
			}
		}
		out.Error = env.Error.Message
		var se *xml.SyntaxError
		if errors.As(problem, &se) {
			env.Error.Line = se.Line
		}
	case out.Records == 0:
		env.Status = StatusNotFound
	default:
		env.Status = StatusOK
	}
	out.Status = env.Status
	env.Body = body

	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	out.Response = filepath.Join(o.Responses, base+".response.xml")
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(env); err != nil {
		return out, fmt.Errorf("write %s: %w", out.Response, err)
	}
	buf.WriteByte('\n')
	sum := sha256.Sum256(buf.Bytes())
	// Responses hold customer data: owner only.
	err := fsx.WriteAtomic(out.Response, 0o600, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return out, err
	}
	to := o.Folders.ProcessedDir(filepath.Dir(path))
	if problem != nil {
		to = o.Folders.ErrorDir(filepath.Dir(path))
	}
	if out.MovedTo, err = fsx.MoveInto(path, to); err != nil {
		if imports.Taken(path, err) {
			// Answered twice, the same answer: the other run moved it.
			return out, errTaken
		}
		return out, err
	}
	if o.RunID > 0 {
		inSum := sha256.Sum256(data)
		rejected := int64(0)
		if problem != nil {
			rejected = 1
		}
		if err := ledger.RecordFile(ctx, d, ledger.File{Direction: "in", Kind: "inquiry_request", Name: filepath.Base(path),
			Path: out.MovedTo, SHA256: hex.EncodeToString(inSum[:]), Size: int64(len(data)), Records: 1, Rejected: rejected,
			Status: out.Status, RunID: o.RunID}); err != nil {
			return out, err
		}
		if err := ledger.RecordFile(ctx, d, ledger.File{Direction: "out", Kind: "inquiry_response", Name: filepath.Base(out.Response),
			Path: out.Response, SHA256: hex.EncodeToString(sum[:]), Size: int64(buf.Len()), Records: int64(out.Records),
			Status: out.Status, RunID: o.RunID}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// parseRequest reads a request message into req and says which request
// it holds (the kind may be known even when the request is wrong).
func parseRequest(data []byte, req *request) (string, error) {
	if err := xml.Unmarshal(data, req); err != nil {
		return "", xmlProblem(err)
	}
	return req.kind()
}

// readRequest reads a request file of at most MaxRequestSize bytes.
func readRequest(path string) ([]byte, error) {
	data, err := fsx.ReadText(path, MaxRequestSize)
	switch {
	case errors.Is(err, fsx.ErrTooLarge):
		return nil, fmt.Errorf("request file is larger than %d bytes: a request is one element", MaxRequestSize)
	case err != nil:
		return nil, err
	case len(bytes.TrimSpace(data)) == 0:
		return nil, errors.New("request file is empty")
	}
	return data, nil
}

// xmlProblem words a decoding error of a request file.
func xmlProblem(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed XML: %w", err)
	}
	if strings.Contains(err.Error(), "expected element type <Message>") {
		return fmt.Errorf("not a request message: %v (the root element is Message)", err)
	}
	return fmt.Errorf("malformed request: %w", err)
}

// envelope is a response file.
type envelope struct {
	XMLName     xml.Name       `xml:"Message"`
	Source      string         `xml:"source,attr"`
	Target      string         `xml:"target,attr,omitempty"`
	Type        string         `xml:"type,attr"`
	Company     int            `xml:"company,attr"`
	Created     string         `xml:"created,attr"`
	RequestID   string         `xml:"request_id,attr,omitempty"`
	RequestFile string         `xml:"request_file,attr"`
	Status      string         `xml:"status,attr"`
	Count       int            `xml:"count,attr"`
	Error       *responseError `xml:"Error,omitempty"`
	Body        any
}

type responseError struct {
	Message string `xml:"message,attr"`
	Field   string `xml:"field,attr,omitempty"`
	Line    int    `xml:"line,attr,omitempty"`
}

func yn(b bool) string { return format.FormatFlag(b) }

type inventoryXML struct {
	XMLName xml.Name `xml:"InventoryInquiryResponse"`
	SKUs    []XMLSKU `xml:"SKU"`
}

func inventoryResponse(r *InventoryResult) inventoryXML { return inventoryXML{SKUs: XMLSKUs(r)} }

type xmlCustomer struct {
	XMLName       xml.Name `xml:"Customer"`
	Customer      string   `xml:"customer_number,attr"`
	AltCustomer   string   `xml:"alt_customer_number,attr,omitempty"`
	CustomerClass string   `xml:"customer_class,attr,omitempty"`
	FirstName     string   `xml:"first_name,attr,omitempty"`
	LastName      string   `xml:"last_name,attr,omitempty"`
	CompanyName   string   `xml:"company_name,attr,omitempty"`
	Address1      string   `xml:"address1,attr,omitempty"`
	Address2      string   `xml:"address2,attr,omitempty"`
	City          string   `xml:"city,attr,omitempty"`
	State         string   `xml:"state,attr,omitempty"`
	PostalCode    string   `xml:"postal_code,attr,omitempty"`
	Country       string   `xml:"country,attr,omitempty"`
	Email         string   `xml:"email,attr,omitempty"`
	Phone         string   `xml:"phone,attr,omitempty"`
	EmailOptIn    string   `xml:"email_opt_in,attr"`
}

func customerXML(c Customer) xmlCustomer {
	return xmlCustomer{Customer: c.Customer, AltCustomer: c.AltCustomer, CustomerClass: c.CustomerClass, FirstName: c.FirstName,
		LastName: c.LastName, CompanyName: c.CompanyName, Address1: c.Address1, Address2: c.Address2, City: c.City, State: c.State,
		PostalCode: c.PostalCode, Country: c.Country, Email: c.Email, Phone: c.Phone, EmailOptIn: yn(c.EmailOptIn)}
}

type searchXML struct {
	XMLName   xml.Name      `xml:"CustomerSearchResponse"`
	Next      string        `xml:"next,attr,omitempty"`
	Customers []xmlCustomer `xml:"Customer"`
}

func searchResponse(p *CustomerPage) searchXML {
	out := searchXML{Next: p.Next}
	for _, c := range p.Customers {
		out.Customers = append(out.Customers, customerXML(c))
	}
	return out
}

type xmlTotals struct {
	Merchandise string `xml:"merchandise_total,attr"`
	Discount    string `xml:"discount_total,attr"`
	Tax         string `xml:"tax_total,attr"`
	Freight     string `xml:"freight_total,attr"`
}

func totalsXML(t Totals) xmlTotals {
	return xmlTotals{t.Merchandise.String(), t.Discount.String(), t.Tax.String(), t.Freight.String()}
}

type xmlLine struct {
	Line      int    `xml:"line,attr"`
	Item      string `xml:"item_number,attr"`
	SKU       string `xml:"sku_code,attr,omitempty"`
	Quantity  int64  `xml:"quantity,attr"`
	UnitPrice string `xml:"unit_price,attr"`
	Extended  string `xml:"extended_price,attr"`
	Discount  string `xml:"discount,attr"`
	Tax       string `xml:"tax,attr"`
}

type xmlInvoice struct {
	Invoice string `xml:"invoice_number,attr"`
	Type    string `xml:"invoice_type,attr"`
	Date    string `xml:"invoice_date,attr"`
	xmlTotals
	Total string    `xml:"invoice_total,attr"`
	Lines []xmlLine `xml:"Line"`
}

type xmlOrder struct {
	Order     string `xml:"order_number,attr"`
	FirstDate string `xml:"first_date,attr"`
	LastDate  string `xml:"last_date,attr"`
	xmlTotals
	Total    string       `xml:"order_total,attr"`
	Invoices []xmlInvoice `xml:"Invoice"`
}

type historyXML struct {
	XMLName  xml.Name     `xml:"CustomerHistoryResponse"`
	Customer *xmlCustomer `xml:"Customer"`
	Orders   []xmlOrder   `xml:"Order"`
}

func historyResponse(r *HistoryResult) historyXML {
	out := historyXML{}
	if r.Customer != nil {
		c := customerXML(*r.Customer)
		out.Customer = &c
	}
	for _, o := range r.Orders {
		xo := xmlOrder{Order: o.Order, FirstDate: o.FirstDate, LastDate: o.LastDate, xmlTotals: totalsXML(o.Totals), Total: o.Total.String()}
		for _, inv := range o.Invoices {
			xi := xmlInvoice{Invoice: inv.Invoice, Type: inv.Type, Date: inv.Date, xmlTotals: totalsXML(inv.Totals), Total: inv.Total.String()}
			for _, l := range inv.Lines {
				xi.Lines = append(xi.Lines, xmlLine{Line: l.Line, Item: l.Item, SKU: l.SKU, Quantity: l.Quantity,
					UnitPrice: l.UnitPrice.String(), Extended: l.Extended.String(), Discount: l.Discount.String(), Tax: l.Tax.String()})
			}
			xo.Invoices = append(xo.Invoices, xi)
		}
		out.Orders = append(out.Orders, xo)
	}
	return out
}

// attrName is the attribute of a request file that gives a query input.
func attrName(in string) string {
	switch in {
	case "item":
		return "item_number"
	case "sku":
		return "sku_code"
	case "retail_ref":
		return "retail_reference_number"
	case "customer":
		return "customer_number"
	case "alt_customer":
		return "alt_customer_number"
	case "company":
		return "company_name"
	case "order":
		return "order_number"
	}
	return in
}
