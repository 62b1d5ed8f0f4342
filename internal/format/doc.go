// Package format reads and writes the file formats of posbridge: the CSV and
// XML record readers shared by loads and imports (and Detect, which picks
// one by --format or the file name), and the value syntax of
// docs/formats.md (decimals, Y/N flags, dates), streaming throughout.
package format
