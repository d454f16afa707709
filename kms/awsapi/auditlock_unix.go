//go:build unix

package awsapi

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f (released when f is closed), so
// that two servers never append to one audit log. It returns
// errLogInUse if another process holds it; other errors mean the file
// system cannot lock.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLogInUse
	}
	return err
}
