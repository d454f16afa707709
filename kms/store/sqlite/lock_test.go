package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLockCreation: the creation lock of stores on one database file, each
// with its own descriptor as separate processes would have: exclusive
// excludes everything, shared excludes only exclusive, and a lock whose wait
// was given up is released once it comes.
func TestLockCreation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keystore.db")
	stores := make([]*Store, 3)
	for i := range stores {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	lock := func(s *Store, shared bool) (func(), error) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		return s.LockCreation(ctx, shared)
	}
	mustLock := func(s *Store, shared bool) func() {
		t.Helper()
		unlock, err := s.LockCreation(t.Context(), shared)
		if err != nil {
			t.Fatalf("LockCreation(shared %v) err = %v", shared, err)
		}
		return unlock
	}
	mustWait := func(s *Store, shared bool) {
		t.Helper()
		unlock, err := lock(s, shared)
		if err == nil {
			unlock()
			t.Fatalf("LockCreation(shared %v) while held exclusively elsewhere: granted, want a wait", shared)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("LockCreation(shared %v) err = %v, want the context's deadline", shared, err)
		}
	}

	unlock := mustLock(stores[0], false)
	mustWait(stores[1], false)
	mustWait(stores[2], true)
	unlock()

	unlock1 := mustLock(stores[0], true)
	unlock2 := mustLock(stores[1], true)
	mustWait(stores[2], false)
	unlock1()
	unlock2()

	// stores[2] gave up waiting above; its lock, if it was granted in the
	// end, is released: an exclusive lock can be had.
	deadline := time.Now().Add(10 * time.Second)
	for {
		unlock, err := lock(stores[0], false)
		if err == nil {
			unlock()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an abandoned wait kept the lock: %v", err)
		}
	}
}
