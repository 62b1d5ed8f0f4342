package export

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// TestMain stops the throwaway PostgreSQL server the tests may start. Run
// as the reading process of an export (besideRead: the fixture's options
// read beside the claim on SQLite, of every claim), the test binary
// serves it.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == BesideArg {
		if err := ServeBeside(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Every claim is read beside, however small.
	besideMin = 1
	pgtest.Main(m)
}
