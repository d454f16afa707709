//go:build unix

package sqlite

import "syscall"

// setUmask sets the process's file mode creation mask and returns the old
// one.
func setUmask(mask int) (old int, ok bool) { return syscall.Umask(mask), true }
