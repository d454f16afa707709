package kms_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// TestCacheServesHotKeys checks that repeated operations on a key are
// served from memory, and that a change through the service takes effect
// at once.
func TestCacheServesHotKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.symKey(t)
	e.alias(t, "alias/hot", id)
	n := int32(32)
	for range 50 {
		if _, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/hot", NumberOfBytes: &n}); err != nil {
			t.Fatal(err)
		}
	}
	hits, misses := e.svc.CacheStats()
	if hits < 45 || misses > 5 {
		t.Fatalf("CacheStats() = %d hits, %d misses after 50 calls on one key; want nearly all hits", hits, misses)
	}
	if _, err := e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/hot", NumberOfBytes: &n}); kms.CodeOf(err) != kms.CodeDisabled {
		t.Fatalf("GenerateDataKey right after DisableKey: err = %v, want DisabledException", err)
	}
	if _, err := e.svc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	other := e.symKey(t)
	if _, err := e.svc.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/hot", TargetKeyId: other}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/hot", NumberOfBytes: &n})
	if err != nil || out.KeyId != e.keyARN(other) {
		t.Fatalf("GenerateDataKey right after UpdateAlias used %v (err %v), want %s", out, err, other)
	}
}

// TestCacheTTLSeesOtherProcesses: a second service on the same store (as
// another process would be) sees a change made by the first within the TTL.
func TestCacheTTLSeesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := make([]byte, 32)
	rand.Read(key)
	root, _ := kms.NewAESRootKey(key)
	const ttl = 50 * time.Millisecond
	a, err := kms.New(ctx, store, root, kms.Options{CacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	b, err := kms.New(ctx, store, root, kms.Options{CacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := ck.KeyMetadata.KeyId
	n := int32(16)
	gen := func() error {
		_, err := b.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: &n})
		return err
	}
	if err := gen(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gen() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the other service still uses the key 5 s after it was disabled")
		}
		time.Sleep(ttl / 5)
	}
	if err := gen(); kms.CodeOf(err) != kms.CodeDisabled {
		t.Fatalf("err = %v, want DisabledException", err)
	}
	// With the cache off every call reads the store.
	c, err := kms.New(ctx, store, root, kms.Options{CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if h, m := c.CacheStats(); h != 0 || m != 0 {
		t.Fatalf("CacheStats() with the cache off = %d, %d", h, m)
	}
}

// watchedStore is a store that counts its transactions and, in read
// transactions, calls onRead after each key or alias it reads, so that a
// test can hold a read of the store at that point. Its Tx wraps the
// store's, as any wrapper of a store would: the cache must work through it.
type watchedStore struct {
	kms.Store
	views, updates atomic.Int64
	onRead         atomic.Pointer[func(what, name string)]
}

func (w *watchedStore) View(ctx context.Context, fn func(kms.Tx) error) error {
	w.views.Add(1)
	return w.Store.View(ctx, func(tx kms.Tx) error { return fn(watchedTx{tx, w}) })
}

func (w *watchedStore) Update(ctx context.Context, fn func(kms.Tx) error) error {
	w.updates.Add(1)
	return w.Store.Update(ctx, func(tx kms.Tx) error { return fn(watchedTx{tx, nil}) })
}

// transactions returns how many transactions the store has run.
func (w *watchedStore) transactions() int64 { return w.views.Load() + w.updates.Load() }

// holdRead makes the next read transaction that reads the key or alias
// name ("key" or "alias") stop after reading it: held is closed then, and
// the transaction goes on when the returned function is called.
func (w *watchedStore) holdRead(what, name string) (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fn := func(w, n string) {
		if w == what && n == name {
			once.Do(func() { close(h); <-r })
		}
	}
	w.onRead.Store(&fn)
	return h, func() { w.onRead.Store(nil); close(r) }
}

type watchedTx struct {
	kms.Tx
	w *watchedStore // nil in write transactions
}

func (t watchedTx) read(what, name string) {
	if t.w != nil {
		if fn := t.w.onRead.Load(); fn != nil {
			(*fn)(what, name)
		}
	}
}

func (t watchedTx) GetKey(id string) (*kms.KeyRecord, error) {
	k, err := t.Tx.GetKey(id)
	t.read("key", id)
	return k, err
}

func (t watchedTx) GetAlias(name string) (*kms.AliasRecord, error) {
	a, err := t.Tx.GetAlias(name)
	t.read("alias", name)
	return a, err
}

// newWatched returns a service with a cache of the given TTL over a
// watched SQLite store in dir, sealing with root (nil: a new root key).
func newWatched(t *testing.T, dir string, root kms.RootKey, ttl time.Duration) (*kms.Service, *watchedStore, kms.RootKey) {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(dir, "keystore.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if root == nil {
		key := make([]byte, 32)
		rand.Read(key)
		if root, err = kms.NewAESRootKey(key); err != nil {
			t.Fatal(err)
		}
	}
	w := &watchedStore{Store: store}
	svc, err := kms.New(t.Context(), w, root, kms.Options{CacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return svc, w, root
}

// TestCacheServesEveryReadOperation: every operation of kms.API on a key
// either reads the store in no transaction at all once the key is hot
// (through a store whose Tx is wrapped), or is listed here as one that
// must read the store. An operation added to the API fails this test until
// it is put in one list or the other, and one that stops reading through
// the cache fails it too.
func TestCacheServesEveryReadOperation(t *testing.T) {
	svc, w, _ := newWatched(t, t.TempDir(), nil, time.Hour)
	ctx := t.Context()
	sym, err := svc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	s := sym.KeyMetadata.KeyId
	if _, err := svc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/s", TargetKeyId: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: s}); err != nil {
		t.Fatal(err)
	}
	asym, err := svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	r := asym.KeyMetadata.KeyId
	ec := map[string]string{"purpose": "test"}
	blob, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: s, Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	rsaBlob, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: r, Plaintext: []byte("secret"), EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
	if err != nil {
		t.Fatal(err)
	}
	newKey := func(spec, usage string) string {
		k, err := svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
		if err != nil {
			t.Fatal(err)
		}
		return k.KeyMetadata.KeyId
	}
	signing, mac, agreement := newKey(kms.SpecECCNISTP256, kms.UsageSignVerify), newKey(kms.SpecHMAC256, kms.UsageGenerateVerifyMac), newKey(kms.SpecECCNISTP256, kms.UsageKeyAgreement)
	external, err := svc.CreateKey(ctx, &kms.CreateKeyInput{Origin: kms.OriginExternal})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := svc.Sign(ctx, &kms.SignInput{KeyId: signing, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: mac, Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA256})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agreement})
	if err != nil {
		t.Fatal(err)
	}
	n := i32(32)
	errOf := func(_ any, err error) error { return err }
	cached := map[string]func() error{
		"Sign": func() error {
			return errOf(svc.Sign(ctx, &kms.SignInput{KeyId: signing, Message: []byte("x"), SigningAlgorithm: kms.AlgECDSASHA256}))
		},
		"Verify": func() error {
			return errOf(svc.Verify(ctx, &kms.VerifyInput{KeyId: signing, Message: []byte("m"), Signature: sig.Signature, SigningAlgorithm: kms.AlgECDSASHA256}))
		},
		"GenerateMac": func() error {
			return errOf(svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: mac, Message: []byte("x"), MacAlgorithm: kms.AlgHMACSHA256}))
		},
		"VerifyMac": func() error {
			return errOf(svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: mac, Message: []byte("m"), Mac: tag.Mac, MacAlgorithm: kms.AlgHMACSHA256}))
		},
		"DeriveSharedSecret": func() error {
			return errOf(svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agreement, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: peer.PublicKey}))
		},
		"Encrypt": func() error {
			return errOf(svc.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/s", Plaintext: []byte("x"), EncryptionContext: ec}))
		},
		"Encrypt RSA": func() error {
			return errOf(svc.Encrypt(ctx, &kms.EncryptInput{KeyId: r, Plaintext: []byte("x"), EncryptionAlgorithm: kms.AlgRSAOAEPSHA1}))
		},
		"Decrypt": func() error {
			return errOf(svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob, EncryptionContext: ec}))
		},
		"Decrypt RSA": func() error {
			return errOf(svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: rsaBlob.CiphertextBlob, KeyId: r, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256}))
		},
		"ReEncrypt": func() error {
			return errOf(svc.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: "alias/s"}))
		},
		"GenerateDataKey": func() error {
			return errOf(svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/s", NumberOfBytes: n}))
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			return errOf(svc.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: s, KeySpec: "AES_256"}))
		},
		"GenerateDataKeyPair": func() error {
			return errOf(svc.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: s, KeyPairSpec: "ECC_NIST_P256"}))
		},
		"GenerateDataKeyPairWithoutPlaintext": func() error {
			return errOf(svc.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: "alias/s", KeyPairSpec: "ECC_NIST_P256"}))
		},
		"GetPublicKey":         func() error { return errOf(svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: r})) },
		"DescribeKey":          func() error { return errOf(svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/s"})) },
		"ListResourceTags":     func() error { return errOf(svc.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: s})) },
		"GetKeyRotationStatus": func() error { return errOf(svc.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: s})) },
		"ListKeyRotations":     func() error { return errOf(svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: s})) },
		"GetKeyPolicy":         func() error { return errOf(svc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: s})) },
		"ListKeyPolicies":      func() error { return errOf(svc.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: s})) },
		"GetParametersForImport": func() error {
			return errOf(svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: external.KeyMetadata.KeyId,
				WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048}))
		},
		"ResolveKey": func() error { return errOf(svc.ResolveKey(ctx, "alias/s")) }, // not in API: the server's
	}
	uncached := map[string]string{
		"CreateKey": "a write", "UpdateKeyDescription": "a write", "EnableKey": "a write", "DisableKey": "a write",
		"ScheduleKeyDeletion": "a write", "CancelKeyDeletion": "a write", "CreateAlias": "a write",
		"UpdateAlias": "a write", "DeleteAlias": "a write", "TagResource": "a write", "UntagResource": "a write",
		"EnableKeyRotation": "a write", "DisableKeyRotation": "a write", "RotateKeyOnDemand": "a write",
		"PutKeyPolicy": "a write", "ImportKeyMaterial": "a write", "DeleteImportedKeyMaterial": "a write", "CreateGrant": "a write", "RetireGrant": "a write", "RevokeGrant": "a write",
		"ListGrants": "a listing", "ListRetirableGrants": "a listing", "ListKeys": "a listing", "ListAliases": "a listing", "GenerateRandom": "on no key",
	}
	api := reflect.TypeFor[kms.API]()
	for i := range api.NumMethod() {
		name := api.Method(i).Name
		_, c := cached[name]
		_, u := uncached[name]
		if c == u {
			t.Errorf("kms.API.%s is in %d of the lists of cached and uncached operations, want 1", name, btoi(c)+btoi(u))
		}
	}
	for name, op := range cached {
		if err := op(); err != nil { // warms the cache
			t.Fatalf("%s: %v", name, err)
		}
		tx0 := w.transactions()
		hits0, misses0 := svc.CacheStats()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hits, misses := svc.CacheStats()
		if tx := w.transactions() - tx0; tx != 0 || hits == hits0 || misses != misses0 {
			t.Errorf("%s on a hot key: %d store transactions, %d cache hits, %d misses; want 0, at least 1, 0",
				name, tx, hits-hits0, misses-misses0)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestInvalidate: a change made by another service on the same store goes
// unseen while the cache holds the key, and is seen at once when announced
// to Invalidate: per key, per alias, or all.
func TestInvalidate(t *testing.T) {
	dir := t.TempDir()
	a, _, root := newWatched(t, dir, nil, time.Hour)
	b, w, _ := newWatched(t, dir, root, time.Hour)
	ctx := t.Context()
	n := i32(16)
	newKey := func() string {
		out, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyId
	}
	gen := func(ref string) (string, error) {
		out, err := b.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ref, NumberOfBytes: n})
		if err != nil {
			return "", err
		}
		return out.KeyId, nil
	}
	k1, k2, k3 := newKey(), newKey(), newKey()
	for _, id := range []string{k1, k2, k3} {
		if _, err := gen(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/x", TargetKeyId: k1}); err != nil {
		t.Fatal(err)
	}
	if _, err := gen("alias/x"); err != nil {
		t.Fatal(err)
	}

	// A key disabled elsewhere is still served from b's cache ...
	if _, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k1}); err != nil {
		t.Fatal(err)
	}
	if _, err := gen(k1); err != nil {
		t.Fatalf("GenerateDataKey of a key disabled by another service, before Invalidate: err = %v, want it served from the cache (an hour's TTL)", err)
	}
	// ... until the change is announced; the other keys stay cached.
	b.Invalidate(kms.Change{KeyIDs: []string{k1}})
	if _, err := gen(k1); kms.CodeOf(err) != kms.CodeDisabled {
		t.Fatalf("GenerateDataKey after Invalidate of the disabled key: err = %v, want DisabledException", err)
	}
	tx0 := w.transactions()
	if _, err := gen(k2); err != nil {
		t.Fatal(err)
	}
	if tx := w.transactions() - tx0; tx != 0 {
		t.Errorf("GenerateDataKey under another key after Invalidate of one: %d store transactions, want 0 (still cached)", tx)
	}

	// An alias repointed elsewhere: seen once announced. (Invalidating k1
	// dropped alias/x, which pointed to it: read it again first.)
	if _, err := gen("alias/x"); kms.CodeOf(err) != kms.CodeDisabled {
		t.Fatalf("GenerateDataKey(alias/x) err = %v, want DisabledException", err)
	}
	if _, err := a.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/x", TargetKeyId: k2}); err != nil {
		t.Fatal(err)
	}
	if used, err := gen("alias/x"); kms.CodeOf(err) != kms.CodeDisabled {
		t.Fatalf("before Invalidate, alias/x used %s (err %v); want the cached target, disabled", used, err)
	}
	b.Invalidate(kms.Change{Aliases: []string{"alias/x"}})
	if used, err := gen("alias/x"); err != nil || used != b.KeyARN(k2) {
		t.Fatalf("after Invalidate of alias/x, it used %s (err %v), want %s", used, err, k2)
	}

	// Everything.
	if _, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k2}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k3}); err != nil {
		t.Fatal(err)
	}
	b.Invalidate(kms.Change{All: true})
	for _, id := range []string{k2, k3} {
		if _, err := gen(id); kms.CodeOf(err) != kms.CodeDisabled {
			t.Errorf("after Invalidate(All), GenerateDataKey(%s) err = %v, want DisabledException", id, err)
		}
	}

	// A key destroyed elsewhere: naming it drops the aliases cached as
	// pointing to it too.
	k4 := newKey()
	if _, err := a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/y", TargetKeyId: k4}); err != nil {
		t.Fatal(err)
	}
	if _, err := gen("alias/y"); err != nil {
		t.Fatal(err)
	}
	days := i32(7)
	if _, err := a.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k4, PendingWindowInDays: days}); err != nil {
		t.Fatal(err)
	}
	b.Invalidate(kms.Change{KeyIDs: []string{k4}})
	if _, err := gen("alias/y"); kms.CodeOf(err) != kms.CodeInvalidState {
		t.Fatalf("GenerateDataKey(alias/y) after its key's deletion was scheduled and announced: err = %v, want KMSInvalidStateException", err)
	}
}

