package format_test

import (
	"testing"

	"github.com/posbridge/posbridge/internal/format"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		path, kind, want, err string
	}{
		{"items.csv", "", format.CSV, ""},
		{"items.xml", "", format.XML, ""},
		{"items.XML", format.Auto, format.XML, ""},
		{"dir.xml/items", format.Auto, format.CSV, ""},
		{"items.txt", format.Auto, format.CSV, ""},
		{"items.xml", format.CSV, format.CSV, ""},
		{"items.csv", format.XML, format.XML, ""},
		{"items.csv", "json", "", `unknown format "json": want auto, csv or xml`},
	}
	for _, tt := range tests {
		got, err := format.Detect(tt.path, tt.kind)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("Detect(%q, %q) = %q, %v; want %q, %q", tt.path, tt.kind, got, err, tt.want, tt.err)
		}
	}
}
