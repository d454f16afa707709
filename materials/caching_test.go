package materials_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

// cacheFakeManager is an underlying manager with real behaviour and no
// keyring: each data key is "wrapped" as itself under provider "fake", so
// decryption finds it again. It counts its calls.
type cacheFakeManager struct {
	enc, dec atomic.Int64
}

func (f *cacheFakeManager) EncryptionMaterials(_ context.Context, req materials.EncryptionRequest) (*keyring.EncryptionMaterials, error) {
	f.enc.Add(1)
	s := req.Suite
	if s == nil {
		s = req.Policy.DefaultSuite()
	}
	dk := make([]byte, s.KeyLength)
	rand.Read(dk)
	ec := maps.Clone(req.Context)
	if ec == nil {
		ec = map[string]string{}
	}
	return &keyring.EncryptionMaterials{
		Suite: s, Context: ec, DataKey: dk,
		EncryptedDataKeys: []keyring.EncryptedDataKey{{ProviderID: "fake", ProviderInfo: []byte("k"), Ciphertext: bytes.Clone(dk)}},
	}, nil
}

func (f *cacheFakeManager) DecryptionMaterials(_ context.Context, req materials.DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	f.dec.Add(1)
	for _, k := range req.EncryptedDataKeys {
		if k.ProviderID == "fake" && len(k.Ciphertext) == req.Suite.KeyLength {
			return &keyring.DecryptionMaterials{Suite: req.Suite, Context: req.Context, DataKey: bytes.Clone(k.Ciphertext)}, nil
		}
	}
	dk := make([]byte, req.Suite.KeyLength)
	rand.Read(dk)
	return &keyring.DecryptionMaterials{Suite: req.Suite, Context: req.Context, DataKey: dk}, nil
}

// tallyKeyring counts the calls that reach a real keyring, safely across
// goroutines.
type tallyKeyring struct {
	keyring.Keyring
	enc, dec atomic.Int64
}

func (k *tallyKeyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	k.enc.Add(1)
	return k.Keyring.OnEncrypt(ctx, m)
}

func (k *tallyKeyring) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	k.dec.Add(1)
	return k.Keyring.OnDecrypt(ctx, m, edks)
}

func newTallyAES(t testing.TB) *tallyKeyring {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("ns", "cache-test", key)
	if err != nil {
		t.Fatalf("NewRawAES err = %v, want nil", err)
	}
	return &tallyKeyring{Keyring: kr}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCaching(t testing.TB, under materials.Manager, opts materials.CachingOptions) *materials.Caching {
	t.Helper()
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour
	}
	c, err := materials.NewCaching(under, opts)
	if err != nil {
		t.Fatalf("NewCaching err = %v, want nil", err)
	}
	return c
}

func cacheSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, ok := suite.ByID(id)
	if !ok {
		t.Fatalf("ByID(%s) ok = false", id)
	}
	return s
}

func cacheEncrypt(t testing.TB, c materials.Manager, req materials.EncryptionRequest) *keyring.EncryptionMaterials {
	t.Helper()
	m, err := c.EncryptionMaterials(context.Background(), req)
	if err != nil {
		t.Fatalf("EncryptionMaterials(%+v) err = %v, want nil", req, err)
	}
	return m
}

func cacheLease(t testing.TB, c materials.Leaser, n int64) (*keyring.EncryptionMaterials, *materials.Lease) {
	t.Helper()
	m, l, err := c.LeaseEncryptionMaterials(context.Background(), materials.EncryptionRequest{PlaintextLength: n})
	if err != nil {
		t.Fatalf("LeaseEncryptionMaterials(%d) err = %v, want nil", n, err)
	}
	return m, l
}

func TestNewCachingOptions(t *testing.T) {
	under := &cacheFakeManager{}
	for _, tc := range []struct {
		name string
		opts materials.CachingOptions
	}{
		{"no max age", materials.CachingOptions{}},
		{"negative max age", materials.CachingOptions{MaxAge: -time.Second}},
		{"too many messages", materials.CachingOptions{MaxAge: time.Hour, MaxMessagesEncrypted: 1<<32 + 1}},
		{"negative bytes", materials.CachingOptions{MaxAge: time.Hour, MaxBytesEncrypted: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := materials.NewCaching(under, tc.opts); err == nil {
				t.Errorf("NewCaching(%+v) err = nil, want an error", tc.opts)
			}
		})
	}
	if _, err := materials.NewCaching(nil, materials.CachingOptions{MaxAge: time.Hour}); err == nil {
		t.Error("NewCaching(nil) err = nil, want an error")
	}
	if _, err := materials.NewCaching(under, materials.CachingOptions{MaxAge: time.Hour, MaxMessagesEncrypted: 1 << 32, MaxBytesEncrypted: math.MaxInt64}); err != nil {
		t.Errorf("NewCaching at the largest limits err = %v, want nil", err)
	}
}

