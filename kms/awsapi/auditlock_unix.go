//go:build unix

package awsapi

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f (released when f is closed), so
// that two servers never append to one audit log.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