// TestCacheFillRacingChange: a read of the store that began before a change
// and fills the cache after the change was announced does not leave what
// it read in the cache (an hour's TTL would keep it that long); a fill of
// another key, racing the same change, is kept.
func TestCacheFillRacingChange(t *testing.T) {
	n := i32(16)
	disable := func(t *testing.T, s *kms.Service, id string) {
		if _, err := s.DisableKey(t.Context(), &kms.DisableKeyInput{KeyId: id}); err != nil {
			t.Fatal(err)
		}
	}
	wantDisabled := func(t *testing.T, b *kms.Service, ids []string) {
		_, err := b.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: ids[0], NumberOfBytes: n})
		if kms.CodeOf(err) != kms.CodeDisabled {
			t.Fatalf("GenerateDataKey after the change err = %v, want DisabledException", err)
		}
	}
	for _, c := range []struct {
		name string
		// alias: the read held is of alias/race (→ ids[0]), else of ids[0].
		alias bool
		// change is made (by a or b; a is another service on the same
		// store) while b's read is held; then check must pass.
		change func(t *testing.T, a, b *kms.Service, ids []string)
		check  func(t *testing.T, b *kms.Service, ids []string)
		// all: the change drops every fill under way.
		all bool
	}{
		{name: "key disabled by the service",
			change: func(t *testing.T, _, b *kms.Service, ids []string) { disable(t, b, ids[0]) },
			check:  wantDisabled},
		{name: "alias repointed by the service", alias: true,
			change: func(t *testing.T, _, b *kms.Service, ids []string) {
				if _, err := b.UpdateAlias(t.Context(), &kms.UpdateAliasInput{AliasName: "alias/race", TargetKeyId: ids[1]}); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, b *kms.Service, ids []string) {
				out, err := b.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: "alias/race", NumberOfBytes: n})
				if err != nil {
					t.Fatalf("GenerateDataKey(alias/race) after UpdateAlias err = %v, want nil", err)
				}
				if out.KeyId != b.KeyARN(ids[1]) {
					t.Fatalf("GenerateDataKey(alias/race) after UpdateAlias used %s, want %s", out.KeyId, ids[1])
				}
			}},
		{name: "key disabled elsewhere, announced",
			change: func(t *testing.T, a, b *kms.Service, ids []string) {
				disable(t, a, ids[0])
				b.Invalidate(kms.Change{KeyIDs: []string{ids[0]}})
			},
			check: wantDisabled},
		{name: "key disabled elsewhere, all announced", all: true,
			change: func(t *testing.T, a, b *kms.Service, ids []string) {
				disable(t, a, ids[0])
				b.Invalidate(kms.Change{All: true})
			},
			check: wantDisabled},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			a, _, root := newWatched(t, dir, nil, time.Hour)
			b, w, _ := newWatched(t, dir, root, time.Hour)
			ctx := t.Context()
			var ids []string
			for range 3 {
				out, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, out.KeyMetadata.KeyId)
			}
			if _, err := a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/race", TargetKeyId: ids[0]}); err != nil {
				t.Fatal(err)
			}
			what, ref := "key", ids[0]
			if c.alias {
				what, ref = "alias", "alias/race"
			}
			held, release := w.holdRead(what, ref)
			done := make(chan error, 2)
			go func() {
				_, err := b.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ref, NumberOfBytes: n})
				done <- err
			}()
			<-held
			// Another fill, of another key, is under way during the change.
			w2, release2 := w.holdRead("key", ids[2])
			go func() {
				_, err := b.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ids[2], NumberOfBytes: n})
				done <- err
			}()
			<-w2
			c.change(t, a, b, ids)
			release()
			release2()
			for range 2 {
				if err := <-done; err != nil {
					t.Fatalf("GenerateDataKey that read the store before the change: err = %v, want nil", err)
				}
			}
			c.check(t, b, ids)
			tx0 := w.transactions()
			if _, err := b.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ids[2], NumberOfBytes: n}); err != nil {
				t.Fatal(err)
			}
			if tx := w.transactions() - tx0; tx != 0 && !c.all {
				t.Errorf("the fill of another key, racing the change, was not kept: %d store transactions, want 0", tx)
			}
		})
	}
}

