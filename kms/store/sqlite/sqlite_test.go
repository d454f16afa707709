package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)

// testKey returns a key record with every field set.
func testKey(id string) *kms.KeyRecord {
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

func testAlias(name, keyID string) *kms.AliasRecord {
	return &kms.AliasRecord{Name: name, KeyID: keyID, Created: t0, LastUpdated: t0.Add(time.Minute)}
}

// openTemp opens a new store in a temporary directory, closed when the test
// ends.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keystore.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) err = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() err = %v, want nil", err)
		}
	})
	return s, path
}

// update runs fn in s.Update and fails the test on error.
func update(t *testing.T, s *Store, fn func(kms.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update() err = %v, want nil", err)
	}
}

// view runs fn in s.View and fails the test on error.
func view(t *testing.T, s *Store, fn func(kms.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View() err = %v, want nil", err)
	}
}

func keyIDs(keys []*kms.KeyRecord) []string {
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

func TestKeys(t *testing.T) {
	s, _ := openTemp(t)

	view(t, s, func(tx kms.Tx) error {
		_, err := tx.GetKey("k1")
		wantNotFound(t, `GetKey("k1") on an empty store`, err)
		keys, err := tx.ListKeys("", 0)
		if err != nil || len(keys) != 0 {
			t.Errorf("ListKeys on an empty store = %v, %v; want none, nil", keyIDs(keys), err)
		}
		return nil
	})

	k1 := testKey("k1")
	update(t, s, func(tx kms.Tx) error {
		if err := tx.PutKey(k1); err != nil {
			return err
		}
		// A Tx sees its own writes.
		got, err := tx.GetKey("k1")
		if err != nil || !reflect.DeepEqual(got, k1) {
			t.Errorf("GetKey in the writing tx = %+v, %v; want %+v", got, err, k1)
		}
		for _, bad := range []*kms.KeyRecord{nil, {}} {
			if err := tx.PutKey(bad); err == nil {
				t.Errorf("PutKey(%+v) err = nil, want an error", bad)
			}
		}
		return nil
	})
	view(t, s, func(tx kms.Tx) error {
		got, err := tx.GetKey("k1")
		if err != nil {
			t.Fatalf(`GetKey("k1") err = %v`, err)
		}
		if !reflect.DeepEqual(got, k1) {
			t.Errorf("GetKey(%q) = %+v, want %+v", "k1", got, k1)
		}
		return nil
	})

	// Replacing a key's metadata keeps its material and aliases.
	update(t, s, func(tx kms.Tx) error {
		if err := tx.PutMaterial("k1", 1, []byte("sealed-1")); err != nil {
			return err
		}
		return tx.PutAlias(testAlias("alias/one", "k1"))
	})
	k1b := testKey("k1")
	k1b.State, k1b.Description, k1b.Tags = "Disabled", "", nil
	update(t, s, func(tx kms.Tx) error { return tx.PutKey(k1b) })
	view(t, s, func(tx kms.Tx) error {
		got, err := tx.GetKey("k1")
		if err != nil || !reflect.DeepEqual(got, k1b) {
			t.Errorf("GetKey after replace = %+v, %v; want %+v", got, err, k1b)
		}
		if _, err := tx.GetMaterial("k1", 1); err != nil {
			t.Errorf("GetMaterial after PutKey replaced the key: err = %v, want nil", err)
		}
		if _, err := tx.GetAlias("alias/one"); err != nil {
			t.Errorf("GetAlias after PutKey replaced the key: err = %v, want nil", err)
		}
		return nil
	})

	// Listing and pagination.
	update(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"k4", "k2", "k5", "k3", "k10"} {
			if err := tx.PutKey(testKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
	all := []string{"k1", "k10", "k2", "k3", "k4", "k5"}
	view(t, s, func(tx kms.Tx) error {
		tests := []struct {
			after string
			limit int
			want  []string
		}{
			{"", 0, all},
			{"", -1, all},
			{"", 100, all},
			{"", 2, []string{"k1", "k10"}},
			{"k10", 2, []string{"k2", "k3"}},
			{"k2", 0, []string{"k3", "k4", "k5"}},
			{"k25", 1, []string{"k3"}},
			{"k5", 0, nil},
			{"zzz", 3, nil},
		}
		for _, tt := range tests {
			keys, err := tx.ListKeys(tt.after, tt.limit)
			if err != nil {
				t.Errorf("ListKeys(%q, %d) err = %v", tt.after, tt.limit, err)
				continue
			}
			if got := keyIDs(keys); !slices.Equal(got, tt.want) {
				t.Errorf("ListKeys(%q, %d) = %q, want %q", tt.after, tt.limit, got, tt.want)
			}
		}
		// Walking the pages yields every key once, in order.
		var walked []string
		for after := ""; ; {
			page, err := tx.ListKeys(after, 4)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			walked = append(walked, keyIDs(page)...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(walked, all) {
			t.Errorf("paging ListKeys by 4 = %q, want %q", walked, all)
		}
		return nil
	})

	// Deleting a key removes its material and aliases, and only those.
	update(t, s, func(tx kms.Tx) error {
		if err := tx.PutMaterial("k1", 2, []byte("sealed-2")); err != nil {
			return err
		}
		if err := tx.PutMaterial("k2", 1, []byte("other")); err != nil {
			return err
		}
		if err := tx.PutAlias(testAlias("alias/two", "k2")); err != nil {
			return err
		}
		if err := tx.DeleteKey("k1"); err != nil {
			return err
		}
		return tx.DeleteKey("absent")
	})
	view(t, s, func(tx kms.Tx) error {
		_, err := tx.GetKey("k1")
		wantNotFound(t, `GetKey("k1") after DeleteKey`, err)
		for v := 1; v <= 2; v++ {
			_, err := tx.GetMaterial("k1", v)
			wantNotFound(t, fmt.Sprintf(`GetMaterial("k1", %d) after DeleteKey`, v), err)
		}
		_, err = tx.GetAlias("alias/one")
		wantNotFound(t, `GetAlias("alias/one") after DeleteKey`, err)
		if aliases, err := tx.ListAliases("k1", "", 0); err != nil || len(aliases) != 0 {
			t.Errorf(`ListAliases("k1") after DeleteKey = %q, %v; want none`, aliasNames(aliases), err)
		}
		if got, err := tx.GetMaterial("k2", 1); err != nil || string(got) != "other" {
			t.Errorf(`GetMaterial("k2", 1) = %q, %v; want "other"`, got, err)
		}
		if _, err := tx.GetAlias("alias/two"); err != nil {
			t.Errorf(`GetAlias("alias/two") err = %v, want nil`, err)
		}
		keys, err := tx.ListKeys("", 0)
		if got, want := keyIDs(keys), all[1:]; err != nil || !slices.Equal(got, want) {
			t.Errorf("ListKeys after DeleteKey = %q, %v; want %q", got, err, want)
		}
		return nil
	})
}

func TestMaterial(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error { return tx.PutKey(testKey("k1")) })

	view(t, s, func(tx kms.Tx) error {
		_, err := tx.GetMaterial("k1", 1)
		wantNotFound(t, `GetMaterial("k1", 1) before PutMaterial`, err)
		return nil
	})
	update(t, s, func(tx kms.Tx) error {
		if err := tx.PutMaterial("k1", 1, []byte("one")); err != nil {
			return err
		}
		return tx.PutMaterial("k1", 2, []byte("two"))
	})

	err := s.Update(context.Background(), func(tx kms.Tx) error {
		err := tx.PutMaterial("k1", 1, []byte("overwritten"))
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf(`PutMaterial("k1", 1) again err = %v, want "already exists"`, err)
		}
		if err := tx.PutMaterial("nokey", 1, []byte("x")); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf(`PutMaterial("nokey", 1) err = %v, want "does not exist"`, err)
		}
		if err := tx.PutMaterial("k1", 0, []byte("x")); err == nil {
			t.Errorf(`PutMaterial("k1", 0) err = nil, want an error`)
		}
		if err := tx.PutMaterial("k1", 3, nil); err == nil {
			t.Errorf(`PutMaterial("k1", 3, nil) err = nil, want an error`)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update() err = %v", err)
	}

	view(t, s, func(tx kms.Tx) error {
		for v, want := range map[int]string{1: "one", 2: "two"} {
			got, err := tx.GetMaterial("k1", v)
			if err != nil || string(got) != want {
				t.Errorf(`GetMaterial("k1", %d) = %q, %v; want %q`, v, got, err, want)
			}
			got[0] ^= 0xff // the caller owns the slice
		}
		if got, _ := tx.GetMaterial("k1", 1); string(got) != "one" {
			t.Errorf(`GetMaterial("k1", 1) after the caller changed a copy = %q, want "one"`, got)
		}
		_, err := tx.GetMaterial("k1", 3)
		wantNotFound(t, `GetMaterial("k1", 3)`, err)
		_, err = tx.GetMaterial("nokey", 1)
		wantNotFound(t, `GetMaterial("nokey", 1)`, err)
		return nil
	})
}

func TestAliases(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"k1", "k2"} {
			if err := tx.PutKey(testKey(id)); err != nil {
				return err
			}
		}
		return nil
	})

	a := testAlias("alias/a", "k2")
	update(t, s, func(tx kms.Tx) error {
		_, err := tx.GetAlias("alias/a")
		wantNotFound(t, `GetAlias("alias/a") before PutAlias`, err)
		if err := tx.PutAlias(testAlias("alias/x", "nokey")); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf(`PutAlias to an absent key err = %v, want "does not exist"`, err)
		}
		for _, bad := range []*kms.AliasRecord{nil, {KeyID: "k1"}, {Name: "alias/y"}} {
			if err := tx.PutAlias(bad); err == nil {
				t.Errorf("PutAlias(%+v) err = nil, want an error", bad)
			}
		}
		for _, al := range []*kms.AliasRecord{a, testAlias("alias/c", "k1"), testAlias("alias/b", "k2"), testAlias("alias/d", "k1")} {
			if err := tx.PutAlias(al); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx kms.Tx) error {
		got, err := tx.GetAlias("alias/a")
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf(`GetAlias("alias/a") = %+v, %v; want %+v`, got, err, a)
		}
		_, err = tx.GetAlias("alias/x")
		wantNotFound(t, `GetAlias("alias/x")`, err)
		return nil
	})

	// Replace: point alias/d at k2.
	d := testAlias("alias/d", "k2")
	d.LastUpdated = t0.Add(time.Hour)
	update(t, s, func(tx kms.Tx) error { return tx.PutAlias(d) })

	view(t, s, func(tx kms.Tx) error {
		if got, err := tx.GetAlias("alias/d"); err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf(`GetAlias("alias/d") after replace = %+v, %v; want %+v`, got, err, d)
		}
		tests := []struct {
			keyID, after string
			limit        int
			want         []string
		}{
			{"", "", 0, []string{"alias/a", "alias/b", "alias/c", "alias/d"}},
			{"", "", -5, []string{"alias/a", "alias/b", "alias/c", "alias/d"}},
			{"", "", 2, []string{"alias/a", "alias/b"}},
			{"", "alias/b", 0, []string{"alias/c", "alias/d"}},
			{"", "alias/b", 1, []string{"alias/c"}},
			{"", "alias/d", 0, nil},
			{"k1", "", 0, []string{"alias/c"}},
			{"k2", "", 0, []string{"alias/a", "alias/b", "alias/d"}},
			{"k2", "", 2, []string{"alias/a", "alias/b"}},
			{"k2", "alias/b", 0, []string{"alias/d"}},
			{"k2", "alias/a", 1, []string{"alias/b"}},
			{"nokey", "", 0, nil},
		}
		for _, tt := range tests {
			aliases, err := tx.ListAliases(tt.keyID, tt.after, tt.limit)
			if err != nil {
				t.Errorf("ListAliases(%q, %q, %d) err = %v", tt.keyID, tt.after, tt.limit, err)
				continue
			}
			if got := aliasNames(aliases); !slices.Equal(got, tt.want) {
				t.Errorf("ListAliases(%q, %q, %d) = %q, want %q", tt.keyID, tt.after, tt.limit, got, tt.want)
			}
			for _, al := range aliases {
				if tt.keyID != "" && al.KeyID != tt.keyID {
					t.Errorf("ListAliases(%q, ...) returned %q of key %q", tt.keyID, al.Name, al.KeyID)
				}
			}
		}
		return nil
	})

	update(t, s, func(tx kms.Tx) error {
		if err := tx.DeleteAlias("alias/b"); err != nil {
			return err
		}
		return tx.DeleteAlias("alias/absent")
	})
	view(t, s, func(tx kms.Tx) error {
		_, err := tx.GetAlias("alias/b")
		wantNotFound(t, `GetAlias("alias/b") after DeleteAlias`, err)
		if _, err := tx.GetKey("k2"); err != nil {
			t.Errorf(`GetKey("k2") after deleting its alias err = %v, want nil`, err)
		}
		aliases, err := tx.ListAliases("", "", 0)
		if got, want := aliasNames(aliases), []string{"alias/a", "alias/c", "alias/d"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("ListAliases after DeleteAlias = %q, %v; want %q", got, err, want)
		}
		return nil
	})
}

