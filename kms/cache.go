package kms

import (
	"crypto/rsa"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheTTL is how long the service trusts what it cached of a key
// (its record, alias and unsealed material) when it is not told of a change.
// Changes made through the service clear the cache at once; the TTL bounds
// how long a change made by another process (the CLI on the same keystore,
// another server on a shared store) can go unseen. It also bounds how long
// unsealed material stays in memory after its key was last read from the
// store: expired entries are dropped, their material cleared, about a TTL
// later at most, whether or not the service is used meanwhile.
const DefaultCacheTTL = 2 * time.Second

// maxCachedKeys bounds the cache; past it, the cache starts over.
const maxCachedKeys = 10000

// errCacheMiss makes a read-only operation run again against the store.
var errCacheMiss = errors.New("kms: not cached")

type cached[T any] struct {
	v  T
	at time.Time
}

type materialID struct {
	key     string
	version int
}

// keyCache holds what hot keys need, so that cryptographic operations on
// them read nothing from the store: key records, aliases, and unsealed key
// material. Every write through the service clears it; entries expire after
// the TTL.
//
// Expired entries are dropped by a sweep, run by a timer armed when the
// first entry goes in and re-armed for the next entry to expire while any
// remain: material is cleared (zeroed) when its entry is dropped, so none
// outlives its entry by more than the sweep's delay (a TTL at most after it
// expired) even when the service sits idle. Reads never sweep: a hit costs
// what it did. Parsed RSA private keys are dropped, not cleared: Go keeps
// copies of their values (precomputed forms) that cannot be reached to
// clear, and operations may be using the key.
type keyCache struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	gen       uint64
	keys      map[string]cached[*KeyRecord]
	aliases   map[string]cached[string]
	materials map[materialID]cached[[]byte]
	rsaKeys   map[string]cached[*rsa.PrivateKey]
	sweeper   *time.Timer // armed while the cache holds entries

	hits, misses atomic.Uint64
}

func newKeyCache(ttl time.Duration, now func() time.Time) *keyCache {
	c := &keyCache{ttl: ttl, now: now}
	c.reset()
	return c
}

func (c *keyCache) reset() {
	for _, m := range c.materials {
		clear(m.v)
	}
	c.keys = map[string]cached[*KeyRecord]{}
	c.aliases = map[string]cached[string]{}
	c.materials = map[materialID]cached[[]byte]{}
	c.rsaKeys = map[string]cached[*rsa.PrivateKey]{}
}

// invalidate forgets everything; fills begun before it are not kept.
func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.reset()
	c.mu.Unlock()
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func fresh[T any](c *keyCache, e cached[T], ok bool) (T, bool) {
	var zero T
	if !ok || c.now().Sub(e.at) > c.ttl {
		return zero, false
	}
	return e.v, true
}

func (c *keyCache) key(id string) (*KeyRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[id]
	return fresh(c, e, ok)
}

func (c *keyCache) alias(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.aliases[name]
	return fresh(c, e, ok)
}

func (c *keyCache) material(id string, version int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.materials[materialID{id, version}]
	m, ok := fresh(c, e, ok)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), m...), true // callers clear their copy
}

func (c *keyCache) rsaKey(id string) (*rsa.PrivateKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.rsaKeys[id]
	return fresh(c, e, ok)
}

// put stores a value read under generation gen, unless a write happened
// since (the value may then be stale).
func put[K comparable, T any](c *keyCache, gen uint64, table func(*keyCache) map[K]cached[T], k K, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.keys)+len(c.materials) > maxCachedKeys {
		c.reset()
	}
	table(c)[k] = cached[T]{v, c.now()}
	if c.sweeper == nil {
		c.sweeper = time.AfterFunc(c.ttl+sweepSlack, c.sweep)
	}
}

// sweepSlack delays sweeps a little past an entry's expiry, so that a
// sweep finds the entry it was armed for expired.
const sweepSlack = 10 * time.Millisecond

