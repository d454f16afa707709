package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
)

// The tests of the contract of kms.Store and kms.Tx, one store at a time.

func testKeys(t *testing.T, b Backend) {
	s, _ := open(t, b)

	View(t, s, func(tx kms.Tx) error {
		_, err := tx.GetKey("k1")
		wantNotFound(t, `GetKey("k1") on an empty store`, err)
		keys, err := tx.ListKeys("", 0)
		if err != nil || len(keys) != 0 {
			t.Errorf("ListKeys on an empty store = %v, %v; want none, nil", KeyIDs(keys), err)
		}
		return nil
	})

	k1 := Key("k1")
	Update(t, s, func(tx kms.Tx) error {
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
	View(t, s, func(tx kms.Tx) error {
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
	Update(t, s, func(tx kms.Tx) error {
		if err := tx.PutMaterial("k1", 1, []byte("sealed-1")); err != nil {
			return err
		}
		return tx.PutAlias(Alias("alias/one", "k1"))
	})
	k1b := Key("k1")
	k1b.State, k1b.Description, k1b.Tags = "Disabled", "", nil
	Update(t, s, func(tx kms.Tx) error { return tx.PutKey(k1b) })
	View(t, s, func(tx kms.Tx) error {
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
	Update(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"k4", "k2", "k5", "k3", "k10"} {
			if err := tx.PutKey(Key(id)); err != nil {
				return err
			}
		}
		return nil
	})
	all := []string{"k1", "k10", "k2", "k3", "k4", "k5"}
	View(t, s, func(tx kms.Tx) error {
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
			if got := KeyIDs(keys); !slices.Equal(got, tt.want) {
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
			walked = append(walked, KeyIDs(page)...)
			after = page[len(page)-1].ID
		}
		if !slices.Equal(walked, all) {
			t.Errorf("paging ListKeys by 4 = %q, want %q", walked, all)
		}
		return nil
	})

	// Deleting a key removes its material and aliases, and only those.
	Update(t, s, func(tx kms.Tx) error {
		if err := tx.PutMaterial("k1", 2, []byte("sealed-2")); err != nil {
			return err
		}
		if err := tx.PutMaterial("k2", 1, []byte("other")); err != nil {
			return err
		}
		if err := tx.PutAlias(Alias("alias/two", "k2")); err != nil {
			return err
		}
		if err := tx.DeleteKey("k1"); err != nil {
			return err
		}
		return tx.DeleteKey("absent")
	})
	View(t, s, func(tx kms.Tx) error {
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
		if got, want := KeyIDs(keys), all[1:]; err != nil || !slices.Equal(got, want) {
			t.Errorf("ListKeys after DeleteKey = %q, %v; want %q", got, err, want)
		}
		return nil
	})
}

func testMaterial(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error { return tx.PutKey(Key("k1")) })

	View(t, s, func(tx kms.Tx) error {
		_, err := tx.GetMaterial("k1", 1)
		wantNotFound(t, `GetMaterial("k1", 1) before PutMaterial`, err)
		return nil
	})
	Update(t, s, func(tx kms.Tx) error {
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

	View(t, s, func(tx kms.Tx) error {
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

func testAliases(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"k1", "k2"} {
			if err := tx.PutKey(Key(id)); err != nil {
				return err
			}
		}
		return nil
	})

	a := Alias("alias/a", "k2")
	Update(t, s, func(tx kms.Tx) error {
		_, err := tx.GetAlias("alias/a")
		wantNotFound(t, `GetAlias("alias/a") before PutAlias`, err)
		if err := tx.PutAlias(Alias("alias/x", "nokey")); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf(`PutAlias to an absent key err = %v, want "does not exist"`, err)
		}
		for _, bad := range []*kms.AliasRecord{nil, {KeyID: "k1"}, {Name: "alias/y"}} {
			if err := tx.PutAlias(bad); err == nil {
				t.Errorf("PutAlias(%+v) err = nil, want an error", bad)
			}
		}
		for _, al := range []*kms.AliasRecord{a, Alias("alias/c", "k1"), Alias("alias/b", "k2"), Alias("alias/d", "k1")} {
			if err := tx.PutAlias(al); err != nil {
				return err
			}
		}
		return nil
	})
	View(t, s, func(tx kms.Tx) error {
		got, err := tx.GetAlias("alias/a")
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf(`GetAlias("alias/a") = %+v, %v; want %+v`, got, err, a)
		}
		_, err = tx.GetAlias("alias/x")
		wantNotFound(t, `GetAlias("alias/x")`, err)
		return nil
	})

	// Replace: point alias/d at k2.
	d := Alias("alias/d", "k2")
	d.LastUpdated = t0.Add(time.Hour)
	Update(t, s, func(tx kms.Tx) error { return tx.PutAlias(d) })

	View(t, s, func(tx kms.Tx) error {
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

	Update(t, s, func(tx kms.Tx) error {
		if err := tx.DeleteAlias("alias/b"); err != nil {
			return err
		}
		return tx.DeleteAlias("alias/absent")
	})
	View(t, s, func(tx kms.Tx) error {
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

func testMeta(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error {
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
	View(t, s, func(tx kms.Tx) error {
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

func testListMeta(t *testing.T, b Backend) {
	s, _ := open(t, b)
	names := []string{"b", "a", "deleted-key/2", "deleted-key/1", "c"}
	Update(t, s, func(tx kms.Tx) error {
		for _, n := range names {
			if err := tx.PutMeta(n, []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	View(t, s, func(tx kms.Tx) error {
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

func testViewIsReadOnly(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error { return tx.PutKey(Key("k1")) })
	View(t, s, func(tx kms.Tx) error {
		writes := map[string]error{
			"PutKey":      tx.PutKey(Key("k2")),
			"DeleteKey":   tx.DeleteKey("k1"),
			"PutMaterial": tx.PutMaterial("k1", 1, []byte("x")),
			"PutAlias":    tx.PutAlias(Alias("alias/a", "k1")),
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
	View(t, s, func(tx kms.Tx) error {
		keys, err := tx.ListKeys("", 0)
		if got := KeyIDs(keys); err != nil || !slices.Equal(got, []string{"k1"}) {
			t.Errorf("ListKeys after writes in View = %q, %v; want [k1]", got, err)
		}
		return nil
	})
}

func testTxAfterReturn(t *testing.T, b Backend) {
	s, _ := open(t, b)
	var saved kms.Tx
	Update(t, s, func(tx kms.Tx) error { saved = tx; return nil })
	if err := saved.PutKey(Key("late")); err == nil {
		t.Errorf("PutKey on a Tx after Update returned: err = nil, want an error")
	}
	if _, err := saved.GetKey("late"); err == nil || errors.Is(err, kms.ErrNoRecord) {
		t.Errorf("GetKey on a Tx after Update returned: err = %v, want a use-after-return error", err)
	}
}

func testUpdateRollbackOnError(t *testing.T, b Backend) {
	s, _ := open(t, b)
	errBoom := errors.New("boom")
	err := s.Update(context.Background(), func(tx kms.Tx) error {
		if err := PutAll(tx, "k1"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		return errBoom
	})
	if err != errBoom {
		t.Errorf("Update() err = %v, want fn's error unchanged", err)
	}
	if got := Present(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a failed Update: present = %v, want none", got)
	}

	// A failed statement, returned by fn, rolls back what came before it.
	Update(t, s, func(tx kms.Tx) error { return PutAll(tx, "k2") })
	err = s.Update(context.Background(), func(tx kms.Tx) error {
		if err := PutAll(tx, "k3"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		return tx.PutMaterial("k2", 1, []byte("again"))
	})
	if err == nil {
		t.Fatalf("Update() with a duplicate material err = nil, want an error")
	}
	if got := Present(t, s, "k3"); slices.Contains(got, true) {
		t.Errorf("records after a failed Update: present = %v, want none", got)
	}
}

func testUpdateRollbackOnPanic(t *testing.T, b Backend) {
	s, _ := open(t, b)
	type boom struct{ n int }
	func() {
		defer func() {
			if r := recover(); r != (boom{42}) {
				t.Errorf("recovered %v, want the panic value of fn", r)
			}
		}()
		s.Update(context.Background(), func(tx kms.Tx) error {
			if err := PutAll(tx, "k1"); err != nil {
				t.Fatalf("putAll err = %v", err)
			}
			panic(boom{42})
		})
		t.Errorf("Update() returned after fn panicked")
	}()
	if got := Present(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a panic in Update: present = %v, want none", got)
	}
	// The write connection was released: the next Update goes through.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Update(ctx, func(tx kms.Tx) error { return PutAll(tx, "k2") }); err != nil {
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
	if got := Present(t, s, "k2"); slices.Contains(got, false) {
		t.Errorf("records after a panic in View: present = %v, want all", got)
	}
}

func testContext(t *testing.T, b Backend) {
	s, _ := open(t, b)
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
		if err := PutAll(tx, "k1"); err != nil {
			t.Fatalf("putAll err = %v", err)
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update() with ctx canceled in fn err = %v, want context.Canceled", err)
	}
	if got := Present(t, s, "k1"); slices.Contains(got, true) {
		t.Errorf("records after a canceled Update: present = %v, want none", got)
	}
}

func testReopen(t *testing.T, b Backend) {
	addr := b.New(t)
	s, err := b.Open(addr)
	if err != nil {
		t.Fatalf("Open(%q) err = %v", addr, err)
	}
	Update(t, s, func(tx kms.Tx) error { return PutAll(tx, "k1") })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}

	s = openAt(t, b, addr)
	if got := Present(t, s, "k1"); slices.Contains(got, false) {
		t.Errorf("records after Close and Open: present = %v, want all", got)
	}
	View(t, s, func(tx kms.Tx) error {
		got, err := tx.GetKey("k1")
		if want := Key("k1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetKey after reopen = %+v, %v; want %+v", got, err, want)
		}
		return nil
	})
}

// testLargeValues stores values far larger than kms writes (a key record of
// megabytes, material and meta values of 4 MiB) and reads them back whole.
func testLargeValues(t *testing.T, b Backend) {
	s, _ := open(t, b)
	big := func(n int, seed byte) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = seed + byte(i%251)
		}
		return v
	}
	k := Key("big")
	k.Description = strings.Repeat("d", 1<<20)
	k.Policy = `{"Statement":"` + strings.Repeat("p", 1<<20) + `"}`
	for i := range 5000 {
		k.Tags = append(k.Tags, kms.Tag{Key: fmt.Sprint("tag-", i), Value: strings.Repeat("v", 100)})
	}
	for v := 3; v <= 1000; v++ {
		k.Versions = append(k.Versions, kms.KeyVersion{Version: v, MaterialID: fmt.Sprintf("%064x", v), Created: t0, Rotation: "AUTOMATIC"})
	}
	material := big(4<<20, 1)
	meta := big(4<<20, 7)
	Update(t, s, func(tx kms.Tx) error {
		if err := tx.PutKey(k); err != nil {
			return err
		}
		if err := tx.PutMaterial("big", 1, material); err != nil {
			return err
		}
		if err := tx.PutAlias(Alias("alias/"+strings.Repeat("a", 250), "big")); err != nil {
			return err
		}
		return tx.PutMeta("big", meta)
	})
	View(t, s, func(tx kms.Tx) error {
		got, err := tx.GetKey("big")
		if err != nil || !reflect.DeepEqual(got, k) {
			t.Errorf("GetKey of a large record: err = %v, equal = %v; want it whole", err, reflect.DeepEqual(got, k))
		}
		if got, err := tx.GetMaterial("big", 1); err != nil || !slices.Equal(got, material) {
			t.Errorf("GetMaterial of 4 MiB: %d bytes, err = %v; want them whole", len(got), err)
		}
		if got, err := tx.GetMeta("big"); err != nil || !slices.Equal(got, meta) {
			t.Errorf("GetMeta of 4 MiB: %d bytes, err = %v; want them whole", len(got), err)
		}
		if a, err := tx.GetAlias("alias/" + strings.Repeat("a", 250)); err != nil || a.KeyID != "big" {
			t.Errorf("GetAlias of a long name = %+v, %v", a, err)
		}
		return nil
	})
}

// testListOrder checks that lists are in the byte order of the names'
// UTF-8, whatever the store's locale would say, and page by it.
func testListOrder(t *testing.T, b Backend) {
	s, _ := open(t, b)
	names := []string{"a", "B", "_x", "ä", "A", "b", "a-b", "a_b", "aB", "Ab", "é", "z", "~", "0", "a b"}
	want := slices.Clone(names)
	slices.Sort(want) // Go compares strings byte by byte
	Update(t, s, func(tx kms.Tx) error {
		for _, n := range names {
			if err := tx.PutKey(Key(n)); err != nil {
				return err
			}
			if err := tx.PutAlias(Alias("alias/"+n, n)); err != nil {
				return err
			}
			if err := tx.PutMeta(n, []byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
	View(t, s, func(tx kms.Tx) error {
		var keys, aliases, metas []string
		for after := ""; ; {
			page, err := tx.ListKeys(after, 4)
			if err != nil || len(page) == 0 {
				break
			}
			keys = append(keys, KeyIDs(page)...)
			after = page[len(page)-1].ID
		}
		for after := ""; ; {
			page, err := tx.ListAliases("", after, 4)
			if err != nil || len(page) == 0 {
				break
			}
			for _, a := range page {
				aliases = append(aliases, strings.TrimPrefix(a.Name, "alias/"))
			}
			after = page[len(page)-1].Name
		}
		for after := ""; ; {
			page, err := tx.ListMeta(after, 4)
			if err != nil || len(page) == 0 {
				break
			}
			metas = append(metas, page...)
			after = page[len(page)-1]
		}
		for what, got := range map[string][]string{"ListKeys": keys, "ListAliases": aliases, "ListMeta": metas} {
			if !slices.Equal(got, want) {
				t.Errorf("%s paged by 4 = %q, want byte order %q", what, got, want)
			}
		}
		return nil
	})
}
