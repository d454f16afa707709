package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// TestMaintenanceDeferredOnReadOnlyStore: on a store that cannot be written,
// a key whose automatic rotation is due still encrypts and decrypts (the
// rotation waits), and a key whose deletion window ended reads as gone.
func TestMaintenanceDeferredOnReadOnlyStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keystore.db")
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	root, err := kms.NewAESRootKey(key)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	svc, err := kms.New(ctx, store, root, kms.Options{Now: clock.Now, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := svc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	period := int32(90)
	if _, err := svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: rotating.KeyMetadata.KeyId, RotationPeriodInDays: &period}); err != nil {
		t.Fatal(err)
	}
	doomed, err := svc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	days := int32(7)
	if _, err := svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyMetadata.KeyId, PendingWindowInDays: &days}); err != nil {
		t.Fatal(err)
	}
	pt := []byte("secret")
	enc, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: rotating.KeyMetadata.KeyId, Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := sqlite.OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	defer ro.Close()
	clock.AdvanceDays(100) // the rotation is due, the deletion window over
	rsvc, err := kms.New(ctx, ro, root, kms.Options{Now: clock.Now, CacheTTL: -1})
	if err != nil {
		t.Fatalf("kms.New on a read-only store: %v", err)
	}
	dec, err := rsvc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt with a rotation due on a read-only store: err = %v, want nil", err)
	}
	if !bytes.Equal(dec.Plaintext, pt) {
		t.Fatalf("Decrypt = %q, want %q", dec.Plaintext, pt)
	}
	if _, err := rsvc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: rotating.KeyMetadata.KeyId, KeySpec: "AES_256"}); err != nil {
		t.Fatalf("GenerateDataKey with a rotation due on a read-only store: err = %v, want nil", err)
	}
	_, err = rsvc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: doomed.KeyMetadata.KeyId})
	if kms.CodeOf(err) != kms.CodeNotFound {
		t.Fatalf("DescribeKey of a key past its deletion date on a read-only store: err = %v, want NotFoundException", err)
	}
	// A change still fails, saying why.
	_, err = rsvc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err == nil || !errors.Is(err, kms.ErrStoreUnwritable) {
		t.Fatalf("CreateKey on a read-only store: err = %v, want one wrapping kms.ErrStoreUnwritable", err)
	}
}
