package kms

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheTTL is how long the service trusts what it cached of a key
// (its record, aliases, unsealed material and parsed private key) when it
// is not told of a change. Changes made through the service, and those
// announced to [Service.Invalidate], take effect at once; the TTL bounds
// how long a change nobody announces (the CLI on the same keystore, another
// server on a shared store without notifications) can go unseen. It also
// bounds how long unsealed material stays in memory after its key was last
// read from the store: expired entries are dropped, their material
// cleared, about a TTL later at most, whether or not the service is used
// meanwhile.
const DefaultCacheTTL = 2 * time.Second

// A Change names what a write to a [Store] changed, for
// [Service.Invalidate].
type Change struct {
	// KeyIDs are the ids (not ARNs) of the keys whose record or material
	// changed, or that were destroyed.
	KeyIDs []string
	// Aliases are the names ("alias/...") of the aliases created,
	// repointed or deleted.
	Aliases []string
	// All stands for every key and alias: for a store that cannot tell
	// what changed, or that may have missed changes (a notification
	// channel lost and opened again).
	All bool
}

// Invalidate tells the service that what c names changed in its store: it
// drops what it cached of those keys and aliases (of all of them, with
// c.All). The service calls it after each of its own writes; a [Store]
// shared with other processes should call it from its change
// notifications (another server writing to the same database), so that a
// change made elsewhere takes effect here at once rather than within the
// cache's TTL. Call it once the change is committed, visible to
// transactions that begin afterwards.
//
// Once Invalidate returns, no operation that starts afterwards uses
// anything cached before the call about a key or alias c names: records,
// aliases, unsealed material, parsed private keys; naming a key also drops
// the aliases cached as pointing to it. What reads of the store under way
// during the call bring back is not cached (they may have read the store
// before the change), though the operations that made them finish with
// it.
//
// What is cached: each key record, alias, version of unsealed material and
// parsed private key that an operation reads from the store, for
// [Options.CacheTTL] ([DefaultCacheTTL] by default) from that read. A
// change that nobody announces is therefore seen within that time.
//
// Invalidate does not touch the store and is safe for concurrent use; with
// the cache off it does nothing.
func (s *Service) Invalidate(c Change) {
	if s.cache != nil {
		s.cache.invalidate(c)
	}
}

// CacheStats returns how many read-only operations were served from the
// key cache alone, and how many had to read the store.
func (s *Service) CacheStats() (hits, misses uint64) {
	if s.cache == nil {
		return 0, 0
	}
	return s.cache.hits.Load(), s.cache.misses.Load()
}

// maxCachedEntries bounds the cache; past it, the cache starts over.
const maxCachedEntries = 10000

// maxChanged bounds the changes remembered for the fills under way; past
// it, every fill under way is dropped.
const maxChanged = 1024

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

type grantsID struct {
	key, grantee string
}

// keyCache holds what hot keys need, so that cryptographic operations on
// them read nothing from the store: key records, aliases, unsealed key
// material and parsed private keys (RSA, ECDSA, ECDH, secp256k1, Ed25519,
// ML-DSA). Entries expire after the TTL;
// invalidate drops them earlier.
//
// A fill (a read of the store whose results go into the cache) takes the
// count of invalidations (seq) from begin before its store transaction
// starts; put keeps what it read only if nothing it depends on changed
// since (changed, floor), so that a fill that read the store before a
// change cannot put back what the change's invalidation dropped.
//
// Expired entries are dropped by a sweep, run by a timer armed when the
// first entry goes in and re-armed for the next entry to expire while any
// remain: material is cleared (zeroed) when its entry is dropped, so none
// outlives its entry by more than the sweep's delay (a TTL at most after it
// expired) even when the service sits idle. Reads never sweep: a hit costs
// what it did. Parsed private keys are dropped, not cleared: their
// libraries keep copies of their values (precomputed forms) that cannot be
// reached to clear, and operations may be using the key.
type keyCache struct {
	ttl time.Duration
	now func() time.Time
	// due reports keys whose maintenance is due: they are never served,
	// so that the operation reads them from the store, which does it.
	due func(*KeyRecord) bool

	mu        sync.Mutex
	keys      map[string]cached[*KeyRecord]
	aliases   map[string]cached[string] // name → key id
	materials map[materialID]cached[[]byte]
	privKeys  map[string]cached[privateKey]
	// grants holds the grants of a key for one grantee (an empty list
	// when it has none), keyAliases the names of a key's aliases.
	grants     map[grantsID]cached[[]*GrantRecord]
	keyAliases map[string]cached[[]string]
	sweeper    *time.Timer // armed while the cache holds entries
	// aliasSeq is the seq of the last invalidation that named an alias:
	// a fill that began before it does not keep the aliases of a key.
	aliasSeq uint64

	seq   uint64 // invalidations so far
	fills int    // fills under way (begun, not ended)
	// floor: fills that began before it are not kept (everything changed).
	floor uint64
	// changed holds, while fills are under way, the seq of the last
	// change of each key id and alias name changed since the oldest began.
	changed map[string]uint64

	hits, misses atomic.Uint64
}

