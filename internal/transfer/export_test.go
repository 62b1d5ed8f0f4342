package transfer

// SetKeepBodies sets what a push holds of a file's records between its
// passes, for a test of the file read again; it returns the undo.
func SetKeepBodies(n int64) (undo func()) {
	old := keepBodies
	keepBodies = n
	return func() { keepBodies = old }
}
