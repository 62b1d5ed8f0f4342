package partner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/format"
)

// DefaultMaxField is the length limit, in characters, of a partner's text
// field that no export format limits, when the caller has none: the
// default of load.max_field_length.
const DefaultMaxField = 1000

// FieldError is a value of a partner's JSON record that fails
// format.CheckText. Path names it as the partner wrote it
// (salesOrder.orderItems[1].itemName), Key is its own key (itemName).
type FieldError struct {
	Path, Key string
	Err       error
}

func (e *FieldError) Error() string { return e.Path + " " + e.Err.Error() }

// CheckFields puts the values of a partner's JSON record that a reader
// keeps through format.CheckText before the record is decoded:
// encoding/json would silently replace invalid UTF-8 with U+FFFD, and
// would hand on a NUL (\u0000) or a name of megabytes. limit gives the
// length limit of a key's values (the key in lower case): above 0 that
// limit, 0 maxLen (DefaultMaxField when maxLen is 0), below 0 a value the
// reader does not keep, which is only checked to be valid UTF-8 like
// every key (nil: every value is kept, with maxLen). A string or number
// is checked trimmed, as the readers trim it. The first bad value is a
// *FieldError; invalid UTF-8 that no value holds, or a record that is not
// JSON, names the record. Structure (types, duplicate keys) is the
// readers' business.
func CheckFields(raw []byte, maxLen int, limit func(key string) int) error {
	if maxLen <= 0 {
		maxLen = DefaultMaxField
	}
	bad := -1
	if !utf8.Valid(raw) {
		bad = invalidAt(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		path   string
		name   string // the key the container is the value of
		object bool
		key    string // an object: its last key, as written
		expect bool   // an object: the next token is a key
		index  int    // an array: the next element's index
	}
	var stack []*frame
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the record is not valid JSON: %v", err)
		}
		// The token's bytes run to the decoder's offset; start may lie
		// before a separator, which holds no text.
		hit := bad >= 0 && int(start) <= bad && bad < int(dec.InputOffset())
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			k, _ := tok.(string)
			top.key, top.expect = k, false
			where := "the record"
			if top.path != "" {
				where = top.path
			}
			if hit {
				return &FieldError{Path: where, Key: k, Err: errors.New("has a key that is not valid UTF-8")}
			}
			continue
		}
		// A value: its path and key as the partner wrote them.
		path, key := "", ""
		switch {
		case top == nil:
		case top.object:
			key, path = top.key, join(top.path, top.key)
			top.expect = true
		default:
			key, path = top.name, top.path+"["+strconv.Itoa(top.index)+"]"
			top.index++
		}
		var text string
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, &frame{path: path, name: key, object: v == '{', expect: v == '{'})
			continue
		case string:
			text = strings.TrimSpace(v)
		case json.Number:
			text = string(v)
		default:
			continue
		}
		if path == "" {
			path = "the record"
		}
		if hit {
			return &FieldError{Path: path, Key: key, Err: errors.New("is not valid UTF-8")}
		}
		n := 0
		if limit != nil {
			n = limit(strings.ToLower(key))
		}
		switch {
		case n < 0:
			continue // not kept: valid UTF-8 is all it needs
		case n == 0:
			n = maxLen
		}
		if err := format.CheckText(text, n); err != nil {
			return &FieldError{Path: path, Key: key, Err: err}
		}
	}
	if bad >= 0 {
		return errors.New("the record is not valid UTF-8")
	}
	return nil
}

// invalidAt is the offset of the first byte of b that is not valid UTF-8.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// Kept is a limit for CheckFields: the keys of JSON objects that the
// json tags of the structs vs name, at any depth, take maxLen; the others
// are not kept.
func Kept(vs ...any) func(key string) int {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				keys[strings.ToLower(name)] = true
			}
			walk(f.Type)
		}
	}
	for _, v := range vs {
		walk(reflect.TypeOf(v))
	}
	return func(key string) int {
		if keys[key] {
			return 0
		}
		return -1
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Quantity reads a whole number of units as partners write it
// (format.ParseQuantity: 5 or 5.0) within ±format.MaxQuantity; a number
// beyond it, however many digits it has, is a format.ErrRange error that
// gives the range.
func Quantity(s string) (int64, error) {
	q, err := format.ParseQuantity(s)
	if err != nil {
		return 0, err
	}
	return q, format.CheckQuantity(q)
}