// TestCacheConcurrentFillsAndChanges: readers fill the cache while a writer
// changes the key; every read that starts after a change returned sees it
// (with an hour's TTL, only invalidation can make it so).
func TestCacheConcurrentFillsAndChanges(t *testing.T) {
	svc, _, _ := newWatched(t, t.TempDir(), nil, time.Hour)
	ctx := t.Context()
	out, err := svc.CreateKey(ctx, &kms.CreateKeyInput{Description: "0"})
	if err != nil {
		t.Fatal(err)
	}
	id := out.KeyMetadata.KeyId
	const writes, readers = 100, 4
	var written atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := written.Load()
				d, err := svc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
				if err != nil {
					errs <- err
					return
				}
				if got, _ := strconv.ParseInt(d.KeyMetadata.Description, 10, 64); got < before {
					errs <- fmt.Errorf("DescribeKey begun after description %d was written returned %d", before, got)
					return
				}
			}
		}()
	}
	for i := int64(1); i <= writes; i++ {
		if _, err := svc.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: id, Description: strconv.FormatInt(i, 10)}); err != nil {
			t.Fatal(err)
		}
		written.Store(i)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hits, misses := svc.CacheStats(); hits == 0 || misses == 0 {
		t.Errorf("CacheStats() = %d hits, %d misses: the readers did not both hit and fill the cache", hits, misses)
	}
}
