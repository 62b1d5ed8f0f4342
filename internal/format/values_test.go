package format_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/format"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // substring of the error; "" means no error
	}{
		{in: "12.50", want: 125000},
		{in: "12.5", want: 125000},
		{in: "12", want: 120000},
		{in: "0", want: 0},
		{in: "0.0125", want: 125},
		{in: "0.0001", want: 1},
		{in: "3.0", want: 30000},
		{in: "-3", want: -30000},
		{in: "-0.0001", want: -1},
		{in: "+7.25", want: 72500},
		{in: "-0", want: 0},
		{in: "007.10", want: 71000},
		{in: "0000000000000012.50", want: 125000}, // zero-padded fixed-width extracts: leading zeros are not size
		{in: "99999999999999.9999", want: 999999999999999999},
		{in: "-99999999999999.9999", want: -999999999999999999},

		{in: "1.23456", wantErr: "more than 4 decimal places"},
		{in: "0.00001", wantErr: "more than 4 decimal places"},
		{in: "100000000000000", wantErr: "out of range: 100000000000000 is beyond ±99999999999.9999"},
		{in: "999999999999999999999999", wantErr: "out of range"},

		{in: "", wantErr: "empty"},
		{in: "-", wantErr: "not a number"},
		{in: "+", wantErr: "not a number"},
		{in: ".", wantErr: "not a number"},
		{in: "abc", wantErr: "not a decimal number"},
		{in: "12,50", wantErr: "not a decimal number"},
		{in: "1.2.3", wantErr: "not a decimal number"},
		{in: "1e5", wantErr: "not a decimal number"},
		{in: " 12", wantErr: "not a decimal number"},
		{in: "12 ", wantErr: "not a decimal number"},
		{in: "--1", wantErr: "not a decimal number"},
		{in: "+-1", wantErr: "not a decimal number"},
		{in: "0x10", wantErr: "not a decimal number"},
		{in: "١٢", wantErr: "not a decimal number"}, // Arabic-Indic digits are not digits here
		{in: "1.-5", wantErr: "not a decimal number"},
		{in: "NaN", wantErr: "not a decimal number"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := format.ParseAmount(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseAmount(%q) = %d, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAmount(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAmount(%q): unexpected error %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseAmount(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0.00"},
		{125000, "12.50"},
		{30000, "3.00"},
		{125, "0.0125"},
		{1, "0.0001"},
		{10, "0.001"},
		{123456, "12.3456"},
		{5000, "0.50"},
		{-30000, "-3.00"},
		{-1, "-0.0001"},
		{-125000, "-12.50"},
		{999999999999999999, "99999999999999.9999"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := format.FormatAmount(tt.in); got != tt.want {
				t.Fatalf("FormatAmount(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Every value ParseAmount can produce is written by FormatAmount in a form
// ParseAmount reads back to the same value.
func TestAmountRoundTrip(t *testing.T) {
	values := []int64{0, 1, -1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 10001, 125000, -125000,
		123456789, -987654321, 999999999999999999, -999999999999999999}
	for _, v := range values {
		s := format.FormatAmount(v)
		back, err := format.ParseAmount(s)
		if err != nil {
			t.Errorf("ParseAmount(FormatAmount(%d) = %q): %v", v, s, err)
			continue
		}
		if back != v {
			t.Errorf("ParseAmount(FormatAmount(%d) = %q) = %d", v, s, back)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "12", want: 12},
		{in: "-5", want: -5},
		{in: "+5", want: 5},
		{in: "007", want: 7},
		{in: strconv.FormatInt(math.MaxInt64, 10), want: math.MaxInt64},
		{in: strconv.FormatInt(math.MinInt64, 10), want: math.MinInt64},
		{in: "9223372036854775808", wantErr: "out of range: 9223372036854775808 is beyond ±1000000000"},
		{in: "-9223372036854775809", wantErr: "out of range"},
		{in: "", wantErr: "not a whole number"},
		{in: "1.0", wantErr: "not a whole number"},
		{in: "1e3", wantErr: "not a whole number"},
		{in: " 1", wantErr: "not a whole number"},
		{in: "1,000", wantErr: "not a whole number"},
		{in: "ten", wantErr: "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := format.ParseInt(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseInt(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseInt(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{in: "Y", want: true},
		{in: "y", want: true},
		{in: "yes", want: true},
		{in: "YES", want: true},
		{in: "true", want: true},
		{in: "TRUE", want: true},
		{in: "True", want: true},
		{in: "1", want: true},
		{in: "N", want: false},
		{in: "n", want: false},
		{in: "no", want: false},
		{in: "false", want: false},
		{in: "FALSE", want: false},
		{in: "0", want: false},
		{in: "", wantErr: true},
		{in: "maybe", wantErr: true},
		{in: "2", wantErr: true},
		{in: "T", wantErr: true},
		{in: " Y", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := format.ParseFlag(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFlag(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseFlag(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatFlag(t *testing.T) {
	if got := format.FormatFlag(true); got != "Y" {
		t.Errorf("FormatFlag(true) = %q, want Y", got)
	}
	if got := format.FormatFlag(false); got != "N" {
		t.Errorf("FormatFlag(false) = %q, want N", got)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"2024-01-05", true},
		{"2024-02-29", true}, // leap year
		{"1999-12-31", true},
		{"2023-02-29", false}, // not a leap year
		{"2024-13-01", false},
		{"2024-04-31", false},
		{"2024-1-5", false},
		{"05/01/2024", false},
		{"2024-01-05T00:00:00Z", false},
		{"20240105", false},
		{"", false},
		{" 2024-01-05", false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := format.ParseDate(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseDate(%q) = %q, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "YYYY-MM-DD") {
					t.Fatalf("ParseDate(%q) error %q should name the layout YYYY-MM-DD", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.in {
				t.Fatalf("ParseDate(%q) = %q, %v; want it unchanged", tt.in, got, err)
			}
		})
	}
}

func TestParseQuantity(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"5", 5, ""}, {"5.0", 5, ""}, {"-2.00", -2, ""}, {"0.0", 0, ""},
		{"5.5", 0, "fraction"}, {"5.", 0, "not a whole number"}, {".5", 0, "not a whole number"},
		{"5.0e1", 0, "not a whole number"}, {"abc", 0, "not a whole number"}, {"1.0.0", 0, "not a whole number"},
	} {
		got, err := format.ParseQuantity(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d, %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestRanges(t *testing.T) {
	if err := format.CheckQuantity(format.MaxQuantity); err != nil {
		t.Error(err)
	}
	if err := format.CheckQuantity(-format.MaxQuantity - 1); !errors.Is(err, format.ErrRange) {
		t.Errorf("CheckQuantity below the range: %v", err)
	}
	if err := format.CheckAmount(math.MaxInt64); !errors.Is(err, format.ErrRange) {
		t.Errorf("CheckAmount(MaxInt64): %v", err)
	}
	for _, c := range []struct {
		q, p, want int64
		err        bool
	}{
		{3, 125000, 375000, false},
		{-2, 125000, -250000, false},
		{format.MaxQuantity, 1_000_000, 1_000_000_000_000_000, true},
		{math.MaxInt64, math.MaxInt64, 0, true},
		{math.MinInt64, 1, 0, true},
		{0, math.MinInt64, 0, false},
	} {
		got, err := format.MulAmount(c.q, c.p)
		if c.err != (err != nil) || !c.err && got != c.want {
			t.Errorf("MulAmount(%d, %d) = %d, %v", c.q, c.p, got, err)
		}
	}
	if _, err := format.AddAmount(format.MaxAmount, 1); !errors.Is(err, format.ErrRange) {
		t.Errorf("AddAmount over the range: %v", err)
	}
	if s, err := format.AddQuantity(5, -7); err != nil || s != -2 {
		t.Errorf("AddQuantity(5, -7) = %d, %v", s, err)
	}
}

func TestCheckText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"Trail Runner 2, \"Storm\"\tedition\r\n", 0, ""},
		{"Zoë Ørsted", 10, ""},
		{"Zoë Ørsted", 9, "is 10 characters long, at most 9 allowed"},
		{"bad \xff byte", 0, "is not valid UTF-8"},
		{"nul\x00", 0, "contains a NUL byte"},
		{"esc\x1b[31m", 0, "contains the control character U+001B"},
		{"del\x7f", 0, "contains the control character U+007F"},
	} {
		err := format.CheckText(c.in, c.max)
		if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("CheckText(%q, %d) = %v, want %q", c.in, c.max, err, c.want)
		}
	}
}

// An Amount in JSON is a number with the text the tables show: never a
// string, never the stored ten-thousandths.
func TestAmountJSON(t *testing.T) {
	price := format.Amount(1299900)
	v := struct {
		Total format.Amount   `json:"total"`
		Tiny  format.Amount   `json:"tiny"`
		Neg   format.Amount   `json:"neg"`
		Price *format.Amount  `json:"price"`
		None  *format.Amount  `json:"none"`
		List  []format.Amount `json:"list"`
	}{Total: 2510000, Tiny: 125, Neg: -4113300, Price: &price, List: []format.Amount{0, format.MaxAmount}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"total":251.00,"tiny":0.0125,"neg":-411.33,"price":129.99,"none":null,"list":[0.00,99999999999.9999]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if n, ok := back["total"].(json.Number); !ok || n.String() != "251.00" {
		t.Errorf("total decodes as %#v, want the number 251.00", back["total"])
	}
	if got := fmt.Sprint(format.Amount(-125)); got != "-0.0125" {
		t.Errorf("Sprint = %q, want the table's text -0.0125", got)
	}
}
