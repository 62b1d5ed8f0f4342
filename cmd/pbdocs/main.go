// Command pbdocs writes the man pages of posbridge, one per command
// (section 1), from the command tree: the same text as --help.
//
// Usage:
//
//	pbdocs -out DIR
//
// The date in the pages' header is SOURCE_DATE_EPOCH when set (make man
// sets it to the time of the last commit), so that the same tree gives the
// same pages; without it, today.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/posbridge/posbridge/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pbdocs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write the man pages to (created if missing)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: pbdocs -out DIR")
		return 2
	}
	date, err := sourceDate(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintln(stderr, "pbdocs:", err)
		return 2
	}
	if err := writeManPages(*out, date); err != nil {
		fmt.Fprintln(stderr, "pbdocs:", err)
		return 1
	}
	return 0
}

// sourceDate reads SOURCE_DATE_EPOCH (seconds since 1970); empty means now.
func sourceDate(epoch string) (time.Time, error) {
	if epoch == "" {
		return time.Now().UTC(), nil
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeManPages writes one page per available command into dir.
func writeManPages(dir string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.NewRootCommand()
	escaped := map[*pflag.Flag]bool{} // inherited flags are shared
	visit(root, func(c *cobra.Command) {
		// Without the tag cobra adds a HISTORY section naming itself.
		c.DisableAutoGenTag = true
		// cobra hands the help texts to a markdown renderer; the pages
		// must say what --help says.
		c.Long = markdown(c.Long)
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !escaped[f] {
				f.Usage = escapeMarkdown(f.Usage)
				escaped[f] = true
			}
		})
	})
	header := &doc.GenManHeader{Section: "1", Date: &date, Source: "posbridge", Manual: "posbridge manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("write man pages to %q: %w", dir, err)
	}
	return nil
}

// visit calls f for c and every command below it.
func visit(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		visit(sub, f)
	}
}

// markdown turns a help text into markdown that renders as the same text.
// A paragraph with an indented line (a list of columns, a command to type)
// keeps its lines, as a code block; the other paragraphs flow, with every
// character markdown would read as markup escaped.
func markdown(text string) string {
	paras := strings.Split(text, "\n\n")
	for i, p := range paras {
		if hasIndentedLine(p) {
			paras[i] = "```\n" + strings.Trim(p, "\n") + "\n```"
		} else {
			paras[i] = escapeMarkdown(p)
		}
	}
	return strings.Join(paras, "\n\n")
}

func hasIndentedLine(p string) bool {
	for _, line := range strings.Split(p, "\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			return true
		}
	}
	return false
}

// markupChars are the characters the markdown renderer of cobra's man
// pages (blackfriday) lets a backslash escape.
const markupChars = "\\`*_{}[]()#+-.!:|&<>~"

func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(markupChars, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