func newKeyCache(ttl time.Duration, now func() time.Time, due func(*KeyRecord) bool) *keyCache {
	return &keyCache{ttl: ttl, now: now, due: due,
		keys:       map[string]cached[*KeyRecord]{},
		aliases:    map[string]cached[string]{},
		materials:  map[materialID]cached[[]byte]{},
		privKeys:   map[string]cached[privateKey]{},
		grants:     map[grantsID]cached[[]*GrantRecord]{},
		keyAliases: map[string]cached[[]string]{},
		changed:    map[string]uint64{},
	}
}

// reset drops every entry, clearing material.
func (c *keyCache) reset() {
	for _, m := range c.materials {
		clear(m.v)
	}
	clear(c.keys)
	clear(c.aliases)
	clear(c.materials)
	clear(c.privKeys)
	clear(c.grants)
	clear(c.keyAliases)
}

// begin starts a fill: it returns the start to give put, and the caller
// calls end when the fill's transaction is over.
func (c *keyCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fills++
	return c.seq
}

func (c *keyCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fills--
	if c.fills == 0 {
		clear(c.changed) // fills that begin from now on read every change
	}
}

// invalidate drops what ch names, and keeps fills under way from putting
// back what they read of it.
func (c *keyCache) invalidate(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if ch.All || c.fills > 0 && len(c.changed)+len(ch.KeyIDs)+len(ch.Aliases) > maxChanged {
		c.floor = c.seq
		clear(c.changed)
	}
	if ch.All {
		c.reset()
		return
	}
	if c.fills > 0 && c.floor != c.seq {
		for _, id := range ch.KeyIDs {
			c.changed[id] = c.seq
		}
		for _, name := range ch.Aliases {
			c.changed[name] = c.seq
		}
	}
	for _, name := range ch.Aliases {
		delete(c.aliases, name)
	}
	if len(ch.Aliases) > 0 {
		// Which keys an alias left is not known: drop every key's list.
		c.aliasSeq = c.seq
		clear(c.keyAliases)
	}
	if len(ch.KeyIDs) == 0 {
		return
	}
	ids := make(map[string]bool, len(ch.KeyIDs))
	for _, id := range ch.KeyIDs {
		ids[id] = true
		delete(c.keys, id)
		delete(c.privKeys, id)
		delete(c.keyAliases, id)
	}
	maps.DeleteFunc(c.grants, func(g grantsID, _ cached[[]*GrantRecord]) bool { return ids[g.key] })
	maps.DeleteFunc(c.materials, func(m materialID, e cached[[]byte]) bool {
		if ids[m.key] {
			clear(e.v)
			return true
		}
		return false
	})
	maps.DeleteFunc(c.aliases, func(_ string, e cached[string]) bool { return ids[e.v] })
}

// kept reports whether a fill begun at start may keep what it read of the
// given key ids and alias names ("" for none).
func (c *keyCache) kept(start uint64, name, other string) bool {
	return start >= c.floor && c.changed[name] <= start && (other == "" || c.changed[other] <= start)
}

func (c *keyCache) fresh(at time.Time) bool { return c.now().Sub(at) <= c.ttl }

func (c *keyCache) key(id string) (*KeyRecord, bool) {
	c.mu.Lock()
	e, ok := c.keys[id]
	c.mu.Unlock()
	if !ok || !c.fresh(e.at) || c.due(e.v) {
		return nil, false
	}
	return e.v, true
}

func (c *keyCache) alias(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.aliases[name]
	if !ok || !c.fresh(e.at) {
		return "", false
	}
	return e.v, true
}

// material returns a copy of cached material, which the caller clears.
func (c *keyCache) material(id string, version int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.materials[materialID{id, version}]
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return append([]byte(nil), e.v...), true
}

func (c *keyCache) privateKey(id string) (privateKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.privKeys[id]
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e.v, true
}

func (c *keyCache) grantsOf(keyID, grantee string) ([]*GrantRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.grants[grantsID{keyID, grantee}]
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e.v, true
}

func (c *keyCache) aliasesOf(keyID string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keyAliases[keyID]
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e.v, true
}

func (c *keyCache) putGrants(start uint64, keyID, grantee string, gs []*GrantRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept(start, keyID, "") {
		put(c, c.grants, grantsID{keyID, grantee}, gs)
	}
}

func (c *keyCache) putKeyAliases(start uint64, keyID string, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept(start, keyID, "") && c.aliasSeq <= start {
		put(c, c.keyAliases, keyID, names)
	}
}

