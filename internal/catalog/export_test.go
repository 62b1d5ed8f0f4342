package catalog

// StageAlways makes every load go through the staging table until the
// returned function is called, to compare a direct first load with it.
func StageAlways() (restore func()) {
	stageAlways = true
	return func() { stageAlways = false }
}
