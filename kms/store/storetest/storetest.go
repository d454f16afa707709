// Package storetest is the test suite every [kms.Store] must pass, for the
// tests of the stores under kms/store (and of any other): the contract of
// kms.Store and kms.Tx — keys, material written once, aliases, meta values,
// listings and their pages, read-only views, atomic updates, snapshots,
// cascading deletes, large values, transactions used too late, contexts —
// and the guarantees under concurrency that kms relies on, from many
// goroutines and from two processes on one store: no lost or duplicated
// key version, one winner of an alias race, no lost update of a key's
// metadata.
//
// A store's tests run it with [Run], and their TestMain calls [Child] first,
// since the suite runs the test binary again as a second process:
//
//	func TestMain(m *testing.M) {
//		if code, ok := storetest.Child(open); ok {
//			os.Exit(code)
//		}
//		os.Exit(m.Run())
//	}
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, storetest.Backend{New: newLocation, Open: open})
//	}
//
// [PostgresURL] gives tests a database of their own on the test PostgreSQL
// server, or skips them (fails them under CI) when there is none.
//
// The package is for tests only: it calls the testing package's failure
// methods and starts processes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// Backend is the kind of store under test.
type Backend struct {
	// New makes a new, empty location for a keystore, removed when t
	// ends, and returns its address (a file's path, a database's URL):
	// what Open takes.
	New func(t testing.TB) string
	// Open opens a Store on the keystore at addr, creating it if it does
	// not exist yet; the suite closes it. The suite calls it from several
	// goroutines at once, and from child processes (see [Child]).
	Open func(addr string) (kms.Store, error)
}

// Run runs the suite on b's stores, each test as a subtest of t on a new
// location.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"Keys", testKeys},
		{"Material", testMaterial},
		{"Aliases", testAliases},
		{"Grants", testGrants},
		{"Meta", testMeta},
		{"ListMeta", testListMeta},
		{"LargeValues", testLargeValues},
		{"ListOrder", testListOrder},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"TxAfterReturn", testTxAfterReturn},
		{"UpdateRollbackOnError", testUpdateRollbackOnError},
		{"UpdateRollbackOnPanic", testUpdateRollbackOnPanic},
		{"Context", testContext},
		{"Reopen", testReopen},
		{"ReadersSeeSnapshots", testReadersSeeSnapshots},
		{"Concurrency", testConcurrency},
		{"StoresShareKeystore", testStoresShare},
		{"ConcurrentOpen", testConcurrentOpen},
		{"ConcurrentRotation", testConcurrentRotation},
		{"AliasRace", testAliasRace},
		{"ConcurrentMetadata", testConcurrentMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
	}
}

// open opens a store on a new location of b, closed when t ends, and
// returns it with the location's address.
func open(t *testing.T, b Backend) (kms.Store, string) {
	t.Helper()
	addr := b.New(t)
	return openAt(t, b, addr), addr
}

// openAt opens another store on addr, closed when t ends.
func openAt(t *testing.T, b Backend, addr string) kms.Store {
	t.Helper()
	s, err := b.Open(addr)
	if err != nil {
		t.Fatalf("Open(%q) err = %v, want nil", addr, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() err = %v, want nil", err)
		}
	})
	return s
}

// t0 is the time in the records of the fixtures: with nanoseconds, so that
// a store that rounds times shows.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)

// Key returns a key record with every field set, for tests of stores.
func Key(id string) *kms.KeyRecord {
	return &kms.KeyRecord{
		ID:                 id,
		Spec:               "SYMMETRIC_DEFAULT",
		Usage:              "ENCRYPT_DECRYPT",
		State:              "Enabled",
		Description:        "key " + id,
		CreationDate:       t0,
		DeletionDate:       t0.Add(7 * 24 * time.Hour),
		PendingWindowDays:  7,
		RotationEnabled:    true,
		RotationPeriodDays: 365,
		NextRotationDate:   t0.Add(365 * 24 * time.Hour),
		Tags:               []kms.Tag{{Key: "team", Value: "crypto"}},
		Policy:             `{"Version":"2012-10-17"}`,
		Versions: []kms.KeyVersion{
			{Version: 1, MaterialID: "00aa", Created: t0},
			{Version: 2, MaterialID: "00bb", Created: t0.Add(time.Hour), Rotation: "ON_DEMAND"},
		},
	}
}

// Alias returns an alias record pointing name at keyID.
func Alias(name, keyID string) *kms.AliasRecord {
	return &kms.AliasRecord{Name: name, KeyID: keyID, Created: t0, LastUpdated: t0.Add(time.Minute)}
}

// PutAll writes a key with the given id, its material version 1, an alias
// "alias/ID" and a meta value "meta-ID": one record of each kind, which
// [Present] finds.
func PutAll(tx kms.Tx, id string) error {
	if err := tx.PutKey(Key(id)); err != nil {
		return err
	}
	if err := tx.PutMaterial(id, 1, []byte("sealed "+id)); err != nil {
		return err
	}
	if err := tx.PutAlias(Alias("alias/"+id, id)); err != nil {
		return err
	}
	return tx.PutMeta("meta-"+id, []byte(id))
}

// Present reports which of the records [PutAll] writes for id exist in s:
// key, material, alias, meta value.
func Present(t testing.TB, s kms.Store, id string) []bool {
	t.Helper()
	var found []bool
	View(t, s, func(tx kms.Tx) error {
		_, err1 := tx.GetKey(id)
		_, err2 := tx.GetMaterial(id, 1)
		_, err3 := tx.GetAlias("alias/" + id)
		_, err4 := tx.GetMeta("meta-" + id)
		found = found[:0]
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil && !errors.Is(err, kms.ErrNoRecord) {
				return fmt.Errorf("reading %q: %w", id, err)
			}
			found = append(found, err == nil)
		}
		return nil
	})
	return found
}

// Update runs fn in s.Update and fails the test on error.
func Update(t testing.TB, s kms.Store, fn func(kms.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update() err = %v, want nil", err)
	}
}

// View runs fn in s.View and fails the test on error.
func View(t testing.TB, s kms.Store, fn func(kms.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View() err = %v, want nil", err)
	}
}

// KeyIDs returns the ids of keys.
func KeyIDs(keys []*kms.KeyRecord) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func aliasNames(aliases []*kms.AliasRecord) []string {
	var names []string
	for _, a := range aliases {
		names = append(names, a.Name)
	}
	return names
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, kms.ErrNoRecord) {
		t.Errorf("%s err = %v, want ErrNoRecord", what, err)
	}
}
