//go:build !linux

package transfer

import "os"

// renameNoReplace has no one-step form here: link and unlink are used.
func renameNoReplace(from, to string) error { return errNoReplaceUnsupported }

// renameFile is os.Rename.
func renameFile(from, to string) error { return os.Rename(from, to) }
