package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// grant returns a grant record of key keyID for grantee.
func grant(id, keyID, grantee, name, retiring string) *kms.GrantRecord {
	return &kms.GrantRecord{ID: id, KeyID: keyID, Name: name, GranteePrincipal: grantee, RetiringPrincipal: retiring,
		Operations: []string{"Decrypt", "Encrypt"}, IssuingAccount: "arn:aws:iam::111122223333:root", CreationDate: t0,
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "a"}}}
}

func grantIDs(gs []*kms.GrantRecord) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

// testGrants: grants are stored and read back whole, listed by key, by
// grantee, by name and by retiring principal in id order with pages,
// counted, replaced, deleted, refused for a key that does not exist, and
// removed with their key.
func testGrants(t *testing.T, b Backend) {
	s, _ := open(t, b)
	Update(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"k1", "k2"} {
			if err := tx.PutKey(Key(id)); err != nil {
				return err
			}
		}
		return nil
	})
	const alice, bob = "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:role/bob"
	gs := []*kms.GrantRecord{
		grant("g3", "k1", alice, "n1", bob),
		grant("g1", "k1", bob, "", ""),
		grant("g2", "k1", alice, "n1", ""),
		grant("g4", "k2", alice, "", bob),
	}
	Update(t, s, func(tx kms.Tx) error {
		_, err := tx.GetGrant("g1")
		wantNotFound(t, `GetGrant("g1") before PutGrant`, err)
		if err := tx.PutGrant(grant("gx", "nokey", alice, "", "")); err == nil {
			t.Errorf("PutGrant for an absent key err = nil, want an error")
		}
		for _, bad := range []*kms.GrantRecord{nil, {KeyID: "k1"}, {ID: "g9"}} {
			if err := tx.PutGrant(bad); err == nil {
				t.Errorf("PutGrant(%+v) err = nil, want an error", bad)
			}
		}
		for _, g := range gs {
			if err := tx.PutGrant(g); err != nil {
				return err
			}
		}
		return nil
	})
	View(t, s, func(tx kms.Tx) error {
		got, err := tx.GetGrant("g3")
		if err != nil || !reflect.DeepEqual(got, gs[0]) {
			t.Errorf(`GetGrant("g3") = %+v, %v; want %+v`, got, err, gs[0])
		}
		tests := []struct {
			f     kms.GrantFilter
			after string
			limit int
			want  []string
		}{
			{kms.GrantFilter{KeyID: "k1"}, "", 0, []string{"g1", "g2", "g3"}},
			{kms.GrantFilter{KeyID: "k1"}, "", 2, []string{"g1", "g2"}},
			{kms.GrantFilter{KeyID: "k1"}, "g2", 0, []string{"g3"}},
			{kms.GrantFilter{KeyID: "k1", Grantee: alice}, "", 0, []string{"g2", "g3"}},
			{kms.GrantFilter{KeyID: "k1", Grantee: alice}, "g2", 0, []string{"g3"}},
			{kms.GrantFilter{KeyID: "k2", Grantee: bob}, "", 0, nil},
			{kms.GrantFilter{KeyID: "k1", Name: "n1"}, "", 0, []string{"g2", "g3"}},
			{kms.GrantFilter{RetiringPrincipal: bob}, "", 0, []string{"g3", "g4"}},
			{kms.GrantFilter{RetiringPrincipal: bob}, "", 1, []string{"g3"}},
			{kms.GrantFilter{}, "", 0, []string{"g1", "g2", "g3", "g4"}},
			{kms.GrantFilter{KeyID: "nokey"}, "", 0, nil},
		}
		for _, tc := range tests {
			got, err := tx.ListGrants(tc.f, tc.after, tc.limit)
			if err != nil || fmt.Sprint(grantIDs(got)) != fmt.Sprint(tc.want) {
				t.Errorf("ListGrants(%+v, %q, %d) = %v, %v; want %v", tc.f, tc.after, tc.limit, grantIDs(got), err, tc.want)
			}
		}
		for key, want := range map[string]int{"k1": 3, "k2": 1, "nokey": 0} {
			if n, err := tx.CountGrants(key); err != nil || n != want {
				t.Errorf("CountGrants(%q) = %d, %v; want %d", key, n, err, want)
			}
		}
		return nil
	})

	// Replace, delete (twice), and delete with the key.
	g1 := grant("g1", "k1", alice, "renamed", "")
	Update(t, s, func(tx kms.Tx) error {
		if err := tx.PutGrant(g1); err != nil {
			return err
		}
		if err := tx.DeleteGrant("g2"); err != nil {
			return err
		}
		return tx.DeleteGrant("g2")
	})
	View(t, s, func(tx kms.Tx) error {
		if got, err := tx.GetGrant("g1"); err != nil || !reflect.DeepEqual(got, g1) {
			t.Errorf(`GetGrant("g1") after replace = %+v, %v; want %+v`, got, err, g1)
		}
		_, err := tx.GetGrant("g2")
		wantNotFound(t, `GetGrant("g2") after DeleteGrant`, err)
		got, err := tx.ListGrants(kms.GrantFilter{KeyID: "k1", Grantee: alice}, "", 0)
		if err != nil || fmt.Sprint(grantIDs(got)) != "[g1 g3]" {
			t.Errorf("ListGrants by grantee after replace = %v, %v; want [g1 g3]", grantIDs(got), err)
		}
		return nil
	})
	Update(t, s, func(tx kms.Tx) error { return tx.DeleteKey("k1") })
	View(t, s, func(tx kms.Tx) error {
		for _, id := range []string{"g1", "g3"} {
			_, err := tx.GetGrant(id)
			wantNotFound(t, fmt.Sprintf("GetGrant(%q) after its key was deleted", id), err)
		}
		got, err := tx.ListGrants(kms.GrantFilter{}, "", 0)
		if err != nil || fmt.Sprint(grantIDs(got)) != "[g4]" {
			t.Errorf("ListGrants after a key was deleted = %v, %v; want [g4]", grantIDs(got), err)
		}
		return nil
	})
}
