package keystore_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// TestConcurrentCreation opens a new keystore from many goroutines at once,
// each with its own database connections and lock file descriptor, as
// separate processes would: exactly one creates it and its default key,
// and every one ends up with the same root key and default key.
func TestConcurrentCreation(t *testing.T) {
	t.Parallel()
	const n = 8
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), "envelope")
		opts := keystore.Options{DefaultAlias: "alias/default", DefaultKeyDescription: "the default"}
		kss := make([]*keystore.Keystore, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { kss[i], errs[i] = keystore.Open(t.Context(), dir, opts) })
		}
		wg.Wait()
		created, createdKey := 0, 0
		for i, ks := range kss {
			if errs[i] != nil {
				t.Fatalf("round %d: Open %d err = %v", round, i, errs[i])
			}
			defer ks.Close()
			if ks.Created {
				created++
			}
			if ks.CreatedDefaultKey {
				createdKey++
			}
			if ks.DefaultKey == nil || ks.DefaultKey.KeyId != kss[0].DefaultKey.KeyId || ks.DefaultKey.Description != "the default" {
				t.Fatalf("round %d: Open %d DefaultKey = %+v, want %s's", round, i, ks.DefaultKey, kss[0].DefaultKey.KeyId)
			}
		}
		if created != 1 || createdKey != 1 {
			t.Fatalf("round %d: %d Opens created the keystore and %d the default key, want 1 and 1", round, created, createdKey)
		}
		// Each one's root key opens what the others sealed.
		for i, ks := range kss {
			enc, err := ks.Encrypt(t.Context(), &kms.EncryptInput{KeyId: "alias/default", Plaintext: []byte{byte(i)}})
			if err != nil {
				t.Fatal(err)
			}
			other := kss[(i+1)%n]
			dec, err := other.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			if err != nil || len(dec.Plaintext) != 1 || dec.Plaintext[0] != byte(i) {
				t.Fatalf("round %d: a blob of Open %d does not decrypt in Open %d: %v", round, i, (i+1)%n, err)
			}
		}
		keys, err := kss[0].ListKeys(t.Context(), &kms.ListKeysInput{})
		if err != nil || len(keys.Keys) != 1 {
			t.Fatalf("round %d: ListKeys() = %v, %v; want one key", round, keys, err)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, keystore.RootKeyName+".*"))
		if len(leftovers) != 0 {
			t.Fatalf("round %d: temporary root key files left: %v", round, leftovers)
		}
	}
}

// TestOpenMustExistIncomplete: a keystore whose creation was interrupted
// (a database without root key check) is no keystore to a reader, which
// leaves it as it is; the next Open that may create completes it.
func TestOpenMustExistIncomplete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// A root key written under an earlier version's shared temporary name
	// and another of this one's, by creations that were killed.
	for _, name := range []string{keystore.RootKeyName + ".tmp", keystore.RootKeyName + ".0123456789abcdef.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), randBytes(32), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := keystore.Open(t.Context(), dir, keystore.Options{MustExist: true})
	if !errors.Is(err, keystore.ErrNoKeystore) {
		if err == nil {
			ks.Close()
		}
		t.Fatalf("Open(MustExist) of an incomplete keystore err = %v, want ErrNoKeystore", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(MustExist) made root.key (%v)", err)
	}
	ks = open(t, dir, keystore.Options{})
	if !ks.Created {
		t.Error("Open of an incomplete keystore: Created = false, want true")
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	leftovers, _ := filepath.Glob(filepath.Join(dir, keystore.RootKeyName+".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary root key files left after creation: %v", leftovers)
	}
	ks = open(t, dir, keystore.Options{MustExist: true})
	check(t, ks, id, blob)
	closeKS(t, ks)
}