// The identifiers of the ESDK's own test fixtures (Python and JavaScript
// SDKs, modules/cache-material/test/fixtures.ts).
func TestCachingIdentifierVectors(t *testing.T) {
	const partition = "c15b9079-6d0e-42b6-8784-5e804b025692"
	full := map[string]string{"this": "is", "a": "non-empty", "encryption": "context"}
	edk1 := keyring.EncryptedDataKey{ProviderID: "this is a provider ID", ProviderInfo: []byte("this is some key info"), Ciphertext: []byte("super secret key, now with encryption!")}
	edk2 := keyring.EncryptedDataKey{ProviderID: "another provider ID!", ProviderInfo: []byte("this is some different key info"), Ciphertext: []byte("better super secret key, now with encryption!")}
	s0114 := cacheSuite(t, suite.AES128GCMHKDFSHA256)
	s0378 := cacheSuite(t, suite.AES256GCMHKDFSHA384ECDSAP384)

	check := func(t *testing.T, cache *materials.Cache, want string) {
		t.Helper()
		es := cache.Entries()
		if len(es) != 1 {
			t.Fatalf("cache has %d entries, want 1", len(es))
		}
		if got := base64.StdEncoding.EncodeToString(es[0].ID[:]); got != want {
			t.Errorf("cache identifier = %s, want %s", got, want)
		}
	}
	for _, tc := range []struct {
		name string
		req  materials.EncryptionRequest
		want string
	}{
		{"no suite, empty context", materials.EncryptionRequest{}, "rkrFAso1YyPbOJbmwVMjrPw+wwLJT7xusn8tA8zMe9e3+OqbtfDueB7bvoKLU3fsmdUvZ6eMt7mBp1ThMMB25Q=="},
		{"suite, empty context", materials.EncryptionRequest{Suite: s0378, Policy: suite.ForbidEncryptAllowDecrypt}, "3icBIkLK4V3fVwbm3zSxUdUQV6ZvZYUOLl8buN36g6gDMqAkghcGryxX7QiVABkW1JhB6GRp5z+bzbiuciBcKQ=="},
		{"no suite, context", materials.EncryptionRequest{Context: full}, "IHiUHYOUVUEFTc3BcZPJDlsWct2Qy1A7JdfQl9sQoV/ILIbRpoz9q7RtGd/MlibaGl5ihE66cN8ygM8A5rtYbg=="},
		{"suite, context", materials.EncryptionRequest{Context: full, Suite: s0378, Policy: suite.ForbidEncryptAllowDecrypt}, "mRNK7qhTb/kJiiyGPgAevp0gwFRcET4KeeNYwZHhoEDvSUzQiDgl8Of+YRDaVzKxAqpNBgcAuFXde9JlaRRsmw=="},
	} {
		t.Run("encrypt "+tc.name, func(t *testing.T) {
			cache := materials.NewCache(10)
			c := newTestCaching(t, &cacheFakeManager{}, materials.CachingOptions{Partition: partition, Cache: cache})
			tc.req.PlaintextLength = 10
			cacheEncrypt(t, c, tc.req)
			check(t, cache, tc.want)
		})
	}
	for _, tc := range []struct {
		name string
		req  materials.DecryptionRequest
		want string
	}{
		{"one key", materials.DecryptionRequest{Suite: s0114, EncryptedDataKeys: []keyring.EncryptedDataKey{edk1}}, "n0zVzk9QIVxhz6ET+aJIKKOJNxtpGtSe1yAbu7WU5l272Iw/jmhlER4psDHJs9Mr8KYiIvLGSXzggNDCc23+9w=="},
		{"two keys", materials.DecryptionRequest{Suite: s0378, EncryptedDataKeys: []keyring.EncryptedDataKey{edk1, edk2}, Context: full}, "+rtwUe38CGnczGmYu12iqGWHIyDyZ44EvYQ4S6ACmsgS8VaEpiw0RTGpDk6Z/7YYN/jVHOAcNKDyCNP8EmstFg=="},
		{"two keys reversed", materials.DecryptionRequest{Suite: s0378, EncryptedDataKeys: []keyring.EncryptedDataKey{edk2, edk1}, Context: full}, "+rtwUe38CGnczGmYu12iqGWHIyDyZ44EvYQ4S6ACmsgS8VaEpiw0RTGpDk6Z/7YYN/jVHOAcNKDyCNP8EmstFg=="},
	} {
		t.Run("decrypt "+tc.name, func(t *testing.T) {
			cache := materials.NewCache(10)
			c := newTestCaching(t, &cacheFakeManager{}, materials.CachingOptions{Partition: partition, Cache: cache})
			tc.req.Policy = suite.RequireEncryptAllowDecrypt
			if _, err := c.DecryptionMaterials(context.Background(), tc.req); err != nil {
				t.Fatalf("DecryptionMaterials err = %v, want nil", err)
			}
			check(t, cache, tc.want)
		})
	}
}

