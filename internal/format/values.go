package format

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AmountScale is the number of stored units per 1.00: amounts are kept as
// integers in ten-thousandths so sums are exact.
const AmountScale = 10000

// ParseAmount parses a decimal with a dot and at most 4 places ("12.5",
// "-3", "0.0125") into ten-thousandths.
func ParseAmount(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	written, neg := s, false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, errors.New("not a number")
	}
	if hasDot && frac == "" && intPart == "" {
		return 0, errors.New("not a number")
	}
	// Fixed-width extracts pad with zeros; they do not make a number large.
	if trimmed := strings.TrimLeft(intPart, "0"); len(trimmed) < len(intPart) {
		intPart = trimmed
		if intPart == "" {
			intPart = "0"
		}
	}
	if len(frac) > 4 {
		return 0, errors.New("more than 4 decimal places")
	}
	if len(intPart) > 14 {
		// Far beyond every amount's range, and perhaps beyond 64 bits.
		return 0, fmt.Errorf("%w: %s is beyond ±%s", ErrRange, written, FormatAmount(MaxAmount))
	}
	var v int64
	for _, c := range intPart {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number (use digits and a dot, like 12.50)")
		}
		v = v*10 + int64(c-'0')
	}
	scale := int64(AmountScale)
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number (use digits and a dot, like 12.50)")
		}
		scale /= 10
		v = v*10 + int64(c-'0')
	}
	v *= scale
	if neg {
		v = -v
	}
	return v, nil
}

// FormatAmount writes ten-thousandths with an explicit decimal point and at
// least two places: 125000 is "12.50", 125 is "0.0125".
func FormatAmount(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v/AmountScale, 10) + "." + strings.TrimRight(strconv.FormatInt(AmountScale+v%AmountScale, 10)[1:], "0")
	if i := strings.IndexByte(s, '.'); len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Amount is a decimal kept in ten-thousandths, an amount of money or a
// percentage, as results carry it to their output. It prints as
// FormatAmount writes it, in tables and in JSON alike: 2510000 is 251.00,
// a JSON number, so that a reader of --output json sees the values the
// table shows.
type Amount int64

// String is the amount as tables show it.
func (a Amount) String() string { return FormatAmount(int64(a)) }

// MarshalJSON writes the amount as a JSON number with its decimal point.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// ParseInt parses a whole number such as a quantity.
func ParseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			// Beyond 64 bits, and so beyond every quantity's range.
			return 0, fmt.Errorf("%w: %s is beyond ±%d", ErrRange, s, MaxQuantity)
		}
		return 0, errors.New("not a whole number")
	}
	return v, nil
}

// ParseQuantity parses a whole number of units as partners write it: a
// whole number, or a decimal whose fraction is zero (5.0, -2.00: a WMS
// writes every quantity as a decimal). A real fraction (5.5) is an error:
// stock is counted in whole units.
func ParseQuantity(s string) (int64, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if !dot {
		return ParseInt(s)
	}
	if frac == "" || strings.Trim(frac, "0123456789") != "" || whole == "" || whole == "-" || whole == "+" {
		return 0, errors.New("not a whole number")
	}
	if strings.Trim(frac, "0") != "" {
		return 0, errors.New("not a whole number of units (a fraction)")
	}
	return ParseInt(whole)
}

// ParseFlag accepts Y/N, true/false, 1/0 in any case.
func ParseFlag(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "y", "yes", "true", "1":
		return true, nil
	case "n", "no", "false", "0":
		return false, nil
	}
	return false, errors.New("not a flag (use Y or N)")
}

// FormatFlag writes Y or N.
func FormatFlag(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// DateLayout is the layout of dates in every file.
const DateLayout = "2006-01-02"

// ParseDate checks a YYYY-MM-DD date and returns it unchanged.
func ParseDate(s string) (string, error) {
	if _, err := time.Parse(DateLayout, s); err != nil {
		return "", errors.New("not a valid date (use YYYY-MM-DD)")
	}
	return s, nil
}

// MaxRejectField is the most of one field a reject file repeats: a field
// of megabytes is rejected for its size, and copying it whole would only
// make the reject file as unreadable as the input.
const MaxRejectField = 64 << 10

// Clip returns fields with every field longer than MaxRejectField cut to
// that length and marked with the size it had.
func Clip(fields []string) []string {
	out := fields
	for i, f := range fields {
		if len(f) <= MaxRejectField {
			continue
		}
		if &out[0] == &fields[0] {
			out = append([]string(nil), fields...)
		}
		cut := MaxRejectField
		for cut > 0 && !utf8.RuneStart(f[cut]) {
			cut--
		}
		out[i] = f[:cut] + "...[cut: " + strconv.Itoa(len(f)) + " bytes]"
	}
	return out
}
