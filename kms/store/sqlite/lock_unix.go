//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// lockFile waits for an flock(2) lock on f: shared or exclusive.
func lockFile(f *os.File, shared bool) error {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