// The underlying keyring is called once for many messages, and entries are
// told apart by context and requested suite.
func TestCachingEncryptHitMiss(t *testing.T) {
	kr := newTallyAES(t)
	cache := materials.NewCache(10)
	c := newTestCaching(t, materials.NewDefault(kr), materials.CachingOptions{Cache: cache})
	ec := map[string]string{"purpose": "test"}
	first := cacheEncrypt(t, c, materials.EncryptionRequest{Context: ec, PlaintextLength: 100})
	for range 99 {
		m := cacheEncrypt(t, c, materials.EncryptionRequest{Context: ec, PlaintextLength: 100})
		if !bytes.Equal(m.DataKey, first.DataKey) {
			t.Fatal("a cache hit returned another data key")
		}
	}
	if got := kr.enc.Load(); got != 1 {
		t.Errorf("keyring OnEncrypt calls = %d for 100 messages, want 1", got)
	}
	if es := cache.Entries(); len(es) != 1 || es[0].Messages != 100 || es[0].Bytes != 100*100 {
		t.Errorf("entries = %+v, want one with 100 messages and 10000 bytes", es)
	}

	other := cacheEncrypt(t, c, materials.EncryptionRequest{Context: map[string]string{"purpose": "other"}, PlaintextLength: 1})
	withSuite := cacheEncrypt(t, c, materials.EncryptionRequest{Context: ec, Suite: first.Suite, PlaintextLength: 1})
	if got := kr.enc.Load(); got != 3 {
		t.Errorf("keyring OnEncrypt calls = %d, want 3 (another context, an explicit suite)", got)
	}
	if bytes.Equal(other.DataKey, first.DataKey) || bytes.Equal(withSuite.DataKey, first.DataKey) {
		t.Error("another context or an explicit suite was given the cached data key")
	}
	if got := len(cache.Entries()); got != 3 {
		t.Errorf("cache has %d entries, want 3", got)
	}
}

func TestCachingMaxAge(t *testing.T) {
	clock := newFakeClock()
	under := &cacheFakeManager{}
	cache := materials.NewCache(10)
	c := newTestCaching(t, under, materials.CachingOptions{MaxAge: time.Minute, Now: clock.Now, Cache: cache})
	req := materials.EncryptionRequest{PlaintextLength: 1}
	a := cacheEncrypt(t, c, req)
	clock.Advance(time.Minute - time.Nanosecond)
	if b := cacheEncrypt(t, c, req); !bytes.Equal(a.DataKey, b.DataKey) {
		t.Error("materials younger than MaxAge were not reused")
	}
	clock.Advance(time.Nanosecond)
	if b := cacheEncrypt(t, c, req); bytes.Equal(a.DataKey, b.DataKey) {
		t.Error("materials MaxAge old were reused")
	}
	if got := under.enc.Load(); got != 2 {
		t.Errorf("underlying calls = %d, want 2", got)
	}

	// Expired entries are pruned by any operation, not only a lookup of
	// their own identifier.
	clock.Advance(time.Hour)
	cacheEncrypt(t, c, materials.EncryptionRequest{Context: map[string]string{"a": "b"}, PlaintextLength: 1})
	if es := cache.Entries(); len(es) != 1 {
		t.Errorf("cache has %d entries after expiry, want 1 (only the new one)", len(es))
	}

	// An expired entry is not handed out even when the pruning of the
	// least recently used entries does not reach it.
	clock.Advance(time.Hour)
	x := cacheEncrypt(t, c, req)
	clock.Advance(30 * time.Second)
	for i := range 9 {
		cacheEncrypt(t, c, materials.EncryptionRequest{Context: map[string]string{"i": fmt.Sprint(i)}, PlaintextLength: 1})
	}
	cacheEncrypt(t, c, req) // x is now the most recently used
	clock.Advance(30 * time.Second)
	if y := cacheEncrypt(t, c, req); bytes.Equal(x.DataKey, y.DataKey) {
		t.Error("the most recently used entry was reused MaxAge after it was made")
	}
}

// An idle cache drops its expired data keys by itself.
func TestCachingExpiryTimer(t *testing.T) {
	cache := materials.NewCache(10)
	c := newTestCaching(t, &cacheFakeManager{}, materials.CachingOptions{MaxAge: 10 * time.Millisecond, Cache: cache})
	cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: 1})
	deadline := time.Now().Add(10 * time.Second)
	for len(cache.Entries()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("expired entry still cached after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCachingMaxMessages(t *testing.T) {
	under := &cacheFakeManager{}
	c := newTestCaching(t, under, materials.CachingOptions{MaxMessagesEncrypted: 3})
	uses := map[string]int{}
	for range 7 {
		m := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: 1})
		uses[string(m.DataKey)]++
	}
	if got := under.enc.Load(); got != 3 {
		t.Errorf("underlying calls = %d for 7 messages at 3 per key, want 3", got)
	}
	for _, n := range uses {
		if n > 3 {
			t.Errorf("a data key encrypted %d messages, limit 3", n)
		}
	}

	// Managers sharing entries each apply their own limit.
	cache := materials.NewCache(10)
	loose := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "p", MaxMessagesEncrypted: 10})
	strict := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "p", MaxMessagesEncrypted: 3})
	shared := cacheEncrypt(t, loose, materials.EncryptionRequest{PlaintextLength: 1})
	for range 4 {
		cacheEncrypt(t, loose, materials.EncryptionRequest{PlaintextLength: 1})
	}
	if m := cacheEncrypt(t, strict, materials.EncryptionRequest{PlaintextLength: 1}); bytes.Equal(m.DataKey, shared.DataKey) {
		t.Error("a manager limited to 3 messages per key reused a key that had encrypted 5")
	}

	one := newTestCaching(t, under, materials.CachingOptions{MaxMessagesEncrypted: 1})
	before := under.enc.Load()
	a := cacheEncrypt(t, one, materials.EncryptionRequest{PlaintextLength: 1})
	b := cacheEncrypt(t, one, materials.EncryptionRequest{PlaintextLength: 1})
	if under.enc.Load()-before != 2 || bytes.Equal(a.DataKey, b.DataKey) {
		t.Error("MaxMessagesEncrypted 1 reused a data key")
	}
}

