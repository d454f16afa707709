package kms_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// pausingStore is a real store whose Views can be held after their first
// read of an alias: the transaction's snapshot is taken, and the test
// changes the store and the service's cache meanwhile.
type pausingStore struct {
	kms.Store
	armed  atomic.Bool
	paused chan struct{} // receives when a View is held
	resume chan struct{}
}

func (s *pausingStore) View(ctx context.Context, fn func(kms.Tx) error) error {
	return s.Store.View(ctx, func(tx kms.Tx) error { return fn(&pausingTx{Tx: tx, s: s}) })
}

type pausingTx struct {
	kms.Tx
	s *pausingStore
}

func (t *pausingTx) GetAlias(name string) (*kms.AliasRecord, error) {
	a, err := t.Tx.GetAlias(name)
	if t.s.armed.CompareAndSwap(true, false) {
		t.s.paused <- struct{}{}
		<-t.s.resume
	}
	return a, err
}

// TestReadsOneSnapshot: an operation that reads the store reads every
// record of a key from one snapshot, even when the key cache meanwhile
// holds a newer record of the key. Here the transaction of a
// GenerateDataKey by alias reads the alias, then the key is rotated and its
// new record cached by a DescribeKey; the GenerateDataKey must not pair the
// cached record (version 2) with its snapshot (no material for version 2).
func TestReadsOneSnapshot(t *testing.T) {
	t.Parallel()
	inner, err := sqlite.Open(filepath.Join(t.TempDir(), "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	store := &pausingStore{Store: inner, paused: make(chan struct{}), resume: make(chan struct{})}
	e := newEnvOn(t, store, testRoot())
	ctx := t.Context()
	id := e.symKey(t)
	e.alias(t, "alias/snap", id)
	e.svc.Invalidate(kms.Change{All: true}) // nothing cached

	store.armed.Store(true)
	done := make(chan error, 1)
	var out *kms.GenerateDataKeyOutput
	go func() {
		var err error
		out, err = e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/snap", KeySpec: "AES_256"})
		done <- err
	}()
	<-store.paused
	if _, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	e.describe(t, id) // caches the key's record, with version 2
	close(store.resume)
	if err := <-done; err != nil {
		t.Fatalf("GenerateDataKey() racing a rotation err = %v, want nil", err)
	}
	dec := e.decrypt(t, out.CiphertextBlob, nil)
	if dec.KeyMaterialId != out.KeyMaterialId {
		t.Errorf("Decrypt() used material %s, GenerateDataKey reported %s", dec.KeyMaterialId, out.KeyMaterialId)
	}
}

// TestDecryptNewerVersion: a service whose cache holds a key's record from
// before a rotation decrypts a ciphertext made under the new version (by
// another server on the store, or by an operation of its own that read the
// store before the rotation was announced) instead of calling it foreign.
func TestDecryptNewerVersion(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keystore.db")
	open := func() kms.Store {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	root := testRoot()
	var servers []*kms.Service
	for range 2 {
		svc, err := kms.New(t.Context(), open(), root, kms.Options{CacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, svc)
	}
	ctx := t.Context()
	out, err := servers[0].CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := out.KeyMetadata.KeyId
	old, err := servers[1].GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"}) // caches version 1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := servers[0].RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	dk, err := servers[0].GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyMaterialId == old.KeyMaterialId {
		t.Fatalf("the data key after the rotation is under the old material")
	}
	dec, err := servers[1].Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt() of a ciphertext under a version newer than the cached record err = %v, want nil", err)
	}
	if !bytes.Equal(dec.Plaintext, dk.Plaintext) || dec.KeyMaterialId != dk.KeyMaterialId {
		t.Errorf("Decrypt() = material %s, want %s and the data key", dec.KeyMaterialId, dk.KeyMaterialId)
	}
}
