package kms_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
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
