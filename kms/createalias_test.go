package kms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

func countKeys(t *testing.T, svc *kms.Service) int {
	t.Helper()
	out, err := svc.ListKeys(t.Context(), &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys() err = %v", err)
	}
	return len(out.Keys)
}

func TestCreateKeyWithAlias(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	in := &kms.CreateKeyInput{Description: "app data", Tags: []kms.Tag{{Key: "team", Value: "core"}}}
	out, err := e.svc.CreateKeyWithAlias(ctx, in, "alias/app")
	if err != nil {
		t.Fatalf("CreateKeyWithAlias() err = %v, want nil", err)
	}
	m := out.KeyMetadata
	if m.Description != "app data" || m.KeySpec != kms.SpecSymmetricDefault || m.KeyState != kms.StateEnabled {
		t.Errorf("CreateKeyWithAlias() metadata = %+v", m)
	}
	if got := e.describe(t, "alias/app"); got.KeyId != m.KeyId {
		t.Errorf("alias/app names %s, want the new key %s", got.KeyId, m.KeyId)
	}
	tags, err := e.svc.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: m.KeyId})
	if err != nil || len(tags.Tags) != 1 || tags.Tags[0] != (kms.Tag{Key: "team", Value: "core"}) {
		t.Errorf("ListResourceTags() = %+v, %v; want team=core", tags, err)
	}
	blob := e.encrypt(t, "alias/app", []byte("secret"), nil)
	if dec, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}); err != nil || string(dec.Plaintext) != "secret" {
		t.Errorf("Decrypt() under the new key = %v, %v", dec, err)
	}

	// A taken alias: AlreadyExists, and no key is made.
	before := countKeys(t, e.svc)
	_, err = e.svc.CreateKeyWithAlias(ctx, &kms.CreateKeyInput{}, "alias/app")
	if kms.CodeOf(err) != kms.CodeAlreadyExists {
		t.Errorf("CreateKeyWithAlias(taken alias) err = %v, want AlreadyExistsException", err)
	}
	if n := countKeys(t, e.svc); n != before {
		t.Errorf("a refused CreateKeyWithAlias left %d keys, want %d", n, before)
	}
	if got := e.describe(t, "alias/app"); got.KeyId != m.KeyId {
		t.Errorf("a refused CreateKeyWithAlias moved alias/app to %s", got.KeyId)
	}
}

// TestCreateKeyWithAliasValidates: bad input is refused as CreateKey and
// CreateAlias refuse it, with the same error, and nothing is created.
func TestCreateKeyWithAliasValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		in    *kms.CreateKeyInput
		alias string
	}{
		{"unknown spec", &kms.CreateKeyInput{KeySpec: "NOPE"}, "alias/a"},
		{"unsupported spec", &kms.CreateKeyInput{KeySpec: "ECC_NIST_P256"}, "alias/a"},
		{"sign usage", &kms.CreateKeyInput{KeyUsage: "SIGN_VERIFY"}, "alias/a"},
		{"long description", &kms.CreateKeyInput{Description: strings.Repeat("d", 8193)}, "alias/a"},
		{"reserved tag", &kms.CreateKeyInput{Tags: []kms.Tag{{Key: "aws:x", Value: "y"}}}, "alias/a"},
		{"bad policy", &kms.CreateKeyInput{Policy: "not json"}, "alias/a"},
		{"no prefix", &kms.CreateKeyInput{}, "app"},
		{"reserved alias", &kms.CreateKeyInput{}, "alias/aws/app"},
		{"bad characters", &kms.CreateKeyInput{}, "alias/a b"},
		{"empty alias", &kms.CreateKeyInput{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := e.svc.CreateKeyWithAlias(ctx, tc.in, tc.alias)
			if got == nil {
				t.Fatal("CreateKeyWithAlias() err = nil, want an error")
			}
			// The error CreateKey or CreateAlias gives for the same input.
			_, want := e.svc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: tc.alias, TargetKeyId: "00000000-0000-4000-8000-000000000000"})
			if kms.CodeOf(want) == kms.CodeNotFound { // the alias is fine
				var out *kms.CreateKeyOutput
				out, want = e.svc.CreateKey(ctx, tc.in)
				if want == nil {
					t.Fatalf("CreateKey() accepted the input %s (key %s)", tc.name, out.KeyMetadata.KeyId)
				}
			}
			if got.Error() != want.Error() || kms.CodeOf(got) != kms.CodeOf(want) {
				t.Errorf("CreateKeyWithAlias() err = %v, want %v", got, want)
			}
			if n := countKeys(t, e.svc); n != 0 {
				t.Errorf("a refused CreateKeyWithAlias left %d keys", n)
			}
		})
	}
}

// failingAliasStore is a store whose transactions fail to write aliases.
type failingAliasStore struct{ kms.Store }

func (s failingAliasStore) Update(ctx context.Context, fn func(kms.Tx) error) error {
	return s.Store.Update(ctx, func(tx kms.Tx) error { return fn(failingAliasTx{tx}) })
}

type failingAliasTx struct{ kms.Tx }

var errAliasWrite = errors.New("alias write failed")

func (failingAliasTx) PutAlias(*kms.AliasRecord) error { return errAliasWrite }

// TestCreateKeyWithAliasOneTransaction: when the alias cannot be stored, the
// key is not stored either.
func TestCreateKeyWithAliasOneTransaction(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := make([]byte, 32)
	rand.Read(key)
	root, err := kms.NewAESRootKey(key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(t.Context(), failingAliasStore{store}, root, kms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKeyWithAlias(t.Context(), &kms.CreateKeyInput{}, "alias/app"); !errors.Is(err, errAliasWrite) {
		t.Fatalf("CreateKeyWithAlias() err = %v, want %v", err, errAliasWrite)
	}
	if n := countKeys(t, svc); n != 0 {
		t.Errorf("the key was stored without its alias (%d keys)", n)
	}
}
