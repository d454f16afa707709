//go:build !unix

package sqlite

// setUmask reports that this platform has no umask.
func setUmask(int) (old int, ok bool) { return 0, false }
