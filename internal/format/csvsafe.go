package format

import (
	"encoding/csv"
	"io"
	"strings"
)

// formulaStart holds the characters that make a spreadsheet (Excel,
// LibreOffice Calc, Google Sheets) read a CSV cell as a formula when they
// come first: = + - @, and tab and carriage return, which some of them skip
// before looking (OWASP, "CSV Injection").
const formulaStart = "=+-@\t\r"

// SpreadsheetSafe is the rule for CSV files meant for spreadsheets (rejects
// files, store exports, unmapped reports, --output csv): a cell that a
// spreadsheet would run as a formula gets a single quote in front, which
// makes it text. That is a cell that starts with = + - @, a tab or a
// carriage return, once any leading quotes are skipped, and is not a plain
// number (-12.50 stays a number). A cell that already starts with quotes
// before such a character gets one more, so that SpreadsheetValue gives
// every cell back exactly as it was.
func SpreadsheetSafe(cell string) string {
	if isPlainNumber(cell) || !startsFormula(strings.TrimLeft(cell, "'")) {
		return cell
	}
	return "'" + cell
}

// SpreadsheetValue undoes SpreadsheetSafe: a cell of one or more quotes
// followed by one of the formula characters loses its first quote. The CSV
// readers of uploads apply it, so a store export, or a rejects file fixed in
// a spreadsheet, reads back as the values that were written.
func SpreadsheetValue(cell string) string {
	if strings.HasPrefix(cell, "'") && startsFormula(strings.TrimLeft(cell, "'")) {
		return cell[1:]
	}
	return cell
}

func startsFormula(s string) bool {
	return s != "" && strings.IndexByte(formulaStart, s[0]) >= 0
}

// isPlainNumber is an optional sign, digits, and optionally a decimal point
// and more digits: what posbridge writes for quantities and amounts
// (-12.50, +3), which a spreadsheet reads as a number, not a formula.
func isPlainNumber(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	return allDigits(intPart) && (!dot || allDigits(frac))
}

// allDigits is one or more ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CSVWriter writes CSV records as encoding/csv does (RFC 4180 quoting, LF
// line ends) and, for a file meant for spreadsheets, puts every cell,
// header included, through SpreadsheetSafe.
type CSVWriter struct {
	w     *csv.Writer
	guard bool
}

// NewCSVWriter writes to w; guard says the file is meant for spreadsheets
// and the configuration's csv.formula_guard is on.
func NewCSVWriter(w io.Writer, guard bool) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), guard: guard}
}

// Write writes one record. The record is not changed.
func (c *CSVWriter) Write(rec []string) error {
	if c.guard {
		safe := make([]string, len(rec))
		for i, v := range rec {
			safe[i] = SpreadsheetSafe(v)
		}
		rec = safe
	}
	return c.w.Write(rec)
}

// Flush writes any buffered data to the underlying writer.
func (c *CSVWriter) Flush() { c.w.Flush() }

// Error reports any error of an earlier Write or Flush.
func (c *CSVWriter) Error() error { return c.w.Error() }