func TestCachingMaxBytes(t *testing.T) {
	under := &cacheFakeManager{}
	cache := materials.NewCache(10)
	c := newTestCaching(t, under, materials.CachingOptions{MaxBytesEncrypted: 100, Cache: cache})
	req := func(n int64) materials.EncryptionRequest { return materials.EncryptionRequest{PlaintextLength: n} }

	a := cacheEncrypt(t, c, req(40))
	if b := cacheEncrypt(t, c, req(60)); !bytes.Equal(a.DataKey, b.DataKey) {
		t.Error("40+60 bytes under a 100-byte limit did not reuse the key")
	}
	if c2 := cacheEncrypt(t, c, req(1)); bytes.Equal(a.DataKey, c2.DataKey) {
		t.Error("a key that encrypted 100 bytes of 100 was reused")
	}
	d := cacheEncrypt(t, c, req(50)) // the entry from req(1) now holds 51
	big := cacheEncrypt(t, c, req(101))
	if bytes.Equal(big.DataKey, d.DataKey) {
		t.Error("a message larger than the limit got the cached key")
	}
	if e := cacheEncrypt(t, c, req(49)); !bytes.Equal(e.DataKey, d.DataKey) {
		t.Error("a message larger than the limit evicted the cached key")
	}
	if f := cacheEncrypt(t, c, req(1)); bytes.Equal(f.DataKey, d.DataKey) {
		t.Error("1+50+49+1 bytes reused a key limited to 100")
	}
	if got := under.enc.Load(); got != 4 {
		t.Errorf("underlying calls = %d, want 4", got)
	}
	for _, e := range cache.Entries() {
		if e.Bytes > 100 {
			t.Errorf("entry holds %d bytes, limit 100", e.Bytes)
		}
	}
}

func TestCachingCapacity(t *testing.T) {
	under := &cacheFakeManager{}
	cache := materials.NewCache(2)
	c := newTestCaching(t, under, materials.CachingOptions{Cache: cache})
	get := func(name string) []byte {
		return cacheEncrypt(t, c, materials.EncryptionRequest{Context: map[string]string{"k": name}, PlaintextLength: 1}).DataKey
	}
	a, b := get("a"), get("b")
	if !bytes.Equal(get("a"), a) { // a is now the most recently used
		t.Fatal("a missed with room in the cache")
	}
	get("c") // evicts b, the least recently used
	if got := len(cache.Entries()); got != 2 {
		t.Errorf("cache of capacity 2 holds %d entries", got)
	}
	if !bytes.Equal(get("a"), a) {
		t.Error("a was evicted instead of the least recently used b")
	}
	if bytes.Equal(get("b"), b) {
		t.Error("b, the least recently used, was not evicted")
	}

	none := newTestCaching(t, under, materials.CachingOptions{Cache: materials.NewCache(0)})
	x := cacheEncrypt(t, none, materials.EncryptionRequest{PlaintextLength: 1})
	if y := cacheEncrypt(t, none, materials.EncryptionRequest{PlaintextLength: 1}); bytes.Equal(x.DataKey, y.DataKey) {
		t.Error("a cache of capacity 0 reused a data key")
	}

	cache.Clear()
	if got := len(cache.Entries()); got != 0 {
		t.Errorf("cache holds %d entries after Clear", got)
	}
}

func TestCachingPartitions(t *testing.T) {
	cache := materials.NewCache(10)
	under := &cacheFakeManager{}
	req := materials.EncryptionRequest{PlaintextLength: 1}
	a1 := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "a"})
	a2 := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "a"})
	b := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "b"})
	anon1 := newTestCaching(t, under, materials.CachingOptions{Cache: cache})
	anon2 := newTestCaching(t, under, materials.CachingOptions{Cache: cache})

	m := cacheEncrypt(t, a1, req)
	if !bytes.Equal(cacheEncrypt(t, a2, req).DataKey, m.DataKey) {
		t.Error("two managers with the same partition did not share an entry")
	}
	for name, c := range map[string]*materials.Caching{"partition b": b, "default partition": anon1} {
		if bytes.Equal(cacheEncrypt(t, c, req).DataKey, m.DataKey) {
			t.Errorf("a manager with %s got partition a's data key", name)
		}
	}
	n := cacheEncrypt(t, anon1, req)
	if bytes.Equal(cacheEncrypt(t, anon2, req).DataKey, n.DataKey) {
		t.Error("two managers with default partitions shared an entry")
	}
	if got := len(cache.Entries()); got != 4 {
		t.Errorf("shared cache holds %d entries, want 4", got)
	}
}

