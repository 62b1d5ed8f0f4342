//go:build !linux

package transfer

// renameNoReplace has no one-step form here: link and unlink are used.
func renameNoReplace(from, to string) error { return errNoReplaceUnsupported }
