package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// listIDs returns the ids of the keys in s.
func listIDs(t *testing.T, s *Store) []string {
	t.Helper()
	var ids []string
	view(t, s, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		ids = keyIDs(keys)
		return err
	})
	return ids
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReadOnly(); err != nil {
		t.Errorf("ReadOnly() of a store made by Open = %v, want nil", err)
	}
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly(%q) err = %v, want nil", path, err)
	}
	if got := listIDs(t, ro); len(got) != 1 || got[0] != "k1" {
		t.Errorf("keys read = %q, want [k1]", got)
	}
	if err := ro.ReadOnly(); !errors.Is(err, ErrReadOnly) || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnlyFS) {
		t.Errorf("ReadOnly() = %v, want ErrReadOnly alone (the file system is fine)", err)
	}
	ctx := context.Background()
	// A transaction that only reads (as kms.New's root key check does)
	// succeeds.
	if err := ro.Update(ctx, func(tx kms.Tx) error { _, err := tx.GetKey("k1"); return err }); err != nil {
		t.Errorf("Update() that only reads err = %v, want nil", err)
	}
	writes := map[string]func(kms.Tx) error{
		"PutKey":      func(tx kms.Tx) error { return tx.PutKey(testKey("k2")) },
		"DeleteKey":   func(tx kms.Tx) error { return tx.DeleteKey("k1") },
		"PutMaterial": func(tx kms.Tx) error { return tx.PutMaterial("k1", 2, []byte("m")) },
		"PutAlias":    func(tx kms.Tx) error { return tx.PutAlias(testAlias("alias/x", "k1")) },
		"DeleteAlias": func(tx kms.Tx) error { return tx.DeleteAlias("alias/k1") },
		"PutMeta":     func(tx kms.Tx) error { return tx.PutMeta("m", []byte("v")) },
	}
	for name, w := range writes {
		if err := ro.Update(ctx, w); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Update(%s) err = %v, want ErrReadOnly", name, err)
		}
		// A function that swallows the refusal does not pass for done.
		if err := ro.Update(ctx, func(tx kms.Tx) error { w(tx); return nil }); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Update(%s, error ignored) err = %v, want ErrReadOnly", name, err)
		}
	}
	if err := ro.View(ctx, writes["PutKey"]); err == nil {
		t.Error("View(PutKey) err = nil, want an error")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the read-only store changed the database file")
	}
	if got := listIDs(t, reopen(t, path)); len(got) != 1 {
		t.Errorf("after the refused writes the keystore holds %q, want only k1", got)
	}
}

func reopen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOpenReadOnlySeesWAL: a read-only store beside a writer sees what the
// writer committed, though it is still in the write-ahead log only.
func TestOpenReadOnlySeesWAL(t *testing.T) {
	w, path := openTemp(t)
	update(t, w, func(tx kms.Tx) error { return putAll(tx, "k1") })
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly(%q) beside a writer err = %v, want nil", path, err)
	}
	defer ro.Close()
	update(t, w, func(tx kms.Tx) error { return putAll(tx, "k2") })
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the writer's -wal: %v, %v; the test needs frames in it", fi, err)
	}
	if got := listIDs(t, ro); len(got) != 2 {
		t.Errorf("the read-only store sees %q, want [k1 k2]", got)
	}
}

func TestOpenReadOnlyRefuses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, []byte("not a database, and long enough to be read as one: "+string(make([]byte, 600))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing.db"), fs.ErrNotExist},
		{empty, fs.ErrNotExist},
		{other, ErrNotKeystore},
	} {
		s, err := OpenReadOnly(tc.path)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("OpenReadOnly(%s) err = %v, want %v", filepath.Base(tc.path), err, tc.want)
		}
	}
	if fi, _ := os.Stat(empty); fi.Size() != 0 {
		t.Error("OpenReadOnly wrote to an empty file")
	}
}
