package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// NewRootCommand returns posbridge's command tree for documentation, such
// as the man pages cmd/pbdocs writes: the same commands, help texts and
// flags as the binary, with no input or output streams behind them.
func NewRootCommand() *cobra.Command {
	return newRoot(newApp(strings.NewReader(""), io.Discard, io.Discard))
}
