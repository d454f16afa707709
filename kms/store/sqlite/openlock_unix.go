//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// lockPrepare takes an exclusive flock(2) lock on the directory dir of a
// database file, for Open to hold while it prepares the file (see
// Store.prepare), and returns the function that releases it. Processes
// that open a new file at once would otherwise switch it to WAL together,
// and the switch, the first write to the file, goes through a rollback
// journal that the others may take for a hot one and roll back under the
// writer's feet (SQLite then fails with an I/O error). The lock is on the
// directory, not the database file: closing a descriptor of the database
// file would drop SQLite's own POSIX locks on it.
func lockPrepare(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return func() { f.Close() }, nil // closing releases the lock
}
