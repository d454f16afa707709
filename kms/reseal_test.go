package kms_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// TestResealMaterial moves every record of a store into another under a new
// root key, by hand, with ResealMaterial and SealRootCheck: a service over
// the new store and root key opens, and decrypts what the first one
// encrypted, with every version of a rotated key.
func TestResealMaterial(t *testing.T) {
	t.Parallel()
	src := newEnv(t)
	ctx := t.Context()
	id := src.symKey(t)
	var blobs [][]byte
	for range 3 {
		blobs = append(blobs, src.encrypt(t, id, []byte("secret"), map[string]string{"a": "b"}))
		if _, err := src.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
			t.Fatal(err)
		}
	}
	srcRoot := kms.RootKeyForTest(src.svc)

	dstStore, err := sqlite.Open(filepath.Join(t.TempDir(), "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dstStore.Close()
	dstRoot, _ := kms.NewAESRootKey(randBytes(32))
	err = src.store.View(ctx, func(stx kms.Tx) error {
		k, err := stx.GetKey(id)
		if err != nil {
			return err
		}
		return dstStore.Update(ctx, func(dtx kms.Tx) error {
			if err := dtx.PutKey(k); err != nil {
				return err
			}
			for _, v := range k.Versions {
				sealed, err := stx.GetMaterial(id, v.Version)
				if err != nil {
					return err
				}
				// Bound to the key and version: no other opens it.
				if _, err := kms.ResealMaterial(srcRoot, dstRoot, id, v.Version+1, sealed); !errors.Is(err, kms.ErrWrongRootKey) {
					t.Errorf("ResealMaterial(version %d as %d) err = %v, want ErrWrongRootKey", v.Version, v.Version+1, err)
				}
				if _, err := kms.ResealMaterial(dstRoot, dstRoot, id, v.Version, sealed); !errors.Is(err, kms.ErrWrongRootKey) {
					t.Errorf("ResealMaterial(another root key) err = %v, want ErrWrongRootKey", err)
				}
				resealed, err := kms.ResealMaterial(srcRoot, dstRoot, id, v.Version, sealed)
				if err != nil {
					return err
				}
				if bytes.Equal(resealed, sealed) {
					t.Errorf("version %d: resealed material equals the original", v.Version)
				}
				if err := dtx.PutMaterial(id, v.Version, resealed); err != nil {
					return err
				}
			}
			check, err := kms.SealRootCheck(dstRoot)
			if err != nil {
				return err
			}
			return dtx.PutMeta(kms.RootCheckMeta, check)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kms.New(ctx, dstStore, srcRoot, kms.Options{}); !errors.Is(err, kms.ErrWrongRootKey) {
		t.Errorf("kms.New(the copy, the source's root key) err = %v, want ErrWrongRootKey", err)
	}
	dst, err := kms.New(ctx, dstStore, dstRoot, kms.Options{})
	if err != nil {
		t.Fatalf("kms.New(the copy, its root key) err = %v", err)
	}
	for i, blob := range blobs {
		out, err := dst.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "b"}})
		if err != nil || string(out.Plaintext) != "secret" {
			t.Errorf("blob %d in the copy: Decrypt() = %v, %v", i, out, err)
		}
	}
	for v := 1; v <= 4; v++ {
		a, err := kms.MaterialForTest(src.svc, id, v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := kms.MaterialForTest(dst, id, v)
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("version %d: the copy's material differs (%v)", v, err)
		}
	}
}
