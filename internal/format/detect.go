package format

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The file formats an input may have, as --format names them; Auto picks
// one by the file's name.
const (
	Auto = "auto"
	CSV  = "csv"
	XML  = "xml"
)

// Known reports whether kind names a format a --format flag takes: auto,
// csv or xml.
func Known(kind string) bool {
	switch kind {
	case Auto, CSV, XML:
		return true
	}
	return false
}

// Detect resolves the format of the input file at path: kind as given, or
// for auto (or "") XML when the name ends in .xml in any case and CSV
// otherwise. Loads and imports all pick their reader by this one rule.
func Detect(path, kind string) (string, error) {
	if kind == "" || kind == Auto {
		if strings.EqualFold(filepath.Ext(path), ".xml") {
			return XML, nil
		}
		return CSV, nil
	}
	if !Known(kind) {
		return "", fmt.Errorf("unknown format %q: want auto, csv or xml", kind)
	}
	return kind, nil
}
