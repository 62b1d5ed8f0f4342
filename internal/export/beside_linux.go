package export

import (
	"os"
	"os/exec"
	"syscall"
)

const besideSupported = true

// besideCommand runs this very binary (/proc/self/exe), as it was named
// (a test binary dispatches on it), as the reading process; the reader
// dies with the thread that started it.
func besideCommand() *exec.Cmd {
	return &exec.Cmd{Path: "/proc/self/exe", Args: []string{os.Args[0], BesideArg},
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
}
