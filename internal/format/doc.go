// Package format reads and writes the file formats of posbridge: the CSV and
// XML record readers shared by loads and imports, and the value syntax of
// FORMATS.md (decimals, Y/N flags, dates), streaming throughout.
package format