func TestMeta(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error {
		_, err := tx.GetMeta("root")
		wantNotFound(t, `GetMeta("root") before PutMeta`, err)
		if err := tx.PutMeta("", []byte("x")); err == nil {
			t.Errorf(`PutMeta("") err = nil, want an error`)
		}
		if err := tx.PutMeta("root", []byte("v1")); err != nil {
			return err
		}
		if err := tx.PutMeta("root", []byte("v2")); err != nil {
			return err
		}
		return tx.PutMeta("empty", nil)
	})
	view(t, s, func(tx kms.Tx) error {
		if got, err := tx.GetMeta("root"); err != nil || string(got) != "v2" {
			t.Errorf(`GetMeta("root") = %q, %v; want "v2"`, got, err)
		}
		if got, err := tx.GetMeta("empty"); err != nil || got == nil || len(got) != 0 {
			t.Errorf(`GetMeta("empty") = %#v, %v; want []byte{}, nil`, got, err)
		}
		_, err := tx.GetMeta("other")
		wantNotFound(t, `GetMeta("other")`, err)
		return nil
	})
}

func TestListMeta(t *testing.T) {
	s, _ := openTemp(t)
	names := []string{"b", "a", "deleted-key/2", "deleted-key/1", "c"}
	update(t, s, func(tx kms.Tx) error {
		for _, n := range names {
			if err := tx.PutMeta(n, []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx kms.Tx) error {
		for _, tc := range []struct {
			after string
			limit int
			want  []string
		}{
			{"", 0, []string{"a", "b", "c", "deleted-key/1", "deleted-key/2"}},
			{"", 2, []string{"a", "b"}},
			{"b", 2, []string{"c", "deleted-key/1"}},
			{"deleted-key/2", 0, nil},
		} {
			got, err := tx.ListMeta(tc.after, tc.limit)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ListMeta(%q, %d) = %q, %v; want %q", tc.after, tc.limit, got, err, tc.want)
			}
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error { return tx.PutKey(testKey("k1")) })
	view(t, s, func(tx kms.Tx) error {
		writes := map[string]error{
			"PutKey":      tx.PutKey(testKey("k2")),
			"DeleteKey":   tx.DeleteKey("k1"),
			"PutMaterial": tx.PutMaterial("k1", 1, []byte("x")),
			"PutAlias":    tx.PutAlias(testAlias("alias/a", "k1")),
			"DeleteAlias": tx.DeleteAlias("alias/a"),
			"PutMeta":     tx.PutMeta("m", []byte("x")),
		}
		for name, err := range writes {
			if err == nil {
				t.Errorf("%s in View err = nil, want an error", name)
			}
		}
		return nil
	})
	// The reader connections refuse writes too, whatever the Tx says.
	if _, err := s.r.Exec(`DELETE FROM keys`); err == nil {
		t.Errorf("DELETE on a reader connection err = nil, want an error")
	}
	view(t, s, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := keyIDs(keys); err != nil || !slices.Equal(got, []string{"k1"}) {
			t.Errorf("ListKeys after writes in View = %q, %v; want [k1]", got, err)
		}
		return nil
	})
}

func TestTxAfterReturn(t *testing.T) {
	s, _ := openTemp(t)
	var saved kms.Tx
	update(t, s, func(tx kms.Tx) error { saved = tx; return nil })
	if err := saved.PutKey(testKey("late")); err == nil {
		t.Errorf("PutKey on a Tx after Update returned: err = nil, want an error")
	}
	if _, err := saved.GetKey("late"); err == nil || errors.Is(err, kms.ErrNoRecord) {
		t.Errorf("GetKey on a Tx after Update returned: err = %v, want a use-after-return error", err)
	}
}

// putAll writes a key, its material, an alias and a meta value.
func putAll(tx kms.Tx, id string) error {
	if err := tx.PutKey(testKey(id)); err != nil {
		return err
	}
	if err := tx.PutMaterial(id, 1, []byte("sealed "+id)); err != nil {
		return err
	}
	if err := tx.PutAlias(testAlias("alias/"+id, id)); err != nil {
		return err
	}
	return tx.PutMeta("meta-"+id, []byte(id))
}

// presence reports which of the records putAll writes exist.
func presence(t *testing.T, s *Store, id string) []bool {
	t.Helper()
	var found []bool
	view(t, s, func(tx kms.Tx) error {
		_, err1 := tx.GetKey(id)
		_, err2 := tx.GetMaterial(id, 1)
		_, err3 := tx.GetAlias("alias/" + id)
		_, err4 := tx.GetMeta("meta-" + id)
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil && !errors.Is(err, kms.ErrNoRecord) {
				t.Fatalf("reading %q: err = %v", id, err)
			}
			found = append(found, err == nil)
		}
		return nil
	})
	return found
}

func TestUpdateRollbackOnError(t *testing.T) {
	s, _ := openTemp(t)
	errBoom := errors.New("boom")
	err := s.Update(context.Background(), func(tx kms.Tx) error {
		if err := putAll(tx, "k1"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		return errBoom
	})
	if err != errBoom {
		t.Errorf("Update() err = %v, want fn's error unchanged", err)
	}
	if got := presence(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a failed Update: present = %v, want none", got)
	}

	// A failed statement, returned by fn, rolls back what came before it.
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k2") })
	err = s.Update(context.Background(), func(tx kms.Tx) error {
		if err := putAll(tx, "k3"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		return tx.PutMaterial("k2", 1, []byte("again"))
	})
	if err == nil {
		t.Fatalf("Update() with a duplicate material err = nil, want an error")
	}
	if got := presence(t, s, "k3"); slices.Contains(got, true) {
		t.Errorf("records after a failed Update: present = %v, want none", got)
	}
}

func TestUpdateRollbackOnPanic(t *testing.T) {
	s, _ := openTemp(t)
	type boom struct{ n int }
	func() {
		defer func() {
			if r := recover(); r != (boom{42}) {
				t.Errorf("recovered %v, want the panic value of fn", r)
			}
		}()
		s.Update(context.Background(), func(tx kms.Tx) error {
			if err := putAll(tx, "k1"); err != nil {
				t.Fatalf("putAll err = %v", err)
			}
			panic(boom{42})
		})
		t.Errorf("Update() returned after fn panicked")
	}()
	if got := presence(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a panic in Update: present = %v, want none", got)
	}
	// The write connection was released: the next Update goes through.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Update(ctx, func(tx kms.Tx) error { return putAll(tx, "k2") }); err != nil {
		t.Fatalf("Update() after a panic err = %v, want nil", err)
	}

	func() {
		defer func() {
			if r := recover(); r != "view" {
				t.Errorf("recovered %v, want the panic value of fn", r)
			}
		}()
		s.View(context.Background(), func(kms.Tx) error { panic("view") })
	}()
	if got := presence(t, s, "k2"); slices.Contains(got, false) {
		t.Errorf("records after a panic in View: present = %v, want all", got)
	}
}

func TestContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	fn := func(kms.Tx) error { called = true; return nil }
	if err := s.Update(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("Update(canceled ctx) err = %v, want context.Canceled", err)
	}
	if err := s.View(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("View(canceled ctx) err = %v, want context.Canceled", err)
	}
	if called {
		t.Errorf("fn was called with a canceled context")
	}

	// A context that ends during fn: nothing is committed.
	ctx, cancel = context.WithCancel(context.Background())
	err := s.Update(ctx, func(tx kms.Tx) error {
		if err := putAll(tx, "k1"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update() with ctx canceled in fn err = %v, want context.Canceled", err)
	}
	if got := presence(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a canceled Update: present = %v, want none", got)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) err = %v", path, err)
	}
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open(%q) again err = %v", path, err)
	}
	defer s.Close()
	if got := presence(t, s, "k1"); slices.Contains(got, false) {
		t.Errorf("records after Close and Open: present = %v, want all", got)
	}
	view(t, s, func(tx kms.Tx) error {
		got, err := tx.GetKey("k1")
		if want := testKey("k1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetKey after reopen = %+v, %v; want %+v", got, err, want)
		}
		return nil
	})
}

