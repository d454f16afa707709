package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/envelopekms/envelope/kms"
)

// LockName is the file, beside the database file, whose lock is the store's
// creation lock ([Store.LockCreation]). It is empty, and never removed.
const LockName = "keystore.lock"

var _ kms.CreationLocker = (*Store)(nil)

// LockCreation implements [kms.CreationLocker] with a file lock (flock(2),
// LockFileEx on Windows) on the file LockName in the database's directory:
// exclusive, or shared when shared is set. The lock belongs to the open
// file, so the system releases it when its process dies. It waits until the
// lock is granted or ctx ends; a lock granted after ctx ended is released at
// once.
//
// A shared lock is skipped (unlock does nothing) when the lock file does
// not exist and cannot be made, as on a read-only file system, where no
// store can be created either.
func (s *Store) LockCreation(ctx context.Context, shared bool) (unlock func(), err error) {
	path := filepath.Join(s.dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		var rerr error
		f, rerr = os.Open(path)
		if rerr != nil {
			if shared && errors.Is(rerr, fs.ErrNotExist) {
				return func() {}, nil
			}
			return nil, fmt.Errorf("sqlite: creation lock: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- lockFile(f, shared) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sqlite: creation lock %s: %v", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// Release the lock when it comes, if it does.
		go func() {
			<-done
			f.Close()
		}()
		return nil, ctx.Err()
	}
}
