//go:build !linux

package export

import "os/exec"

// besideSupported: a reader that dies with its run needs Linux's
// Pdeathsig; elsewhere the records are read after the claim.
const besideSupported = false

func besideCommand() *exec.Cmd { return nil }