// Suites without key derivation are never cached, on either side.
func TestCachingNoKDFSuites(t *testing.T) {
	for _, id := range []suite.ID{suite.AES128GCM, suite.AES192GCM, suite.AES256GCM} {
		t.Run(id.String(), func(t *testing.T) {
			under := &cacheFakeManager{}
			cache := materials.NewCache(10)
			c := newTestCaching(t, under, materials.CachingOptions{Cache: cache})
			s := cacheSuite(t, id)
			req := materials.EncryptionRequest{Suite: s, Policy: suite.ForbidEncryptAllowDecrypt, PlaintextLength: 1}
			a := cacheEncrypt(t, c, req)
			b := cacheEncrypt(t, c, req)
			_, l, err := c.LeaseEncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: s, Policy: suite.ForbidEncryptAllowDecrypt, PlaintextLength: -1})
			if err != nil {
				t.Fatalf("LeaseEncryptionMaterials err = %v, want nil", err)
			}
			l.Done(10)
			if bytes.Equal(a.DataKey, b.DataKey) || under.enc.Load() != 3 {
				t.Errorf("underlying encrypt calls = %d for 3 requests, want 3 and distinct keys", under.enc.Load())
			}
			dreq := materials.DecryptionRequest{Suite: s, Policy: suite.RequireEncryptAllowDecrypt, EncryptedDataKeys: a.EncryptedDataKeys}
			for range 2 {
				if _, err := c.DecryptionMaterials(context.Background(), dreq); err != nil {
					t.Fatalf("DecryptionMaterials err = %v, want nil", err)
				}
			}
			if got := under.dec.Load(); got != 2 {
				t.Errorf("underlying decrypt calls = %d for 2 requests, want 2", got)
			}
			if es := cache.Entries(); len(es) != 0 {
				t.Errorf("cache holds %d entries of suite %s", len(es), id)
			}
		})
	}
	// The same policy with a suite that has a KDF is cached.
	under := &cacheFakeManager{}
	c := newTestCaching(t, under, materials.CachingOptions{})
	req := materials.EncryptionRequest{Suite: cacheSuite(t, suite.AES256GCMHKDFSHA256), Policy: suite.ForbidEncryptAllowDecrypt, PlaintextLength: 1}
	cacheEncrypt(t, c, req)
	cacheEncrypt(t, c, req)
	if got := under.enc.Load(); got != 1 {
		t.Errorf("underlying calls = %d for suite 0x0178, want 1", got)
	}
}

// Callers cannot change what the cache holds through what it returns.
func TestCachingCopies(t *testing.T) {
	c := newTestCaching(t, &cacheFakeManager{}, materials.CachingOptions{})
	req := materials.EncryptionRequest{Context: map[string]string{"k": "v"}, PlaintextLength: 1}
	a := cacheEncrypt(t, c, req)
	want := bytes.Clone(a.DataKey)
	b := cacheEncrypt(t, c, req)
	clear(b.DataKey)
	b.Context["k"] = "changed"
	b.Context["new"] = "x"
	b.EncryptedDataKeys[0].Ciphertext[0] ^= 1
	b.EncryptedDataKeys = nil
	req.Context["k"] = "v" // the request's map is the caller's too
	m := cacheEncrypt(t, c, req)
	if !bytes.Equal(m.DataKey, want) || m.Context["k"] != "v" || len(m.Context) != 1 ||
		len(m.EncryptedDataKeys) != 1 || !bytes.Equal(m.EncryptedDataKeys[0].Ciphertext, want) {
		t.Errorf("cached materials changed through a returned copy: %+v", m)
	}

	// Each request gets its own context map: the underlying manager may
	// hand the request's map back, and that one is the caller's.
	dreq := func() materials.DecryptionRequest {
		return materials.DecryptionRequest{Suite: m.Suite, EncryptedDataKeys: m.EncryptedDataKeys, Context: map[string]string{"k": "v"}}
	}
	for range 2 {
		d, err := c.DecryptionMaterials(context.Background(), dreq())
		if err != nil {
			t.Fatalf("DecryptionMaterials err = %v, want nil", err)
		}
		clear(d.DataKey)
		d.Context["k"] = "changed"
	}
	d2, err := c.DecryptionMaterials(context.Background(), dreq())
	if err != nil {
		t.Fatalf("DecryptionMaterials err = %v, want nil", err)
	}
	if !bytes.Equal(d2.DataKey, want) || d2.Context["k"] != "v" {
		t.Error("cached decryption materials changed through a returned copy")
	}
}

// A cached entry never lets a request bypass its commitment policy.
func TestCachingPolicy(t *testing.T) {
	under := &cacheFakeManager{}
	cache := materials.NewCache(10)
	a := newTestCaching(t, under, materials.CachingOptions{Cache: cache, Partition: "p"})
	m := cacheEncrypt(t, a, materials.EncryptionRequest{PlaintextLength: 1})
	if !m.Suite.Committing {
		t.Fatalf("default suite %s is not committing", m.Suite)
	}
	f := cacheEncrypt(t, a, materials.EncryptionRequest{Policy: suite.ForbidEncryptAllowDecrypt, PlaintextLength: 1})
	if f.Suite.Committing {
		t.Errorf("forbid-encrypt request got the cached committing suite %s", f.Suite)
	}

	s := cacheSuite(t, suite.AES256GCMHKDFSHA256)
	dreq := materials.DecryptionRequest{Suite: s, Policy: suite.RequireEncryptAllowDecrypt, EncryptedDataKeys: m.EncryptedDataKeys}
	if _, err := a.DecryptionMaterials(context.Background(), dreq); err != nil {
		t.Fatalf("DecryptionMaterials(allow) err = %v, want nil", err)
	}
	dreq.Policy = suite.RequireEncryptRequireDecrypt
	var pe *materials.PolicyError
	if _, err := a.DecryptionMaterials(context.Background(), dreq); !errors.As(err, &pe) {
		t.Errorf("DecryptionMaterials(require) of a cached non-committing entry err = %v, want a *PolicyError", err)
	}
	if _, err := a.EncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: s, PlaintextLength: 1}); !errors.As(err, &pe) {
		t.Errorf("EncryptionMaterials(0x0178, require) err = %v, want a *PolicyError", err)
	}
	if _, err := a.EncryptionMaterials(context.Background(), materials.EncryptionRequest{Context: map[string]string{"aws-crypto-x": "y"}, PlaintextLength: 1}); !errors.Is(err, materials.ErrReservedContextKey) {
		t.Errorf("EncryptionMaterials(reserved key) err = %v, want ErrReservedContextKey", err)
	}
}

