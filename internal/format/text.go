package format

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CheckText is the one check of a text field that came from outside, a
// load, an upload or a partner's message, before it is stored: valid
// UTF-8, no control character but tab, line feed and carriage return (a
// NUL or an escape would be written into every file the value goes to),
// and at most maxLen characters (0: no limit), the limit of the formats
// the value is exported in. The error says what is wrong, for a message
// that names the field: "is not valid UTF-8", "contains a NUL byte",
// "contains the control character U+001B", "is 1200 characters long, at
// most 1000 allowed".
func CheckText(v string, maxLen int) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("is not valid UTF-8")
	}
	if i := strings.IndexFunc(v, isControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		if r == 0 {
			return fmt.Errorf("contains a NUL byte")
		}
		return fmt.Errorf("contains the control character %U", r)
	}
	if maxLen > 0 && len(v) > maxLen {
		if n := utf8.RuneCountInString(v); n > maxLen {
			return fmt.Errorf("is %d characters long, at most %d allowed", n, maxLen)
		}
	}
	return nil
}

// isControl is a C0 control character other than tab, LF and CR, or DEL.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f
}
