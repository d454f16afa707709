package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// The child of the file system tests runs scenario $ENVELOPE_SQLITE_FS_CHILD
// on the keystore in directory $ENVELOPE_SQLITE_FS_DIR, which the test has
// mounted read-only or on a full tmpfs in a private mount namespace, and
// expects the keys $ENVELOPE_SQLITE_FS_KEYS (comma-separated) in it.
const (
	fsChildEnv = "ENVELOPE_SQLITE_FS_CHILD"
	fsDirEnv   = "ENVELOPE_SQLITE_FS_DIR"
	fsKeysEnv  = "ENVELOPE_SQLITE_FS_KEYS"
)

func init() { children[fsChildEnv] = fsChild }

// needMountNS fails the test unless it can mount file systems in a private
// mount namespace: it needs root and unshare(1) from util-linux.
func needMountNS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a read-only bind mount and a small tmpfs in a private mount namespace: it needs root (euid %d) and unshare(1)", os.Geteuid())
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("this test mounts file systems in a private mount namespace: it needs unshare(1) from util-linux: %v", err)
	}
}

// inMountNS runs script with sh in a private mount namespace (nothing it
// mounts is seen outside), with this test binary as $1, and fails the test
// unless it exits 0.
func inMountNS(t *testing.T, script string, env ...string) string {
	t.Helper()
	needMountNS(t)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec", script, "sh", os.Args[0])
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private mount namespace: %v\nscript: %s\noutput:\n%s", err, script, out)
	}
	return string(out)
}

// makeKeystore makes a keystore holding keys ids in dir and closes it (no
// -wal or -shm file is left).
func makeKeystore(t *testing.T, dir string, ids ...string) string {
	t.Helper()
	path := filepath.Join(dir, "keystore.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		update(t, s, func(tx kms.Tx) error { return putAll(tx, id) })
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadOnlyFS: on a read-only file system, Open fails with
// ErrReadOnlyFS, and OpenReadOnly reads the keystore — whether the last
// process closed it (no -wal or -shm) or a process still has it open with
// transactions only in its write-ahead log.
func TestReadOnlyFS(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		dir := t.TempDir()
		makeKeystore(t, dir, "k1", "k2")
		if _, err := os.Stat(filepath.Join(dir, "keystore.db-wal")); err == nil {
			t.Fatal("a -wal file is left after Close; the test wants none")
		}
		out := inMountNS(t, `mount --bind "$D" "$D" && mount -o remount,bind,ro "$D" && exec "$1" -test.run='^$'`,
			"D="+dir, fsChildEnv+"=readonly", fsDirEnv+"="+dir, fsKeysEnv+"=k1,k2")
		t.Logf("child: %s", out)
	})
	t.Run("OpenElsewhere", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(filepath.Join(dir, "keystore.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k2") })
		if fi, err := os.Stat(filepath.Join(dir, "keystore.db-wal")); err != nil || fi.Size() == 0 {
			t.Fatalf("-wal: %v; the test wants frames in it", err)
		}
		out := inMountNS(t, `mount --bind "$D" "$D" && mount -o remount,bind,ro "$D" && exec "$1" -test.run='^$'`,
			"D="+dir, fsChildEnv+"=readonly", fsDirEnv+"="+dir, fsKeysEnv+"=k1,k2")
		t.Logf("child: %s", out)
	})
}

// TestFullDisk: on a full file system, Open fails with ErrDiskFull and
// OpenReadOnly reads the keystore; a store already open reads on, its
// writes fail with ErrDiskFull, and work again once space is freed.
func TestFullDisk(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		src := t.TempDir()
		makeKeystore(t, src, "k1", "k2")
		dir := t.TempDir()
		out := inMountNS(t, `mount -t tmpfs -o size=512k tmpfs "$D" && cp "$S/keystore.db" "$D/" && `+
			`{ dd if=/dev/zero of="$D/filler" bs=4k 2>/dev/null || true; } && exec "$1" -test.run='^$'`,
			"D="+dir, "S="+src, fsChildEnv+"=full", fsDirEnv+"="+dir, fsKeysEnv+"=k1,k2")
		t.Logf("child: %s", out)
	})
	t.Run("Open", func(t *testing.T) {
		dir := t.TempDir()
		out := inMountNS(t, `mount -t tmpfs -o size=512k tmpfs "$D" && exec "$1" -test.run='^$'`,
			"D="+dir, fsChildEnv+"=fill", fsDirEnv+"="+dir)
		t.Logf("child: %s", out)
	})
}