// Signed suites: the signing key is part of the cached materials.
func TestCachingSigningKey(t *testing.T) {
	kr := newTallyAES(t)
	c := newTestCaching(t, materials.NewDefault(kr), materials.CachingOptions{})
	a := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: 1})
	b := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: 1})
	if !a.Suite.Signed() || a.SigningKey == nil {
		t.Fatalf("default suite %s has no signing key", a.Suite)
	}
	if !a.SigningKey.Equal(b.SigningKey) || a.Context["aws-crypto-public-key"] != b.Context["aws-crypto-public-key"] {
		t.Error("a cache hit returned another signing key")
	}
	d, err := c.DecryptionMaterials(context.Background(), materials.DecryptionRequest{Suite: a.Suite, Context: a.Context, EncryptedDataKeys: a.EncryptedDataKeys})
	if err != nil {
		t.Fatalf("DecryptionMaterials err = %v, want nil", err)
	}
	if !d.VerificationKey.Equal(&a.SigningKey.PublicKey) {
		t.Error("verification key does not match the cached signing key")
	}
}

func TestCachingDecrypt(t *testing.T) {
	kr := newTallyAES(t)
	clock := newFakeClock()
	c := newTestCaching(t, materials.NewDefault(kr), materials.CachingOptions{MaxAge: time.Minute, Now: clock.Now})
	m := cacheEncrypt(t, materials.NewDefault(kr), materials.EncryptionRequest{Context: map[string]string{"k": "v"}, PlaintextLength: -1})
	req := materials.DecryptionRequest{Suite: m.Suite, Context: m.Context, EncryptedDataKeys: m.EncryptedDataKeys}
	for range 10 {
		d, err := c.DecryptionMaterials(context.Background(), req)
		if err != nil {
			t.Fatalf("DecryptionMaterials err = %v, want nil", err)
		}
		if !bytes.Equal(d.DataKey, m.DataKey) {
			t.Fatal("DecryptionMaterials returned another data key")
		}
	}
	if got := kr.dec.Load(); got != 1 {
		t.Errorf("keyring OnDecrypt calls = %d for 10 requests, want 1", got)
	}
	// Another context is another entry (and, here, a wrong one).
	other := req
	other.Context = maps.Clone(m.Context)
	other.Context["k"] = "w"
	if _, err := c.DecryptionMaterials(context.Background(), other); err == nil {
		t.Error("DecryptionMaterials with another context err = nil, want the keyring's refusal")
	}
	if got := kr.dec.Load(); got != 2 {
		t.Errorf("keyring OnDecrypt calls = %d, want 2", got)
	}
	// Failures are not cached.
	if _, err := c.DecryptionMaterials(context.Background(), other); err == nil {
		t.Error("second DecryptionMaterials with another context err = nil")
	}
	if got := kr.dec.Load(); got != 3 {
		t.Errorf("keyring OnDecrypt calls = %d, want 3: failures are not cached", got)
	}
	clock.Advance(time.Minute)
	if _, err := c.DecryptionMaterials(context.Background(), req); err != nil {
		t.Fatalf("DecryptionMaterials err = %v, want nil", err)
	}
	if got := kr.dec.Load(); got != 4 {
		t.Errorf("keyring OnDecrypt calls = %d after MaxAge, want 4", got)
	}
}

