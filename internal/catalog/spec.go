package catalog

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/format"
)

// column is one field of a row type, with its rules.
type column struct {
	name     string // CSV column and XML attribute
	col      string // staging and state column
	key      bool
	required bool
	typ      string // text, int, qty, decimal, flag, date
	max      int
	min      *int64
	def      string
	upper    bool
}

// plan is the list of columns of a row type.
type plan struct {
	cols []column
}

func newPlan(row any) plan {
	t := reflect.TypeOf(row)
	var p plan
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		c := column{name: f.Tag.Get("csv"), typ: "text"}
		c.col = c.name
		for _, opt := range strings.Split(f.Tag.Get("load"), ",") {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "key":
				c.key = true
			case "required":
				c.required = true
			case "type":
				c.typ = v
			case "max":
				c.max, _ = strconv.Atoi(v)
			case "min":
				n, _ := strconv.ParseInt(v, 10, 64)
				c.min = &n
			case "default":
				c.def = v
			case "col":
				c.col = v
			case "upper":
				c.upper = true
			case "":
			default:
				panic(fmt.Sprintf("%s.%s: unknown load tag option %q", t.Name(), f.Name, k))
			}
		}
		p.cols = append(p.cols, c)
	}
	return p
}

// names returns the CSV column names in struct order.
func (p plan) names() []string {
	out := make([]string, len(p.cols))
	for i, c := range p.cols {
		out[i] = c.name
	}
	return out
}

// nameOf returns the file column name of a staging column.
func (p plan) nameOf(col string) string {
	for _, c := range p.cols {
		if c.col == col {
			return c.name
		}
	}
	return col
}

// typeOf returns the type of the staging column col.
func (p plan) typeOf(col string) string {
	for _, c := range p.cols {
		if c.col == col {
			return c.typ
		}
	}
	return ""
}

// keyCols returns the staging columns of the record key.
func (p plan) keyCols() []string {
	var out []string
	for _, c := range p.cols {
		if c.key {
			out = append(out, c.col)
		}
	}
	return out
}

// stageDDL is the staging table: one column per field in struct order.
func (p plan) stageDDL(table string) string {
	var b strings.Builder
	// rec numbers the records in file order; src_line is where a record
	// starts, for messages (XML can hold several records on one line).
	b.WriteString("CREATE TEMP TABLE " + table + " (rec INTEGER PRIMARY KEY, src_line INTEGER NOT NULL")
	for _, c := range p.cols {
		aff := "TEXT"
		switch c.typ {
		case "int", "qty", "decimal", "flag":
			// 64 bits on PostgreSQL too (amounts are ten-thousandths).
			aff = "BIGINT"
		}
		fmt.Fprintf(&b, ", %q %s", c.col, aff)
	}
	b.WriteString(", action TEXT NOT NULL DEFAULT '')")
	return b.String()
}

// columnsOf maps a file's header onto the plan: the column of p each
// position of the header fills, -1 for a column p does not have. Names
// match as they did when gocsv mapped rows onto the row types: a header
// name is a column's name as it is, trimmed of spaces, or stripped of
// zero-width characters (which a header trimmed of spaces may still
// carry), so a load reads the same fields it always has.
func (p plan) columnsOf(header []string) []int {
	at := make([]int, len(header))
	for i, h := range header {
		at[i] = slices.IndexFunc(p.cols, func(c column) bool {
			return h == c.name || strings.TrimSpace(h) == c.name || stripZeroWidth(h) == c.name
		})
	}
	return at
}

// stripZeroWidth drops the zero-width characters gocsv ignored in header
// names: space, no-break space (a BOM), joiner and non-joiner.
func stripZeroWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\u200B', '\uFEFF', '\u200D', '\u200C':
			return -1
		}
		return r
	}, s)
}

// fill sets raw, one field per column of the plan, from the fields of a
// row in the order of the header that at (columnsOf) maps. When two header
// columns fill the same field, the later one's value is the field's; a
// field no column fills is empty.
func fill(raw []string, at []int, fields []string) {
	clear(raw)
	for j, v := range fields[:min(len(fields), len(at))] {
		if c := at[j]; c >= 0 {
			raw[c] = v
		}
	}
}

// convert validates the fields of one row, in plan order (fill), and
// returns the staged values in plan order, or every problem found.
func (p plan) convert(fields []string, maxLen int, dst []any) ([]any, []string) {
	var problems []string
	for i, c := range p.cols {
		raw := strings.TrimSpace(fields[i])
		if err := format.CheckText(raw, 0); err != nil {
			problems = append(problems, fmt.Sprintf("field %s %v", c.name, err))
			dst = append(dst, nil)
			continue
		}
		if raw == "" {
			raw = c.def
		}
		if raw == "" {
			if c.required {
				problems = append(problems, fmt.Sprintf("field %s is required", c.name))
			}
			if c.typ == "text" {
				dst = append(dst, "")
			} else {
				dst = append(dst, nil)
			}
			continue
		}
		var v any
		var err error
		switch c.typ {
		case "text":
			limit := c.max
			if limit == 0 || limit > maxLen {
				limit = maxLen
			}
			v = raw
			if c.upper {
				v = strings.ToUpper(raw)
			}
			// raw passed CheckText above: only its length is left to check.
			if limit > 0 && len(raw) > limit {
				err = format.CheckText(raw, limit)
			}
		case "int", "qty":
			var n int64
			n, err = format.ParseInt(raw)
			if err == nil && c.typ == "qty" {
				err = format.CheckQuantity(n)
			}
			if err == nil && c.min != nil && n < *c.min {
				err = fmt.Errorf("must be at least %d", *c.min)
			}
			v = n
		case "decimal":
			var n int64
			n, err = format.ParseAmount(raw)
			if err == nil {
				err = format.CheckAmount(n)
			}
			if err == nil && c.min != nil && n < *c.min*format.AmountScale {
				err = fmt.Errorf("must be at least %d", *c.min)
			}
			v = n
		case "flag":
			var b bool
			b, err = format.ParseFlag(raw)
			if b {
				v = int64(1)
			} else {
				v = int64(0)
			}
		case "date":
			v, err = format.ParseDate(raw)
		}
		if err != nil {
			shown := raw
			if len(shown) > 40 {
				shown = shown[:40] + "..."
			}
			problems = append(problems, fmt.Sprintf("field %s %q: %v", c.name, shown, err))
			v = nil
		}
		dst = append(dst, v)
	}
	return dst, problems
}

// display writes a staged value back as file text, for reject files.
func (c column) display(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		switch c.typ {
		case "decimal":
			return format.FormatAmount(x)
		case "flag":
			return format.FormatFlag(x != 0)
		}
		return strconv.FormatInt(x, 10)
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}
