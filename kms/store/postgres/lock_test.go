package postgres_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// lockChildEnv makes the test binary a process that takes the creation
// lock of the database at the URL it holds, says "locked", and waits to be
// killed.
const lockChildEnv = "ENVELOPE_PG_LOCK_CHILD"

func lockChild() int {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv(lockChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := s.LockCreation(ctx, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	return 0
}

// tryLock tries to take the lock for a while — short where the lock must
// be refused, long where it must be granted — and reports whether it got
// it (and releases it).
func tryLock(t *testing.T, s *postgres.Store, shared, granted bool) bool {
	t.Helper()
	wait := 200 * time.Millisecond
	if granted {
		wait = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	unlock, err := s.LockCreation(ctx, shared)
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("LockCreation() err = %v, want the lock or the context's end", err)
		}
		return false
	}
	unlock()
	return true
}

func TestLockCreation(t *testing.T) {
	url := storetest.PostgresURL(t)
	s1, s2 := openStore(t, url), openStore(t, url)
	ctx := t.Context()

	unlock, err := s1.LockCreation(ctx, false)
	if err != nil {
		t.Fatalf("LockCreation(exclusive) err = %v", err)
	}
	if tryLock(t, s2, false, false) || tryLock(t, s2, true, false) {
		t.Errorf("the lock was granted while another store held it exclusively")
	}
	// Waiting: granted once the holder unlocks.
	got := make(chan error, 1)
	go func() {
		u, err := s2.LockCreation(ctx, true)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	unlock() // a second call does nothing
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("LockCreation(shared) waiting for the holder err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("LockCreation(shared) not granted within 10s of the unlock")
	}

	// Shared locks go together, and keep out an exclusive one.
	u1, err := s1.LockCreation(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !tryLock(t, s2, true, true) {
		t.Errorf("a shared lock was refused beside another shared one")
	}
	if tryLock(t, s2, false, false) {
		t.Errorf("an exclusive lock was granted beside a shared one")
	}
	u1()

	// Another database's lock is another lock.
	other := openStore(t, storetest.PostgresURL(t))
	u1, err = s1.LockCreation(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if !tryLock(t, other, false, true) {
		t.Errorf("a lock on another database was refused")
	}
	u1()
}

// TestLockCreationProcessDies checks that the lock of a process that dies
// is released.
func TestLockCreationProcessDies(t *testing.T) {
	url := storetest.PostgresURL(t)
	s := openStore(t, url)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q, %v; want locked", line, err)
	}
	if tryLock(t, s, false, false) {
		t.Errorf("the lock was granted while a live process held it")
	}
	cmd.Process.Kill()
	cmd.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	unlock, err := s.LockCreation(ctx, false)
	if err != nil {
		t.Fatalf("LockCreation() after the holder was killed err = %v, want the lock", err)
	}
	unlock()
}