// sweep drops the expired entries, clearing their material, and arms the
// sweeper again for the next entry to expire, if any.
func (c *keyCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var next time.Time // the earliest expiry of what remains
	sweepTable(c, c.keys, now, &next, nil)
	sweepTable(c, c.aliases, now, &next, nil)
	sweepTable(c, c.materials, now, &next, func(m []byte) { clear(m) })
	sweepTable(c, c.rsaKeys, now, &next, nil)
	if next.IsZero() {
		c.sweeper = nil // put arms a new one
		return
	}
	if c.sweeper != nil { // nil when a test calls sweep itself
		c.sweeper.Reset(next.Sub(now) + sweepSlack)
	}
}

// sweepTable deletes the expired entries of m (calling drop on each value
// deleted) and moves next back to the expiry of the earliest that remains.
func sweepTable[K comparable, T any](c *keyCache, m map[K]cached[T], now time.Time, next *time.Time, drop func(T)) {
	for k, e := range m {
		if now.Sub(e.at) > c.ttl {
			if drop != nil {
				drop(e.v)
			}
			delete(m, k)
			continue
		}
		if exp := e.at.Add(c.ttl); next.IsZero() || exp.Before(*next) {
			*next = exp
		}
	}
}

// The cache's tables, chosen under its lock.
func keysTable(c *keyCache) map[string]cached[*KeyRecord]         { return c.keys }
func aliasesTable(c *keyCache) map[string]cached[string]          { return c.aliases }
func materialsTable(c *keyCache) map[materialID]cached[[]byte]    { return c.materials }
func rsaKeysTable(c *keyCache) map[string]cached[*rsa.PrivateKey] { return c.rsaKeys }

// cacheTx serves reads from the cache alone; anything else is a miss.
type cacheTx struct {
	Tx // nil: every method not overridden panics, so all are overridden
	s  *Service
}

func (t cacheTx) GetKey(id string) (*KeyRecord, error) {
	k, ok := t.s.cache.key(id)
	if !ok || t.s.expired(k) || t.s.rotationDue(k) {
		return nil, errCacheMiss
	}
	return k, nil
}

func (t cacheTx) GetAlias(name string) (*AliasRecord, error) {
	id, ok := t.s.cache.alias(name)
	if !ok {
		return nil, errCacheMiss
	}
	return &AliasRecord{Name: name, KeyID: id}, nil
}

func (cacheTx) PutKey(*KeyRecord) error                                 { return errCacheMiss }
func (cacheTx) DeleteKey(string) error                                  { return errCacheMiss }
func (cacheTx) ListKeys(string, int) ([]*KeyRecord, error)              { return nil, errCacheMiss }
func (cacheTx) GetMaterial(string, int) ([]byte, error)                 { return nil, errCacheMiss }
func (cacheTx) PutMaterial(string, int, []byte) error                   { return errCacheMiss }
func (cacheTx) PutAlias(*AliasRecord) error                             { return errCacheMiss }
func (cacheTx) DeleteAlias(string) error                                { return errCacheMiss }
func (cacheTx) ListAliases(string, string, int) ([]*AliasRecord, error) { return nil, errCacheMiss }
func (cacheTx) GetMeta(string) ([]byte, error)                          { return nil, errCacheMiss }
func (cacheTx) PutMeta(string, []byte) error                            { return errCacheMiss }

// fillTx reads from the store and remembers what it read.
type fillTx struct {
	Tx
	s   *Service
	gen uint64
}

func (t fillTx) GetKey(id string) (*KeyRecord, error) {
	k, err := t.Tx.GetKey(id)
	if err == nil {
		put(t.s.cache, t.gen, keysTable, id, k)
	}
	return k, err
}

func (t fillTx) GetAlias(name string) (*AliasRecord, error) {
	a, err := t.Tx.GetAlias(name)
	if err == nil {
		put(t.s.cache, t.gen, aliasesTable, name, a.KeyID)
	}
	return a, err
}

// CacheStats returns how many read-only operations were served from the
// key cache, and how many had to read the store.
func (s *Service) CacheStats() (hits, misses uint64) {
	if s.cache == nil {
		return 0, 0
	}
	return s.cache.hits.Load(), s.cache.misses.Load()
}
