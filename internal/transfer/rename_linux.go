package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to in one step, failing with an error
// that matches fs.ErrExist when to exists. It returns
// errNoReplaceUnsupported where the filesystem cannot (NFS, old kernels).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoReplaceUnsupported
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// renameFile is os.Rename for a file, in one system call: os.Rename
// first looks at the target, for a folder renamed onto a folder. Like
// os.Rename it tries again when a signal interrupts the call (EINTR, on
// network and FUSE filesystems).
func renameFile(from, to string) error {
	for {
		err := unix.Renameat(unix.AT_FDCWD, from, unix.AT_FDCWD, to)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
		return nil
	}
}