// TestPathEscaping checks that a path with characters URIs treat specially
// is used as it is.
func TestPathEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%41 d&e=f")
	path := filepath.Join(dir, "key store?.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) err = %v", path, err)
	}
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("Stat(%q) = %v, %v; want a non-empty database file", path, fi, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("temporary directory holds %d entries, want only %q", len(entries), filepath.Base(dir))
	}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("Lstat(%q) err = %v", path, err)
	}
	return fi.Mode().Perm()
}

func TestPermissions(t *testing.T) {
	old, ok := setUmask(0)
	if !ok {
		t.Skip("no umask on " + runtime.GOOS)
	}
	t.Cleanup(func() { setUmask(old) })

	check := func(t *testing.T, path string, want fs.FileMode) {
		t.Helper()
		if got := mode(t, path); got != want {
			t.Errorf("mode of %q = %#o, want %#o", path, got, want)
		}
	}

	t.Run("new directories", func(t *testing.T) {
		base := t.TempDir()
		path := filepath.Join(base, "a", "b", "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
		check(t, filepath.Join(base, "a"), 0o700)
		check(t, filepath.Join(base, "a", "b"), 0o700)
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
		if err := s.Close(); err != nil {
			t.Fatalf("Close() err = %v", err)
		}

		// Reopened, the sidecar files are created again with the same mode.
		s, err = Open(path)
		if err != nil {
			t.Fatalf("Open(%q) again err = %v", path, err)
		}
		defer s.Close()
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k2") })
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
	})

	t.Run("existing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		defer s.Close()
		check(t, dir, 0o755) // not ours: left alone
		check(t, path, 0o600)
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
	})

	t.Run("wide sidecar files", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keystore.db")
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) err = %v", path, err)
		}
		update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
		// Keep the sidecars alive past Close with a second store, and
		// widen them, as an older envelope or another tool might have.
		s2, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) second store err = %v", path, err)
		}
		for _, p := range []string{path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s3, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%q) third store err = %v", path, err)
		}
		check(t, path+"-wal", 0o600)
		check(t, path+"-shm", 0o600)
		for _, s := range []*Store{s, s2, s3} {
			if err := s.Close(); err != nil {
				t.Errorf("Close() err = %v", err)
			}
		}
	})
}

