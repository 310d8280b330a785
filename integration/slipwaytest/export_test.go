package slipwaytest

// SetUpdate sets the -update flag's value for a test and returns a function
// that restores it.
func SetUpdate(v bool) (restore func()) {
	old := *update
	*update = v
	return func() { *update = old }
}
