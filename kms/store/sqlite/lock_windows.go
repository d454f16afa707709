package sqlite

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockFile waits for a LockFileEx lock on the first byte of f: shared or
// exclusive.
func lockFile(f *os.File, shared bool) error {
	var flags uint32
	if !shared {
		flags = windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, new(windows.Overlapped))
}
