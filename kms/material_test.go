package kms_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// secret is a value that must never be found in the keystore's files.
type secret struct {
	what  string
	bytes []byte
}

// TestNoKeyMaterialInTheClear creates, rotates and uses keys in a keystore,
// learns every version of their material through the test hook, and looks
// for each of them (whole, and every 16-byte window) in every file of the
// keystore, while it is open and after it is closed. It also checks the
// files' permissions.
func TestNoKeyMaterialInTheClear(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "envelope")
	clock := newClock()
	ks, err := keystore.Open(t.Context(), dir, keystore.Options{Service: kms.Options{Now: clock.Now}})
	if err != nil {
		t.Fatalf("keystore.Open() err = %v, want nil", err)
	}
	defer func() {
		if ks != nil {
			ks.Close()
		}
	}()
	ctx := t.Context()

	var secrets []secret
	versions := map[string]int{}
	for i := range 3 {
		out, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := out.KeyMetadata.KeyId
		versions[id] = 1
		for range i + 1 {
			if _, err := ks.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
				t.Fatal(err)
			}
			versions[id]++
		}
		if i == 0 {
			if _, err := ks.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: i32(90)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock.AdvanceDays(91)
	if err := ks.Sweep(ctx); err != nil { // the automatic rotation of the first key
		t.Fatal(err)
	}
	rsaOut, err := ks.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	versions[rsaOut.KeyMetadata.KeyId] = 1

	// Use the keys, so that data keys and their blobs pass through.
	for id, n := range versions {
		if rsaOut.KeyMetadata.KeyId == id {
			continue
		}
		got, err := kms.VersionsForTest(ks.Service, id)
		if err != nil {
			t.Fatal(err)
		}
		if got < n {
			t.Fatalf("key %s has %d versions, want at least %d", id, got, n)
		}
		versions[id] = got
		dk, err := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret{"data key of " + id, dk.Plaintext})
	}

	total := 0
	for id, n := range versions {
		for v := 1; v <= n; v++ {
			m, err := kms.MaterialForTest(ks.Service, id, v)
			if err != nil {
				t.Fatalf("MaterialForTest(%s, %d) err = %v", id, v, err)
			}
			if len(m) < 32 {
				t.Fatalf("material of %s version %d is %d bytes", id, v, len(m))
			}
			secrets = append(secrets, secret{fmt.Sprintf("material of %s version %d", id, v), m})
			total++
		}
	}
	if total < 10 {
		t.Fatalf("only %d material versions to look for", total)
	}
	t.Logf("looking for %d material versions and %d data keys", total, len(secrets)-total)

	scan := func(when string) {
		t.Helper()
		files := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				if perm := info.Mode().Perm(); perm != 0o700 {
					t.Errorf("%s: directory %s has mode %v, want 0700", when, path, perm)
				}
				return nil
			}
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: file %s has mode %v, want 0600", when, path, perm)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, s := range secrets {
				if i := bytes.Index(data, s.bytes); i >= 0 {
					t.Errorf("%s: %s found in the clear in %s at offset %d", when, s.what, filepath.Base(path), i)
					continue
				}
				for off := 0; off+16 <= len(s.bytes); off++ {
					if i := bytes.Index(data, s.bytes[off:off+16]); i >= 0 {
						t.Errorf("%s: 16 bytes of %s (from offset %d) found in %s at offset %d", when, s.what, off, filepath.Base(path), i)
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files < 2 {
			t.Errorf("%s: scanned only %d files", when, files)
		}
	}
	names := func() []string {
		entries, _ := os.ReadDir(dir)
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		return n
	}
	t.Logf("open keystore holds %q", names())
	scan("while open")
	if err := ks.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}
	ks = nil
	t.Logf("closed keystore holds %q", names())
	scan("after Close")
}
