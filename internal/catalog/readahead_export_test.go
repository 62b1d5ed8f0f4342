package catalog

// ReadAheadOff makes reloads read their stored rows on the load's
// connection until the returned function is called, to compare the
// read-ahead with it.
func ReadAheadOff() (restore func()) {
	readAheadOff = true
	return func() { readAheadOff = false }
}
