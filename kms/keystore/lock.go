package keystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// lockWait bounds how long Open waits for another process creating the
// keystore; creating one takes well under a second.
const lockWait = 2 * time.Minute

// lock takes the keystore's creation lock in dir: exclusive to create the
// keystore, shared to wait for a creation in progress without creating.
// The returned function releases it. The lock belongs to the open file, so
// the system releases it when its process dies.
//
// A shared lock is skipped when the lock file cannot be made (a read-only
// file system, on which no keystore can be created either).
func lock(ctx context.Context, dir string, shared bool) (unlock func(), err error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		var rerr error
		f, rerr = os.Open(path)
		if rerr != nil {
			if shared && errors.Is(rerr, fs.ErrNotExist) {
				return func() {}, nil
			}
			return nil, fmt.Errorf("creation lock: %v", err)
		}
	}
	wait, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lockFile(f, shared) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("creation lock %s: %v", path, err)
		}
		return func() { f.Close() }, nil
	case <-wait.Done():
		// Release the lock when it comes, if it does.
		go func() {
			<-done
			f.Close()
		}()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("another process has been creating the keystore for %v (it holds the lock on %s); if it is stuck, stop it", lockWait, path)
	}
}
