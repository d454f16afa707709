package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// TestMigrateVersion1: a keystore of schema version 1 (before grants) keeps
// its records, reads with no grants when opened read-only, and is migrated
// to the current version when opened for writing, after which grants are
// stored.
func TestMigrateVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	db, err := sql.Open("sqlite", dsn(path, "mode", "rwc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range schema { // exactly version 1
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO keys (id, doc) VALUES ('k1', '{"id":"k1","state":"Enabled"}')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly(version 1) err = %v", err)
	}
	err = ro.View(ctx, func(tx kms.Tx) error {
		gs, err := tx.ListGrants(kms.GrantFilter{KeyID: "k1"}, "", 0)
		if err != nil || len(gs) != 0 {
			t.Errorf("ListGrants in a version 1 keystore = %v, %v; want none", gs, err)
		}
		_, err = tx.GetKey("k1")
		return err
	})
	ro.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(version 1) err = %v, want it migrated", err)
	}
	defer s.Close()
	err = s.Update(ctx, func(tx kms.Tx) error {
		if _, err := tx.GetKey("k1"); err != nil {
			return err
		}
		return tx.PutGrant(&kms.GrantRecord{ID: "g1", KeyID: "k1", GranteePrincipal: "arn:aws:iam::111122223333:user/a", Operations: []string{"Decrypt"}})
	})
	if err != nil {
		t.Fatalf("after the migration: %v", err)
	}
	st, err := readState(ctx, s.w)
	if err != nil || st.version != SchemaVersion {
		t.Errorf("schema version after Open = %d, %v; want %d", st.version, err, SchemaVersion)
	}
}