func (c *keyCache) putKey(start uint64, k *KeyRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept(start, k.ID, "") && !c.due(k) {
		put(c, c.keys, k.ID, k)
	}
}

func (c *keyCache) putAlias(start uint64, name, keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept(start, name, keyID) {
		put(c, c.aliases, name, keyID)
	}
}

// putMaterial caches m, which the cache then owns (and clears), or clears
// it at once if it is not kept.
func (c *keyCache) putMaterial(start uint64, keyID string, version int, m []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.kept(start, keyID, "") {
		clear(m)
		return
	}
	id := materialID{keyID, version}
	if old, ok := c.materials[id]; ok {
		clear(old.v)
	}
	put(c, c.materials, id, m)
}

func (c *keyCache) putPrivateKey(start uint64, keyID string, key privateKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept(start, keyID, "") {
		put(c, c.privKeys, keyID, key)
	}
}

// put stores v in table (one of c's maps) under k, with c.mu held.
func put[K comparable, T any](c *keyCache, table map[K]cached[T], k K, v T) {
	if len(c.keys)+len(c.aliases)+len(c.materials)+len(c.privKeys)+len(c.grants)+len(c.keyAliases) >= maxCachedEntries {
		c.reset()
	}
	table[k] = cached[T]{v, c.now()}
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
	sweepTable(c, c.privKeys, now, &next, nil)
	sweepTable(c, c.grants, now, &next, nil)
	sweepTable(c, c.keyAliases, now, &next, nil)
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

// cacheReader reads keys through the cache. With no next, the hot path,
// what the cache holds is served from memory and a miss fails with
// errCacheMiss. With next, a store transaction, key records and aliases are
// read from next and cached (unless a change was announced since start):
// they change, and must come from the transaction's snapshot, which may be
// older than what the cache holds — a newer record would name a version of
// material the snapshot lacks. Material and parsed private keys, written
// once per key and version, are served from the cache when it holds them,
// else read from next and cached.
type cacheReader struct {
	c     *keyCache
	next  keyReader // nil: the cache alone
	start uint64    // from c.begin, before next's transaction began
}

var _ keyReader = (*cacheReader)(nil)

func (r *cacheReader) key(id string) (*KeyRecord, error) {
	if r.next == nil {
		if k, ok := r.c.key(id); ok {
			return k, nil
		}
		return nil, errCacheMiss
	}
	k, err := r.next.key(id)
	if err == nil {
		r.c.putKey(r.start, k)
	}
	return k, err
}

func (r *cacheReader) alias(name string) (string, error) {
	if r.next == nil {
		if id, ok := r.c.alias(name); ok {
			return id, nil
		}
		return "", errCacheMiss
	}
	id, err := r.next.alias(name)
	if err == nil {
		r.c.putAlias(r.start, name, id)
	}
	return id, err
}

func (r *cacheReader) material(k *KeyRecord, version int) ([]byte, error) {
	if m, ok := r.c.material(k.ID, version); ok {
		return m, nil
	}
	if r.next == nil {
		return nil, errCacheMiss
	}
	m, err := r.next.material(k, version)
	if err == nil {
		r.c.putMaterial(r.start, k.ID, version, append([]byte(nil), m...))
	}
	return m, err
}

func (r *cacheReader) privateKey(k *KeyRecord) (privateKey, error) {
	if key, ok := r.c.privateKey(k.ID); ok {
		return key, nil
	}
	if r.next == nil {
		return nil, errCacheMiss
	}
	key, err := r.next.privateKey(k)
	if err == nil {
		r.c.putPrivateKey(r.start, k.ID, key)
	}
	return key, err
}

// destroyed is not cached: it is asked only about keys that are gone.
func (r *cacheReader) destroyed(id string) (bool, error) {
	if r.next == nil {
		return false, errCacheMiss
	}
	return r.next.destroyed(id)
}

func (r *cacheReader) grants(keyID, grantee string) ([]*GrantRecord, error) {
	if gs, ok := r.c.grantsOf(keyID, grantee); ok {
		return gs, nil
	}
	if r.next == nil {
		return nil, errCacheMiss
	}
	gs, err := r.next.grants(keyID, grantee)
	if err == nil {
		if gs == nil {
			gs = []*GrantRecord{}
		}
		r.c.putGrants(r.start, keyID, grantee, gs)
	}
	return gs, err
}

func (r *cacheReader) keyAliases(keyID string) ([]string, error) {
	if names, ok := r.c.aliasesOf(keyID); ok {
		return names, nil
	}
	if r.next == nil {
		return nil, errCacheMiss
	}
	names, err := r.next.keyAliases(keyID)
	if err == nil {
		r.c.putKeyAliases(r.start, keyID, names)
	}
	return names, err
}
