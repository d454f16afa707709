package kms_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

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
