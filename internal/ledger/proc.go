package ledger

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Hostname is this machine's name as runs and locks record it.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// ProcessStart is the start time of process pid in clock ticks since boot
// (Linux /proc/PID/stat field 22), or "" where it cannot be read. With the
// pid it names one process even after the pid is reused.
func ProcessStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// Alive says whether the process that recorded host, pid and start is
// still running, and whether that could be known at all: a process of
// another host cannot be checked from here.
func Alive(host string, pid int, start string) (alive, known bool) {
	if host != Hostname() || pid <= 0 {
		return false, false
	}
	if start != "" {
		if now := ProcessStart(pid); now != "" && now != start {
			return false, true // the pid now belongs to another process
		}
	}
	if pid == os.Getpid() {
		return true, true
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false, true
	}
	return true, true
}