// Requests of unknown length: bypassed by EncryptionMaterials, reused
// within the byte limit through leases.
func TestCachingLeases(t *testing.T) {
	under := &cacheFakeManager{}
	cache := materials.NewCache(10)
	c := newTestCaching(t, under, materials.CachingOptions{MaxBytesEncrypted: 100, Cache: cache})

	// Plain EncryptionMaterials of unknown length: as in the ESDK.
	a := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: -1})
	b := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: -1})
	if bytes.Equal(a.DataKey, b.DataKey) || len(cache.Entries()) != 0 {
		t.Fatal("EncryptionMaterials of unknown length used the cache")
	}
	under.enc.Store(0)

	m1, l1 := cacheLease(t, c, -1)
	if l1.Limit() != math.MaxInt64 {
		t.Errorf("a fresh data key's lease Limit = %d, want no limit", l1.Limit())
	}
	if err := l1.Done(30); err != nil {
		t.Fatalf("Done(30) err = %v, want nil", err)
	}
	m2, l2 := cacheLease(t, c, -1)
	if !bytes.Equal(m2.DataKey, m1.DataKey) {
		t.Fatal("a second stream did not reuse the cached key")
	}
	if l2.Limit() != 70 {
		t.Errorf("Limit = %d after 30 of 100 bytes, want 70", l2.Limit())
	}
	// While the stream holds the rest of the budget, nothing else fits.
	k := cacheEncrypt(t, c, materials.EncryptionRequest{PlaintextLength: 10})
	if bytes.Equal(k.DataKey, m1.DataKey) {
		t.Error("a known-length message took bytes reserved by a stream")
	}
	if err := l2.Done(20); err != nil {
		t.Errorf("Done(20) err = %v, want nil", err)
	}
	// k's materials replaced the entry; a stream now gets its remainder.
	m3, l3 := cacheLease(t, c, -1)
	if !bytes.Equal(m3.DataKey, k.DataKey) || l3.Limit() != 90 {
		t.Errorf("stream after k: same key %v, Limit %d; want true, 90", bytes.Equal(m3.DataKey, k.DataKey), l3.Limit())
	}
	// A stream that does not stop at its limit is refused, and the key
	// retired.
	if err := l3.Done(91); !errors.Is(err, materials.ErrPlaintextLimit) {
		t.Errorf("Done(91) over a 90-byte limit err = %v, want ErrPlaintextLimit", err)
	}
	if len(cache.Entries()) != 0 {
		t.Error("an overrun data key stayed cached")
	}
	if got := under.enc.Load(); got != 2 {
		t.Errorf("underlying calls = %d, want 2", got)
	}

	// Only the first Done counts.
	m4, l4 := cacheLease(t, c, -1)
	l4.Done(10)
	l4.Done(10_000)
	if es := cache.Entries(); len(es) != 1 || es[0].Bytes != 10 || es[0].Reserved != 0 {
		t.Errorf("entries = %+v, want one with 10 bytes, none reserved", es)
	}
	// A lease of known length: the limit is the declared length.
	m5, l5 := cacheLease(t, c, 50)
	if !bytes.Equal(m5.DataKey, m4.DataKey) || l5.Limit() != 50 {
		t.Errorf("known-length lease: same key %v, Limit %d; want true, 50", bytes.Equal(m5.DataKey, m4.DataKey), l5.Limit())
	}
	if err := l5.Done(51); !errors.Is(err, materials.ErrPlaintextLimit) {
		t.Errorf("Done(51) of a 50-byte lease err = %v, want ErrPlaintextLimit", err)
	}
	// Unknown usage counts as the whole reservation: the key is spent.
	_, l6 := cacheLease(t, c, -1)
	l6.Done(-1)
	if len(cache.Entries()) != 0 {
		t.Error("a key whose stream reported no length stayed cached")
	}
	// A stream that never reports keeps its key from every other message,
	// streams included.
	m7, _ := cacheLease(t, c, -1)
	if m8, _ := cacheLease(t, c, -1); bytes.Equal(m8.DataKey, m7.DataKey) {
		t.Error("an unreported stream's key served another stream")
	}
	if m8, _ := cacheLease(t, c, 1); bytes.Equal(m8.DataKey, m7.DataKey) {
		t.Error("an unreported stream's key served another message")
	}
	// A stream on a fresh key may exceed the byte limit; its key retires.
	cache.Clear()
	_, l9 := cacheLease(t, c, -1)
	if l9.Limit() != math.MaxInt64 {
		t.Errorf("a fresh data key's lease Limit = %d, want no limit", l9.Limit())
	}
	if err := l9.Done(1000); err != nil {
		t.Errorf("Done(1000) on a fresh key err = %v, want nil", err)
	}
	for _, e := range cache.Entries() {
		if e.Bytes >= 100 {
			t.Errorf("entry with %d bytes stayed cached, limit 100", e.Bytes)
		}
	}
	var nilLease *materials.Lease
	if nilLease.Limit() != math.MaxInt64 || nilLease.Done(5) != nil {
		t.Error("a nil *Lease is not an unlimited no-op")
	}
}