// rawExec runs statements on the SQLite file at path without this package.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestRefuse(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)

	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
		wantMsg string
	}{
		{
			name: "other application's database",
			prepare: func(t *testing.T, path string) {
				rawExec(t, path, `CREATE TABLE notes (body TEXT)`, `INSERT INTO notes VALUES ('hello')`)
			},
			want:    ErrNotKeystore,
			wantMsg: "not an envelope keystore (an SQLite database of another application)",
		},
		{
			name: "database with another application id",
			prepare: func(t *testing.T, path string) {
				rawExec(t, path, `PRAGMA application_id = 1234`)
			},
			want:    ErrNotKeystore,
			wantMsg: "application id 0x4d2",
		},
		{
			name: "random bytes",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, random, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want:    ErrNotKeystore,
			wantMsg: "not an envelope keystore (not an SQLite database)",
		},
		{
			name: "short text file",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("hello, world\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want:    ErrNotKeystore,
			wantMsg: "not an SQLite database",
		},
		{
			name: "newer schema",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
				s.Close()
				rawExec(t, path, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion+1))
			},
			want:    ErrSchemaTooNew,
			wantMsg: "upgrade envelope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keystore.db")
			tt.prepare(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) err = nil, want %v", path, tt.want)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open(%q) err = %v, want %v mentioning %q", path, err, tt.want, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Open(%q) err = %v, want it to name the file", path, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("Open(%q) changed the file it refused", path)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := t.TempDir()
		if s, err := Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) of a directory err = nil, want an error", path)
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "keystore.db")
		s, err := Open(path)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open(%q) err = %v, want \"not a directory\"", path, err)
		}
	})
	t.Run("empty path", func(t *testing.T) {
		if s, err := Open(""); err == nil {
			s.Close()
			t.Errorf(`Open("") err = nil, want an error`)
		}
	})
}

