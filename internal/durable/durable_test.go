//go:build unix

package durable

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteNew(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteNew(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "data" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644 whatever the umask", st.Mode().Perm())
	}
	// An existing file is refused and left as it was.
	err = WriteNew(p, []byte("other"), 0o600)
	if !errors.Is(err, os.ErrExist) || !CreateFailed(err) {
		t.Fatalf("over an existing file: %v, want ErrExist from the create step", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "data" {
		t.Fatalf("the existing file became %q", b)
	}
	// A missing directory: a create failure, nothing left.
	err = WriteNew(filepath.Join(dir, "no", "f"), nil, 0o600)
	if !errors.Is(err, os.ErrNotExist) || !CreateFailed(err) {
		t.Fatalf("in a missing directory: %v", err)
	}
	if CreateFailed(nil) || CreateFailed(errors.New("x")) {
		t.Fatal("CreateFailed of a nil or foreign error")
	}
	if err := SyncDir(dir); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "no")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}