// Under concurrent use no data key exceeds a limit (run with -race).
func TestCachingConcurrent(t *testing.T) {
	const (
		maxMsgs  = 7
		maxBytes = 500
	)
	under := &cacheFakeManager{}
	c := newTestCaching(t, under, materials.CachingOptions{
		MaxMessagesEncrypted: maxMsgs, MaxBytesEncrypted: maxBytes, Cache: materials.NewCache(3),
	})
	var mu sync.Mutex
	type usage struct{ msgs, bytes int64 }
	used := map[string]*usage{}
	record := func(dk []byte, n int64) {
		mu.Lock()
		defer mu.Unlock()
		u := used[string(dk)]
		if u == nil {
			u = &usage{}
			used[string(dk)] = u
		}
		u.msgs++
		u.bytes += n
	}
	const goroutines, ops = 16, 300
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(g), 1))
			ctx := context.Background()
			for range ops {
				ec := map[string]string{"k": fmt.Sprint(r.IntN(5))}
				n := r.Int64N(61)
				total.Add(1)
				switch r.IntN(4) {
				case 0:
					m, err := c.EncryptionMaterials(ctx, materials.EncryptionRequest{Context: ec, PlaintextLength: n})
					if err != nil {
						t.Errorf("EncryptionMaterials err = %v", err)
						return
					}
					record(m.DataKey, n)
				case 1, 2:
					req := materials.EncryptionRequest{Context: ec, PlaintextLength: -1}
					if r.IntN(2) == 0 {
						req.PlaintextLength = n
					}
					m, l, err := c.LeaseEncryptionMaterials(ctx, req)
					if err != nil {
						t.Errorf("LeaseEncryptionMaterials err = %v", err)
						return
					}
					n = min(n, l.Limit()) // what a facade does: stop at the limit
					record(m.DataKey, n)
					if err := l.Done(n); err != nil {
						t.Errorf("Done(%d) err = %v", n, err)
					}
				case 3:
					m, _, err := c.LeaseEncryptionMaterials(ctx, materials.EncryptionRequest{Context: ec, PlaintextLength: 1})
					if err != nil {
						t.Errorf("LeaseEncryptionMaterials err = %v", err)
						return
					}
					d, err := c.DecryptionMaterials(ctx, materials.DecryptionRequest{Suite: m.Suite, Context: m.Context, EncryptedDataKeys: m.EncryptedDataKeys})
					if err != nil || !bytes.Equal(d.DataKey, m.DataKey) {
						t.Errorf("DecryptionMaterials err = %v or wrong key", err)
					}
					// This message never reports: its byte counts as used.
					record(m.DataKey, 1)
				}
			}
		})
	}
	wg.Wait()
	for _, u := range used {
		if u.msgs > maxMsgs || u.bytes > maxBytes {
			t.Errorf("a data key encrypted %d messages and %d bytes, limits %d and %d", u.msgs, u.bytes, maxMsgs, maxBytes)
		}
	}
	if calls := under.enc.Load(); calls >= total.Load() {
		t.Errorf("underlying calls = %d for %d requests: nothing was cached", calls, total.Load())
	}
	t.Logf("%d requests, %d underlying encryption calls, %d data keys", total.Load(), under.enc.Load(), len(used))
}

// End to end through the envelope facade.
func TestCachingEndToEnd(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		id     suite.ID
		policy suite.CommitmentPolicy
		cached bool
	}{
		{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, suite.RequireEncryptRequireDecrypt, true},
		{suite.AES256GCMHKDFSHA512CommitKey, suite.RequireEncryptRequireDecrypt, true},
		{suite.AES256GCMHKDFSHA384ECDSAP384, suite.ForbidEncryptAllowDecrypt, true},
		{suite.AES256GCM, suite.ForbidEncryptAllowDecrypt, false},
	} {
		t.Run(tc.id.String(), func(t *testing.T) {
			kr := newTallyAES(t)
			cmm := newTestCaching(t, materials.NewDefault(kr), materials.CachingOptions{})
			opts := []envelope.Option{
				envelope.WithMaterialsManager(cmm), envelope.WithSuite(tc.id),
				envelope.WithCommitmentPolicy(tc.policy), envelope.WithContext(map[string]string{"app": "test"}),
			}
			const n = 10
			var msgs [][]byte
			keySets := map[string]bool{}
			for i := range n {
				ct, err := envelope.EncryptBytes(ctx, fmt.Appendf(nil, "message %d", i), nil, opts...)
				if err != nil {
					t.Fatalf("EncryptBytes err = %v, want nil", err)
				}
				h, err := envelope.ReadHeader(bytes.NewReader(ct))
				if err != nil {
					t.Fatalf("ReadHeader err = %v, want nil", err)
				}
				keySets[string(h.EncryptedDataKeys[0].Ciphertext)] = true
				msgs = append(msgs, ct)
			}
			// Each data key came from one keyring call.
			if got := kr.enc.Load(); got != int64(len(keySets)) {
				t.Errorf("keyring OnEncrypt calls = %d for %d data keys", got, len(keySets))
			}
			for round := range 2 {
				for i, ct := range msgs {
					pt, _, err := envelope.DecryptBytes(ctx, ct, nil, opts...)
					if err != nil {
						t.Fatalf("DecryptBytes(message %d, round %d) err = %v, want nil", i, round, err)
					}
					if want := fmt.Sprintf("message %d", i); string(pt) != want {
						t.Fatalf("DecryptBytes = %q, want %q", pt, want)
					}
				}
			}
			want := int64(len(keySets))
			if !tc.cached {
				want = 2 * n
			}
			if got := kr.dec.Load(); got != want {
				t.Errorf("keyring OnDecrypt calls = %d for 2×%d messages of %d data keys, want %d", got, n, len(keySets), want)
			}
			t.Logf("%d messages, %d data keys", n, len(keySets))
		})
	}
}

func ExampleNewCaching() {
	kr, err := keyring.NewRawAES("example", "key-1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	cmm, err := materials.NewCaching(materials.NewDefault(kr), materials.CachingOptions{
		MaxAge:               5 * time.Minute,
		MaxMessagesEncrypted: 1000,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, s := range []string{"first", "second"} {
		msg, err := envelope.EncryptBytes(ctx, []byte(s), nil, envelope.WithMaterialsManager(cmm))
		if err != nil {
			panic(err)
		}
		pt, _, err := envelope.DecryptBytes(ctx, msg, nil, envelope.WithMaterialsManager(cmm))
		if err != nil {
			panic(err)
		}
		fmt.Println(string(pt))
	}
	// Output:
	// first
	// second
}