// TestEmptyFile checks that an empty file, which an Open interrupted right
// after creating it leaves behind, becomes a keystore.
func TestEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) of an empty file err = %v, want nil", path, err)
	}
	defer s.Close()
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })
}

// TestConcurrentOpen checks that processes (here: stores) opening a new
// file at once all end up with the one keystore.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystore.db")
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Open(%q) err = %v", path, errs[i])
		}
		defer stores[i].Close()
	}
	for i, s := range stores {
		update(t, s, func(tx kms.Tx) error { return putAll(tx, fmt.Sprint("k", i)) })
	}
	view(t, stores[0], func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if err != nil || len(keys) != n {
			t.Errorf("ListKeys = %q, %v; want %d keys", keyIDs(keys), err, n)
		}
		return nil
	})
}

func TestConcurrency(t *testing.T) {
	s, _ := openTemp(t)
	const (
		goroutines = 16
		ops        = 200
	)
	ctx := context.Background()
	counter := func(tx kms.Tx) (int, error) {
		b, err := tx.GetMeta("counter")
		if errors.Is(err, kms.ErrNoRecord) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(string(b))
	}

	// Half the operations read, half write.
	isView := func(j int) bool { return j%2 == 0 }
	var wantKeys, wantAliases int
	for j := range ops {
		if !isView(j) {
			wantKeys++
			if j%3 == 1 {
				wantAliases++
			}
		}
	}
	wantKeys *= goroutines
	wantAliases *= goroutines

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			updates, last := 0, "" // this goroutine's committed updates
			for j := range ops {
				id := fmt.Sprintf("g%02d-%03d", g, j)
				var err error
				if isView(j) {
					// A reader sees every update this goroutine made.
					err = s.View(ctx, func(tx kms.Tx) error {
						c, err := counter(tx)
						if err != nil {
							return err
						}
						if c < updates {
							return fmt.Errorf("counter = %d after %d updates of one goroutine", c, updates)
						}
						if last != "" {
							if _, err := tx.GetKey(last); err != nil {
								return err
							}
							if _, err := tx.GetMaterial(last, 1); err != nil {
								return err
							}
						}
						_, err = tx.ListAliases(fmt.Sprintf("g%02d-%03d", g, 1), "", 10)
						return err
					})
				} else {
					err = s.Update(ctx, func(tx kms.Tx) error {
						c, err := counter(tx)
						if err != nil {
							return err
						}
						if err := tx.PutMeta("counter", []byte(strconv.Itoa(c+1))); err != nil {
							return err
						}
						if err := tx.PutKey(testKey(id)); err != nil {
							return err
						}
						if err := tx.PutMaterial(id, 1, []byte(id)); err != nil {
							return err
						}
						if j%3 == 1 {
							return tx.PutAlias(testAlias("alias/"+id, id))
						}
						return nil
					})
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d op %d: %w", g, j, err)
					return
				}
				if !isView(j) {
					updates, last = updates+1, id
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	view(t, s, func(tx kms.Tx) error {
		c, err := counter(tx)
		if err != nil || c != wantKeys {
			t.Errorf("counter = %d, %v; want %d (one per Update, none lost)", c, err, wantKeys)
		}
		keys, err := tx.ListKeys("", 0)
		if err != nil || len(keys) != wantKeys {
			t.Errorf("ListKeys = %d keys, %v; want %d", len(keys), err, wantKeys)
		}
		aliases, err := tx.ListAliases("", "", 0)
		if err != nil || len(aliases) != wantAliases {
			t.Errorf("ListAliases = %d aliases, %v; want %d", len(aliases), err, wantAliases)
		}
		for _, k := range keys {
			if _, err := tx.GetMaterial(k.ID, 1); err != nil {
				t.Errorf("GetMaterial(%q, 1) err = %v", k.ID, err)
			}
		}
		return nil
	})
}

// TestReadersDoNotWaitForWriters checks that a View completes while an
// Update holds the write lock, and sees the store as it was before it.
func TestReadersDoNotWaitForWriters(t *testing.T) {
	s, _ := openTemp(t)
	update(t, s, func(tx kms.Tx) error { return putAll(tx, "k1") })

	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(context.Background(), func(tx kms.Tx) error {
			if err := putAll(tx, "k2"); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.View(ctx, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := keyIDs(keys); err != nil || !slices.Equal(got, []string{"k1"}) {
			t.Errorf("ListKeys during an Update = %q, %v; want [k1]", got, err)
		}
		return err
	})
	if err != nil {
		t.Errorf("View() during an Update err = %v, want nil", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Update() err = %v", err)
	}
	if got := presence(t, s, "k2"); slices.Contains(got, false) {
		t.Errorf("records after the Update: present = %v, want all", got)
	}
}

// TestStoresShareFile checks that two stores on one file, as two processes
// would have, write at once without deadlock or lost update: their write
// transactions take the lock at BEGIN and wait for each other.
func TestStoresShareFile(t *testing.T) {
	s1, path := openTemp(t)
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) second store err = %v", path, err)
	}
	defer s2.Close()

	const perGoroutine = 25
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		s := []*Store{s1, s2}[g%2]
		wg.Go(func() {
			for i := range perGoroutine {
				id := fmt.Sprintf("g%d-%02d", g, i)
				if err := s.Update(context.Background(), func(tx kms.Tx) error { return putKeyCounted(tx, id) }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	view(t, s1, func(tx kms.Tx) error {
		b, err := tx.GetMeta("count")
		if err != nil || string(b) != strconv.Itoa(8*perGoroutine) {
			t.Errorf("count = %q, %v; want %d", b, err, 8*perGoroutine)
		}
		return nil
	})
}

// The crash test runs this test binary again as a child process that
// writes to the keystore until it is killed.
const (
	crashDBEnv     = "ENVELOPE_SQLITE_CRASH_DB"
	crashPrefixEnv = "ENVELOPE_SQLITE_CRASH_PREFIX"
)

// helperProcess is the child process of TestCrash: it opens the store
// named by $ENVELOPE_SQLITE_CRASH_DB and commits keys in a loop, printing
// "ack ID" once each Update has returned nil.
// TestMain runs the crash helper instead of the tests when the crash test
// re-executes this binary.
func TestMain(m *testing.M) {
	if os.Getenv(crashDBEnv) != "" {
		helperProcess()
		os.Exit(0)
	}
	for env, child := range children {
		if os.Getenv(env) != "" {
			os.Exit(child())
		}
	}
	os.Exit(m.Run())
}

// children are the other child processes tests re-execute this binary as,
// by the environment variable that selects each (registered by the files
// that need them); a child returns its exit status.
var children = map[string]func() int{}

func helperProcess() {
	path := os.Getenv(crashDBEnv)
	prefix := os.Getenv(crashPrefixEnv)
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		err := s.Update(context.Background(), func(tx kms.Tx) error {
			if err := putKeyCounted(tx, id); err != nil {
				return err
			}
			if i%5 == 0 {
				return tx.PutAlias(testAlias("alias/"+id, id))
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		// os.Stdout is unbuffered: one write(2) per acknowledgment, in the
		// pipe once it returns, whenever the process dies afterwards.
		fmt.Fprintf(os.Stdout, "ack %s\n", id)
	}
}

// putKeyCounted writes a key with its material and counts it in the
// "count" meta value, so a partial transaction would show.
func putKeyCounted(tx kms.Tx, id string) error {
	n := 0
	b, err := tx.GetMeta("count")
	if err == nil {
		n, err = strconv.Atoi(string(b))
	}
	if err != nil && !errors.Is(err, kms.ErrNoRecord) {
		return err
	}
	if err := tx.PutKey(testKey(id)); err != nil {
		return err
	}
	if err := tx.PutMaterial(id, 1, []byte("sealed "+id)); err != nil {
		return err
	}
	return tx.PutMeta("count", []byte(strconv.Itoa(n+1)))
}

// TestCrash kills a writing process at random moments and checks that
// every transaction it saw committed survives, that none is half applied,
// and that the store opens cleanly each time.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills child processes")
	}
	const rounds = 24
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed>>32))

	path := filepath.Join(t.TempDir(), "ks", "keystore.db")
	var acked []string
	totalAcks := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDBEnv+"="+path, fmt.Sprintf("%s=r%02d", crashPrefixEnv, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan string, 1024)
		go func() {
			defer close(acks)
			r := bufio.NewReader(stdout)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					// A line without its newline was not acknowledged.
					return
				}
				if id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack "); ok {
					acks <- id
				}
			}
		}()

		// Odd rounds kill at any moment from the start, Open included;
		// even rounds wait for the first acknowledgment, then kill in
		// the middle of the write loop.
		var got []string
		if round%2 == 0 {
			select {
			case id, ok := <-acks:
				if ok {
					got = append(got, id)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: no acknowledgment in 20s; stderr:\n%s", round, stderr.Bytes())
			}
			time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond)
		} else {
			time.Sleep(time.Duration(rng.IntN(150_000)) * time.Microsecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		for id := range acks {
			got = append(got, id)
		}
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != -1 {
			t.Fatalf("round %d: child exited with code %d before it was killed; stderr:\n%s", round, code, stderr.Bytes())
		}
		acked = append(acked, got...)
		totalAcks += len(got)

		// The store opens cleanly and holds every acknowledged key, each
		// whole.
		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		var check string
		if err := s.w.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("round %d: integrity_check = %q, %v; want ok", round, check, err)
		}
		err = s.View(context.Background(), func(tx kms.Tx) error {
			for _, id := range acked {
				if _, err := tx.GetKey(id); err != nil {
					t.Errorf("round %d: acknowledged key %q: %v", round, id, err)
				}
			}
			keys, err := tx.ListKeys("", 0)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if _, err := tx.GetMaterial(k.ID, 1); err != nil {
					t.Errorf("round %d: key %q without its material: %v", round, k.ID, err)
				}
			}
			n := 0
			if b, err := tx.GetMeta("count"); err == nil {
				n, _ = strconv.Atoi(string(b))
			} else if !errors.Is(err, kms.ErrNoRecord) {
				return err
			}
			if n != len(keys) {
				t.Errorf("round %d: count = %d, keys = %d; a transaction was half applied", round, n, len(keys))
			}
			if len(keys) < len(acked) {
				t.Errorf("round %d: %d keys, fewer than the %d acknowledged", round, len(keys), len(acked))
			}
			return nil
		})
		if err != nil {
			t.Errorf("round %d: View: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if totalAcks < rounds {
		t.Errorf("%d acknowledged transactions in %d rounds; the test exercised too little", totalAcks, rounds)
	}
	t.Logf("%d rounds, %d acknowledged transactions", rounds, totalAcks)
}