// fsChild runs the scenario of a file system test, printing what fails.
func fsChild() int {
	dir := os.Getenv(fsDirEnv)
	path := filepath.Join(dir, "keystore.db")
	var want []string
	if k := os.Getenv(fsKeysEnv); k != "" {
		want = strings.Split(k, ",")
	}
	var err error
	switch os.Getenv(fsChildEnv) {
	case "readonly":
		err = readOnlyScenario(path, ErrReadOnlyFS, want)
	case "full":
		err = readOnlyScenario(path, ErrDiskFull, want)
	case "fill":
		err = fillScenario(path)
	default:
		err = fmt.Errorf("unknown scenario %q", os.Getenv(fsChildEnv))
	}
	if err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// readOnlyScenario: Open fails with cause, OpenReadOnly reads the keys
// want, and its writes fail with ErrReadOnly and cause.
func readOnlyScenario(path string, cause error, want []string) error {
	if s, err := Open(path); err == nil {
		s.Close()
		return errors.New("Open() err = nil, want it to fail")
	} else if !errors.Is(err, cause) {
		return fmt.Errorf("Open() err = %v, want %v", err, cause)
	}
	s, err := OpenReadOnly(path)
	if err != nil {
		return fmt.Errorf("OpenReadOnly() err = %v, want nil", err)
	}
	defer s.Close()
	if err := s.ReadOnly(); !errors.Is(err, ErrReadOnly) || !errors.Is(err, cause) {
		return fmt.Errorf("ReadOnly() = %v, want ErrReadOnly and %v", err, cause)
	}
	ctx := context.Background()
	var got []string
	err = s.View(ctx, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		got = keyIDs(keys)
		if err != nil {
			return err
		}
		for _, id := range want {
			if _, err := tx.GetMaterial(id, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || !slices.Equal(got, want) {
		return fmt.Errorf("reading: keys %q, %v; want %q", got, err, want)
	}
	err = s.Update(ctx, func(tx kms.Tx) error { return tx.PutKey(testKey("new")) })
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, cause) || !strings.Contains(err.Error(), cause.Error()) {
		return fmt.Errorf("a write: %v, want ErrReadOnly and %v", err, cause)
	}
	return nil
}

// fillScenario: a store open on a file system that fills up reads on, its
// writes fail with ErrDiskFull, and it writes again once space is freed.
func fillScenario(path string) error {
	s, err := Open(path)
	if err != nil {
		return fmt.Errorf("Open() on the empty tmpfs: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx kms.Tx) error { return putAll(tx, "k1") }); err != nil {
		return err
	}
	filler := filepath.Join(filepath.Dir(path), "filler")
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return fmt.Errorf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()
	big := testKey("k2")
	big.Description = strings.Repeat("x", 256<<10) // more than the space the WAL has left
	err = s.Update(ctx, func(tx kms.Tx) error { return tx.PutKey(big) })
	if !errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnly) {
		return fmt.Errorf("a write on the full disk: %v, want ErrDiskFull", err)
	}
	var n int
	if err := s.View(ctx, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		n = len(keys)
		return err
	}); err != nil || n != 1 {
		return fmt.Errorf("reading on the full disk: %d keys, %v; want 1", n, err)
	}
	if err := os.Remove(filler); err != nil {
		return err
	}
	if err := s.Update(ctx, func(tx kms.Tx) error { return tx.PutKey(big) }); err != nil {
		return fmt.Errorf("a write once space was freed: %v, want nil", err)
	}
	return nil
}
