package keystore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/kms/keystore"
)

func openForAudit(t *testing.T, dir string) *keystore.Keystore {
	t.Helper()
	ks, err := keystore.Open(context.Background(), dir, keystore.Options{})
	if err != nil {
		t.Fatalf("keystore.Open(%s) err = %v", dir, err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// keystoreFiles returns the bytes of every file of the keystore directory.
func keystoreFiles(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestAuditKeySealed reproduces issue 9 item 5: the audit key lay
// unsealed beside the log. It is made on first use and kept in the
// keystore sealed under the root key: no file of the keystore holds it in
// the clear, and every open returns the same key.
func TestAuditKeySealed(t *testing.T) {
	dir := t.TempDir()
	ks := openForAudit(t, dir)
	ctx := context.Background()
	if _, err := ks.StoredAuditKey(ctx); !errors.Is(err, keystore.ErrNoAuditKey) {
		t.Fatalf("StoredAuditKey of a new keystore err = %v, want ErrNoAuditKey", err)
	}
	key, migrated, err := ks.AuditKey(ctx, filepath.Join(dir, keystore.AuditKeyFileName))
	if err != nil || len(key) != 32 || migrated || bytes.Equal(key, make([]byte, 32)) {
		t.Fatalf("AuditKey = %x, %v, %v; want 32 random bytes, not migrated", key, migrated, err)
	}
	if _, err := os.Stat(filepath.Join(dir, keystore.AuditKeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AuditKey made a file %s (err %v)", keystore.AuditKeyFileName, err)
	}
	ks.Close()
	if bytes.Contains(keystoreFiles(t, dir), key) {
		t.Errorf("a file of the keystore holds the audit key in the clear")
	}
	ks = openForAudit(t, dir)
	again, _, err := ks.AuditKey(ctx, filepath.Join(dir, keystore.AuditKeyFileName))
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("AuditKey after reopening = %x, %v; want the same key", again, err)
	}
	if stored, err := ks.StoredAuditKey(ctx); err != nil || !bytes.Equal(stored, key) {
		t.Errorf("StoredAuditKey = %x, %v; want the key", stored, err)
	}
}

// TestAuditKeyConcurrentFirstUse: processes starting together on one
// keystore agree on one audit key.
func TestAuditKeyConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	openForAudit(t, dir) // create the keystore
	const n = 4
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		ks := openForAudit(t, dir)
		wg.Go(func() {
			var err error
			if keys[i], _, err = ks.AuditKey(context.Background(), filepath.Join(dir, keystore.AuditKeyFileName)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("process %d got another audit key", i)
		}
	}
}

// TestAuditKeyMigrated: an audit.key file of an older version is moved
// into the keystore (the same key, so its logs still verify) and removed.
func TestAuditKeyMigrated(t *testing.T) {
	dir := t.TempDir()
	ks := openForAudit(t, dir)
	file := filepath.Join(dir, keystore.AuditKeyFileName)
	old := make([]byte, 32)
	rand.Read(old)
	if err := os.WriteFile(file, old, 0o600); err != nil {
		t.Fatal(err)
	}
	key, migrated, err := ks.AuditKey(context.Background(), file)
	if err != nil || !migrated || !bytes.Equal(key, old) {
		t.Fatalf("AuditKey with an old key file = %x, %v, %v; want the file's key, migrated", key, migrated, err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old key file is still there (err %v)", err)
	}
	ks.Close()
	if bytes.Contains(keystoreFiles(t, dir), old) {
		t.Errorf("a file of the keystore holds the migrated audit key in the clear")
	}

	// A crash after the move, before the removal: the same file again
	// is removed; another key is refused and left alone.
	ks = openForAudit(t, dir)
	os.WriteFile(file, old, 0o600)
	if key, migrated, err := ks.AuditKey(context.Background(), file); err != nil || migrated || !bytes.Equal(key, old) {
		t.Errorf("AuditKey with the moved file still there = %x, %v, %v", key, migrated, err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the moved key's file is still there (err %v)", err)
	}
	other := bytes.Repeat([]byte{7}, 32)
	os.WriteFile(file, other, 0o600)
	if _, _, err := ks.AuditKey(context.Background(), file); err == nil || !strings.Contains(err.Error(), "another audit key") {
		t.Errorf("AuditKey with another key's file err = %v, want it refused", err)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, other) {
		t.Errorf("the other key's file was touched: %x, %v", b, err)
	}
	os.WriteFile(file, []byte("short"), 0o600)
	if _, _, err := ks.AuditKey(context.Background(), file); err == nil {
		t.Errorf("AuditKey with a 5-byte key file err = nil, want an error")
	}
}

// TestAuditMarks: marks are kept per log id, found by where they were
// written from, sealed, and never lowered.
func TestAuditMarks(t *testing.T) {
	dir := t.TempDir()
	ks := openForAudit(t, dir)
	ctx := context.Background()
	if seq, mac, err := ks.AuditMark(ctx, "a"); seq != 0 || mac != nil || err != nil {
		t.Fatalf("AuditMark of no log = %d, %x, %v", seq, mac, err)
	}
	macA := bytes.Repeat([]byte{0xaa}, 32)
	macB := bytes.Repeat([]byte{0xbb}, 32)
	for _, m := range []struct {
		id, where string
		seq       int64
		mac       []byte
	}{{"a", "host1:/log", 5, macA}, {"b", "host2:/log", 7, macB}, {"a", "host1:/log", 3, macB}} {
		if err := ks.RaiseAuditMark(ctx, m.id, m.where, m.seq, m.mac); err != nil {
			t.Fatal(err)
		}
	}
	if seq, mac, err := ks.AuditMark(ctx, "a"); seq != 5 || !bytes.Equal(mac, macA) || err != nil {
		t.Errorf("AuditMark(a) = %d, %x, %v; want 5 (never lowered)", seq, mac, err)
	}
	if id, err := ks.AuditLogAt(ctx, "host2:/log"); id != "b" || err != nil {
		t.Errorf("AuditLogAt(host2:/log) = %q, %v; want b", id, err)
	}
	// Log c now writes at host1:/log: a is no longer found there.
	if err := ks.RaiseAuditMark(ctx, "c", "host1:/log", 1, macA); err != nil {
		t.Fatal(err)
	}
	if id, _ := ks.AuditLogAt(ctx, "host1:/log"); id != "c" {
		t.Errorf("AuditLogAt(host1:/log) = %q, want c", id)
	}
	marks, err := ks.AuditMarks(ctx)
	if err != nil || len(marks) != 3 {
		t.Fatalf("AuditMarks = %+v, %v; want 3 logs", marks, err)
	}
	ks.Close()
	if bytes.Contains(keystoreFiles(t, dir), []byte("host2:/log")) {
		t.Errorf("the marks are in the keystore in the clear")
	}
}
