package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/postgres"
	"github.com/envelopekms/envelope/kms/store/storetest"
)

// countingStore counts the transactions a kms.Service begins.
type countingStore struct {
	kms.Store
	views, updates atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(kms.Tx) error) error {
	s.views.Add(1)
	return s.Store.View(ctx, fn)
}

func (s *countingStore) Update(ctx context.Context, fn func(kms.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// TestRoundTrips counts the round trips of transactions on a connection
// whose statements are prepared: a View reading nothing costs none, the
// read of a key and its material (a kms cache miss) three — BEGIN with the
// first read, the second read, ROLLBACK —, and an Update writing a key two
// — BEGIN with the write, COMMIT with its notification.
func TestRoundTrips(t *testing.T) {
	url := storetest.PostgresURL(t)
	var writes atomic.Int64
	s, err := postgres.OpenCountingForTest(t.Context(), url, &writes)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Update(t, s, func(tx kms.Tx) error { return storetest.PutAll(tx, "k1") })
	read := func(tx kms.Tx) error {
		if _, err := tx.GetKey("k1"); err != nil {
			return err
		}
		_, err := tx.GetMaterial("k1", 1)
		return err
	}
	write := func(tx kms.Tx) error { return tx.PutKey(storetest.Key("k1")) }
	// Prepare the statements on the pool's connections.
	for range 3 {
		storetest.View(t, s, read)
		storetest.Update(t, s, write)
	}
	tests := []struct {
		name string
		run  func()
		want int64
	}{
		{"View reading nothing", func() { storetest.View(t, s, func(kms.Tx) error { return nil }) }, 0},
		{"View of a key and its material", func() { storetest.View(t, s, read) }, 3},
		{"Update of a key", func() { storetest.Update(t, s, write) }, 2},
	}
	for _, tt := range tests {
		before, beforeStmts := writes.Load(), postgres.RoundTripsForTest(s)
		tt.run()
		got, stmts := writes.Load()-before, postgres.RoundTripsForTest(s)-beforeStmts
		if got != tt.want || stmts != tt.want {
			t.Errorf("%s: %d round trips on the wire, %d counted by the store; want %d", tt.name, got, stmts, tt.want)
		}
	}
}

// TestWarmPairsQueryNothing checks that GenerateDataKey and Decrypt on a
// warm kms.Service over PostgreSQL begin no transaction and send nothing to
// the server.
func TestWarmPairsQueryNothing(t *testing.T) {
	url := storetest.PostgresURL(t)
	var writes atomic.Int64
	s, err := postgres.OpenCountingForTest(t.Context(), url, &writes)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store := &countingStore{Store: s}
	svc := newService(t, store, testRoot(t), time.Minute)
	ctx := t.Context()
	out, err := svc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := out.KeyMetadata.KeyId
	pair := func() {
		t.Helper()
		dk, err := svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
		if err != nil {
			t.Fatalf("GenerateDataKey() err = %v", err)
		}
		if _, err := svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob}); err != nil {
			t.Fatalf("Decrypt() err = %v", err)
		}
	}
	before := writes.Load()
	pair() // cold: the key is read once
	t.Logf("first pair after CreateKey: %d transactions, %d round trips", store.views.Load()+store.updates.Load()-1, writes.Load()-before)

	const pairs = 200
	views, updates, wire := store.views.Load(), store.updates.Load(), writes.Load()
	for range pairs {
		pair()
	}
	views, updates, wire = store.views.Load()-views, store.updates.Load()-updates, writes.Load()-wire
	if views != 0 || updates != 0 || wire != 0 {
		t.Errorf("%d warm GenerateDataKey+Decrypt pairs: %d Views, %d Updates, %d round trips; want none", pairs, views, updates, wire)
	}
}
