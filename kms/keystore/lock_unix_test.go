//go:build unix

package keystore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// holdLock takes the keystore's creation lock in dir, as a creating process
// would, until the test ends.
func holdLock(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, keystore.LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// TestCompleteKeystoreTakesNoLock: opening a keystore that exists never
// waits for the creation lock, so readers and servers do not queue behind
// each other (or behind a process stuck while holding it).
func TestCompleteKeystoreTakesNoLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id, blob := func() (string, []byte) {
		ks := open(t, dir, keystore.Options{DefaultAlias: "alias/default"})
		defer closeKS(t, ks)
		return newKey(t, ks)
	}()
	holdLock(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, opts := range []keystore.Options{{}, {MustExist: true}, {DefaultAlias: "alias/default"}} {
		ks, err := keystore.Open(ctx, dir, opts)
		if err != nil {
			t.Fatalf("Open(%+v) with the lock held elsewhere err = %v, want nil (no wait)", opts, err)
		}
		check(t, ks, id, blob)
		closeKS(t, ks)
	}
}

// TestOpenWaitsForCreation: an Open that finds the keystore being created
// (no root key check yet) waits for the creator's lock, and gives up when
// its context ends, creating nothing.
func TestOpenWaitsForCreation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	holdLock(t, dir)
	for _, opts := range []keystore.Options{{}, {MustExist: true}} {
		if opts.MustExist {
			// A database exists (the creator made it), still empty.
			st, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		ks, err := keystore.Open(ctx, dir, opts)
		cancel()
		if err == nil {
			ks.Close()
			t.Fatalf("Open(%+v) while another process holds the creation lock err = nil, want it to wait", opts)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Open(%+v) err = %v, want the context's deadline", opts, err)
		}
		if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a waiting Open(%+v) made root.key (%v)", opts, err)
		}
	}
}
