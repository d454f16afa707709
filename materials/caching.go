package materials

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// Limits of [Caching], as in the AWS Encryption SDK.
const (
	// CachingMaxMessages is the most messages one cached data key may
	// encrypt, 2³²: the default and the largest allowed value of
	// [CachingOptions].MaxMessagesEncrypted.
	CachingMaxMessages uint64 = 1 << 32
	// CachingMaxBytes is the most plaintext bytes one cached data key may
	// encrypt, 2⁶³−1: the default and the largest allowed value of
	// [CachingOptions].MaxBytesEncrypted.
	CachingMaxBytes int64 = math.MaxInt64
	// DefaultCacheCapacity is the number of entries of the private [Cache]
	// of a [Caching] manager given none.
	DefaultCacheCapacity = 1000
)

// pruneTail is how many least recently used entries every cache operation
// checks for expiry (the ESDK's "entry pruning tail size").
const pruneTail = 8

// ErrPlaintextLimit is wrapped by the error of [Lease.Done] when a message
// encrypted more plaintext than its lease allowed.
var ErrPlaintextLimit = errors.New("the message encrypted more plaintext than its data key may still protect")

// Leaser is an optional ability of a [Manager], found by type assertion:
// besides the materials of a message it returns a [Lease] that says how much
// plaintext the message may encrypt with them and takes back how much it did.
//
// A caller of LeaseEncryptionMaterials promises to encrypt at most
// Lease.Limit() bytes and to call Lease.Done once the message is finished or
// abandoned. In exchange, [Caching] can reuse cached data keys for messages
// whose length is not known in advance (req.PlaintextLength −1), which plain
// EncryptionMaterials must not do.
type Leaser interface {
	Manager
	LeaseEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, *Lease, error)
}

var (
	_ Manager = (*Caching)(nil)
	_ Leaser  = (*Caching)(nil)
)

// CachingOptions configures [NewCaching].
type CachingOptions struct {
	// MaxAge is how long after the underlying manager produced them that
	// materials may be handed out from the cache. Required: it must be
	// positive. A message whose materials were handed out in time may go on
	// being written after MaxAge.
	MaxAge time.Duration
	// MaxMessagesEncrypted is the most messages one cached data key may
	// encrypt: 1 to [CachingMaxMessages] (2³²), which is also the default
	// (0).
	MaxMessagesEncrypted uint64
	// MaxBytesEncrypted is the most plaintext bytes one cached data key may
	// encrypt, over all its messages: 1 to [CachingMaxBytes] (2⁶³−1), which
	// is also the default (0). A single message larger than the limit gets
	// a data key of its own, which is not cached.
	MaxBytesEncrypted int64
	// Partition names the slice of Cache this manager uses. Managers that
	// share a Cache share entries if and only if their partitions are
	// equal, so give two managers the same partition only if they use the
	// same keys. The default is a random name, so that the manager shares
	// with nobody.
	Partition string
	// Cache stores the materials. Nil means a new private [Cache] of
	// [DefaultCacheCapacity] entries.
	Cache *Cache
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Caching is a materials manager that caches the materials of another, so
// that many messages share one data key and the keyrings (KMS, typically)
// are called once for many messages. It implements the caching
// cryptographic materials manager of the AWS Encryption SDK: messages it
// helps write and read are ordinary messages, and its cache identifiers are
// those of the ESDK specification.
//
// Use it when the cost or rate limit of KMS calls matters more than having a
// fresh data key per message: every message encrypted with a cached data key
// can be decrypted by anyone who can unwrap that key once, and one exposed
// data key exposes all of them. The limits bound that exposure.
//
// # Limits
//
// Encryption materials are reused only while they are younger than MaxAge,
// have encrypted fewer than MaxMessagesEncrypted messages, and the next
// message fits in what is left of MaxBytesEncrypted; each use counts. Once a
// data key is spent or expired its entry is evicted and the cache's copy of
// the plaintext data key is cleared. Decryption materials are reused while
// younger than MaxAge. The cache evicts the least recently used entries
// beyond its capacity.
//
// Materials of the suites without key derivation (0x0014, 0x0046, 0x0078)
// are never cached, for encryption or decryption: with them the data key is
// the message key itself. Requests for them go straight to the underlying
// manager.
//
// # Messages of unknown length
//
// A byte limit can only be kept if the length of each message is known
// before its data key is chosen. EncryptionMaterials follows the ESDK there:
// a request of unknown length (PlaintextLength −1) gets fresh materials from
// the underlying manager, and they are not cached.
//
// Callers that stream can do better through [Caching.LeaseEncryptionMaterials]
// (the [Leaser] interface), by stopping at the lease's limit and reporting
// the bytes they encrypted. A stream of unknown length then reuses a cached
// data key, reserving everything the key may still encrypt; the reservation
// ends, and only the bytes actually encrypted count, when the stream reports
// with [Lease.Done]. While a stream holds the reservation, other requests
// for the same entry find no room and get fresh materials, which replace the
// entry. A stream that starts with fresh materials may be of any length, like
// a single message larger than MaxBytesEncrypted; if it turns out larger,
// its data key is retired when it reports. A stream that never reports keeps
// its reservation: its data key is never used for another message.
//
// # Signing keys
//
// For signed suites the cached encryption materials include the signing key,
// as in the ESDK: every message encrypted with one cached entry is signed
// with the same key pair and carries the same public key in its encryption
// context. Returned materials are copies, except for that key (and for the
// verification key of decryption materials), which is shared and must not be
// modified.
//
// # Concurrency
//
// A Caching is safe for concurrent use. The underlying manager is called
// without any lock held, so concurrent misses on the same entry each call it;
// the last materials stored replace the others, and every data key still
// respects the limits.
type Caching struct {
	under     Manager
	cache     *Cache
	partition [sha512.Size]byte // SHA-512 of the partition name
	maxAge    time.Duration
	maxMsgs   uint64
	maxBytes  int64
	now       func() time.Time
}

// NewCaching returns a caching materials manager over under, which is often
// [NewDefault] over a KMS keyring.
func NewCaching(under Manager, opts CachingOptions) (*Caching, error) {
	if under == nil {
		return nil, errors.New("materials: caching manager: no underlying manager")
	}
	if opts.MaxAge <= 0 {
		return nil, fmt.Errorf("materials: caching manager: MaxAge %v: want a positive duration", opts.MaxAge)
	}
	c := &Caching{
		under:    under,
		cache:    opts.Cache,
		maxAge:   opts.MaxAge,
		maxMsgs:  opts.MaxMessagesEncrypted,
		maxBytes: opts.MaxBytesEncrypted,
		now:      opts.Now,
	}
	switch {
	case c.maxMsgs == 0:
		c.maxMsgs = CachingMaxMessages
	case c.maxMsgs > CachingMaxMessages:
		return nil, fmt.Errorf("materials: caching manager: MaxMessagesEncrypted %d: want at most 2^32", c.maxMsgs)
	}
	switch {
	case c.maxBytes == 0:
		c.maxBytes = CachingMaxBytes
	case c.maxBytes < 0:
		return nil, fmt.Errorf("materials: caching manager: MaxBytesEncrypted %d: want a positive number", c.maxBytes)
	}
	if c.cache == nil {
		c.cache = NewCache(DefaultCacheCapacity)
	}
	if c.now == nil {
		c.now = time.Now
	}
	partition := opts.Partition
	if partition == "" {
		partition = rand.Text()
	}
	c.partition = sha512.Sum512([]byte(partition))
	return c, nil
}

// EncryptionMaterials implements [Manager]. It reuses cached materials only
// for a request of known length; see [Caching.LeaseEncryptionMaterials] for
// streams.
func (c *Caching) EncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, error) {
	if req.PlaintextLength < 0 {
		// Nobody will report how much this message encrypts: reusing a
		// data key could break the byte limit.
		return c.under.EncryptionMaterials(ctx, req)
	}
	m, l, err := c.LeaseEncryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	// The whole declared length counts at once, as in the ESDK; Done
	// cannot fail for a length equal to the limit.
	l.Done(req.PlaintextLength)
	return m, nil
}

// LeaseEncryptionMaterials implements [Leaser]: it returns materials for one
// message and a lease whose limit the caller must not exceed. For a request
// of known length the limit is that length; for a request of unknown length
// (−1) it is what the data key may still encrypt, or [math.MaxInt64] for a
// data key fresh from the underlying manager. The caller must call Done on
// the lease when the message is finished or abandoned.
func (c *Caching) LeaseEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, *Lease, error) {
	if err := checkEncryptionRequest(req); err != nil {
		return nil, nil, err
	}
	n := req.PlaintextLength
	if req.Suite != nil && !cacheable(req.Suite) || n > c.maxBytes {
		m, err := c.under.EncryptionMaterials(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		return m, uncachedLease(n), nil
	}
	id, err := c.encryptionID(req)
	if err != nil {
		return nil, nil, err
	}
	if m, l := c.reuse(id, req); m != nil {
		return m, l, nil
	}
	// The ESDK asks the underlying manager for materials good for the whole
	// byte limit, since they may serve that much.
	ureq := req
	ureq.PlaintextLength = c.maxBytes
	m, err := c.under.EncryptionMaterials(ctx, ureq)
	if err != nil {
		return nil, nil, err
	}
	if !cacheableEncryption(req, m) {
		return m, uncachedLease(n), nil
	}
	l := &Lease{c: c, limit: n, reserved: n}
	if n < 0 {
		l.limit, l.reserved = math.MaxInt64, c.maxBytes
	}
	l.e = &cacheEntry{id: id, cache: c.cache, enc: cloneEncryption(m), messages: 1, reserved: l.reserved}
	c.store(l.e)
	return m, l, nil
}

// reuse returns a copy of the cached materials under id and a lease on them,
// if they may serve req; nil otherwise.
func (c *Caching) reuse(id cacheID, req EncryptionRequest) (*keyring.EncryptionMaterials, *Lease) {
	now := c.now()
	k := c.cache
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.liveLocked(id, now)
	if e == nil || e.enc == nil {
		return nil, nil
	}
	reserve, ok := c.fits(e, req)
	if !ok {
		// The fresh materials of this request will replace the entry.
		return nil, nil
	}
	e.messages++
	e.reserved += reserve
	k.lru.MoveToFront(e.elem)
	m := cloneEncryption(e.enc)
	c.retireLocked(e)
	return m, &Lease{c: c, e: e, limit: reserve, reserved: reserve}
}

// fits reports whether the live encryption entry e may serve req, and how
// many bytes it must reserve for it.
func (c *Caching) fits(e *cacheEntry, req EncryptionRequest) (int64, bool) {
	s := e.enc.Suite
	if req.Suite != nil && req.Suite.ID != s.ID || !req.Policy.AllowsEncrypt(s) {
		// Another manager sharing the partition stored materials that
		// this request's policy refuses.
		return 0, false
	}
	if e.messages >= c.maxMsgs {
		return 0, false
	}
	left := c.maxBytes - min(satAdd(e.bytes, e.reserved), c.maxBytes)
	if n := req.PlaintextLength; n >= 0 {
		return n, n <= left
	}
	return left, left > 0
}

// retireLocked evicts an encryption entry that can serve no more messages.
func (c *Caching) retireLocked(e *cacheEntry) {
	if e.enc != nil && (e.messages >= c.maxMsgs || e.bytes >= c.maxBytes) {
		e.cache.evictLocked(e)
	}
}

// store adds a new entry, replacing any under the same identifier.
func (c *Caching) store(e *cacheEntry) {
	k := c.cache
	now := c.now()
	e.expires = now.Add(c.maxAge)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pruneLocked(now)
	if k.capacity == 0 || e.enc != nil && e.messages >= c.maxMsgs {
		k.evictLocked(e)
		return
	}
	if old := k.entries[e.id]; old != nil {
		k.evictLocked(old)
	}
	e.elem = k.lru.PushFront(e)
	k.entries[e.id] = e
	clock := c.now
	e.timer = time.AfterFunc(c.maxAge, func() { k.expire(e, clock) })
	for k.lru.Len() > k.capacity {
		k.evictLocked(k.lru.Back().Value.(*cacheEntry))
	}
}

// DecryptionMaterials implements [Manager]. The commitment policy is checked
// before the cache is consulted, so that no cached entry bypasses it.
func (c *Caching) DecryptionMaterials(ctx context.Context, req DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	if !req.Policy.Valid() {
		return nil, fmt.Errorf("materials: invalid commitment policy %d", req.Policy)
	}
	if req.Suite == nil {
		return nil, errors.New("materials: the decryption request names no algorithm suite")
	}
	if !req.Policy.AllowsDecrypt(req.Suite) {
		return nil, &PolicyError{Suite: req.Suite, Policy: req.Policy}
	}
	if err := CheckContext(req.ReproducedContext); err != nil {
		return nil, err
	}
	if !cacheable(req.Suite) {
		return c.under.DecryptionMaterials(ctx, req)
	}
	// A cached entry must not serve a caller whose context contradicts
	// the message: decryptionID checks the pairs the message stores, and
	// covers those it does not.
	id, err := c.decryptionID(req)
	if err != nil {
		return nil, err
	}
	if m := c.lookupDecryption(id, req.Suite); m != nil {
		return m, nil
	}
	m, err := c.under.DecryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	if m != nil && m.Suite != nil && m.Suite.ID == req.Suite.ID && len(m.DataKey) == req.Suite.KeyLength {
		c.store(&cacheEntry{id: id, cache: c.cache, dec: cloneDecryption(m)})
	}
	return m, nil
}

func (c *Caching) lookupDecryption(id cacheID, s *suite.Suite) *keyring.DecryptionMaterials {
	now := c.now()
	k := c.cache
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.liveLocked(id, now)
	if e == nil || e.dec == nil || e.dec.Suite.ID != s.ID {
		return nil
	}
	k.lru.MoveToFront(e.elem)
	return cloneDecryption(e.dec)
}

// Lease bounds the plaintext one message may encrypt with materials from a
// [Leaser], and takes back how much it did. A nil *Lease has no limit.
type Lease struct {
	c        *Caching
	e        *cacheEntry // nil when the materials are not cached
	limit    int64
	reserved int64 // bytes of e reserved for this message
	done     atomic.Bool
}

func uncachedLease(n int64) *Lease {
	if n < 0 {
		n = math.MaxInt64
	}
	return &Lease{limit: n}
}

// Limit returns the most plaintext bytes the message may encrypt:
// [math.MaxInt64] when there is no limit.
func (l *Lease) Limit() int64 {
	if l == nil {
		return math.MaxInt64
	}
	return l.limit
}

// Done reports that the message is finished, or abandoned, after encrypting
// n bytes of plaintext; n < 0 means unknown, and counts the whole
// reservation as used. Only the first call counts.
//
// If n exceeds the limit, Done retires the data key and returns an error
// wrapping [ErrPlaintextLimit]: the caller should then not complete the
// message. A caller that enforces the limit never sees it.
func (l *Lease) Done(n int64) error {
	if l == nil || l.done.Swap(true) {
		return nil
	}
	var err error
	if n > l.limit {
		err = fmt.Errorf("%w: %d bytes, the limit was %d", ErrPlaintextLimit, n, l.limit)
	}
	e := l.e
	if e == nil {
		return err
	}
	used := n
	if n < 0 {
		used = l.reserved
	}
	e.cache.mu.Lock()
	defer e.cache.mu.Unlock()
	e.reserved -= l.reserved
	e.bytes = satAdd(e.bytes, used)
	if err != nil {
		e.cache.evictLocked(e)
	} else {
		l.c.retireLocked(e)
	}
	return err
}

// Cache is an in-memory store of materials for [Caching] managers, holding
// at most a fixed number of entries and evicting the least recently used.
// Several managers may share one Cache; they share entries only when their
// partitions are equal. A Cache is safe for concurrent use.
type Cache struct {
	capacity int
	mu       sync.Mutex
	entries  map[cacheID]*cacheEntry
	lru      list.List // of *cacheEntry, most recently used first
}

// NewCache returns an empty cache that holds at most capacity entries; a
// cache of capacity 0 stores nothing. NewCache panics if capacity is
// negative.
func NewCache(capacity int) *Cache {
	if capacity < 0 {
		panic(fmt.Sprintf("materials: NewCache(%d): negative capacity", capacity))
	}
	return &Cache{capacity: capacity, entries: make(map[cacheID]*cacheEntry)}
}

// CacheEntry describes an entry of a [Cache], never its key material.
type CacheEntry struct {
	// ID is the entry's ESDK cache identifier.
	ID [sha512.Size]byte
	// Decryption is true for decryption materials, false for encryption
	// materials.
	Decryption bool
	// Suite is the suite of the entry's materials.
	Suite *suite.Suite
	// Expires is when the entry stops being handed out.
	Expires time.Time
	// Messages is how many messages the entry has served, and Bytes how
	// many plaintext bytes they encrypted (encryption entries only).
	Messages uint64
	Bytes    int64
	// Reserved is the bytes held by messages still being written.
	Reserved int64
}

// Entries describes the cache's entries, most recently used first.
func (k *Cache) Entries() []CacheEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]CacheEntry, 0, k.lru.Len())
	for el := k.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*cacheEntry)
		d := CacheEntry{ID: e.id, Expires: e.expires, Messages: e.messages, Bytes: e.bytes, Reserved: e.reserved}
		if e.enc != nil {
			d.Suite = e.enc.Suite
		} else {
			d.Decryption, d.Suite = true, e.dec.Suite
		}
		out = append(out, d)
	}
	return out
}

// Clear evicts every entry, clearing the cache's copies of their data keys.
// Messages being written with leased materials are not affected.
func (k *Cache) Clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for k.lru.Len() > 0 {
		k.evictLocked(k.lru.Front().Value.(*cacheEntry))
	}
}

type cacheID [sha512.Size]byte

type cacheEntry struct {
	id      cacheID
	cache   *Cache
	elem    *list.Element // nil once evicted
	expires time.Time
	timer   *time.Timer
	// Exactly one of enc and dec is set.
	enc *keyring.EncryptionMaterials
	dec *keyring.DecryptionMaterials
	// Usage of encryption entries: messages served, plaintext bytes they
	// encrypted, bytes reserved by messages still being written.
	messages uint64
	bytes    int64
	reserved int64
	gone     bool
}

// evictLocked removes e and clears its copy of the data key. The leases on
// e keep working on the detached entry.
func (k *Cache) evictLocked(e *cacheEntry) {
	if e.gone {
		return
	}
	e.gone = true
	if e.elem != nil {
		k.lru.Remove(e.elem)
		e.elem = nil
	}
	if k.entries[e.id] == e {
		delete(k.entries, e.id)
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.enc != nil {
		clear(e.enc.DataKey)
	}
	if e.dec != nil {
		clear(e.dec.DataKey)
	}
}

// liveLocked prunes the cache and returns the entry under id, unless it has
// expired.
func (k *Cache) liveLocked(id cacheID, now time.Time) *cacheEntry {
	k.pruneLocked(now)
	e := k.entries[id]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) {
		k.evictLocked(e)
		return nil
	}
	return e
}

// pruneLocked evicts the expired entries among the least recently used.
func (k *Cache) pruneLocked(now time.Time) {
	el := k.lru.Back()
	for i := 0; el != nil && i < pruneTail; i++ {
		prev := el.Prev()
		if e := el.Value.(*cacheEntry); !now.Before(e.expires) {
			k.evictLocked(e)
		}
		el = prev
	}
}

// expire runs when e's timer fires, so that the data keys of an idle cache
// do not linger in memory.
func (k *Cache) expire(e *cacheEntry, now func() time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e.gone {
		return
	}
	if left := e.expires.Sub(now()); left > 0 {
		e.timer.Reset(left)
		return
	}
	k.evictLocked(e)
}

// cacheable reports whether materials of s may be cached: not those of the
// suites without key derivation, whose data key encrypts the message itself.
func cacheable(s *suite.Suite) bool { return s.KDF != 0 }

// cacheableEncryption reports whether the underlying manager's answer to req
// may be stored under req's identifier.
func cacheableEncryption(req EncryptionRequest, m *keyring.EncryptionMaterials) bool {
	return m != nil && m.Suite != nil && cacheable(m.Suite) &&
		(req.Suite == nil || req.Suite.ID == m.Suite.ID) &&
		len(m.DataKey) == m.Suite.KeyLength && len(m.EncryptedDataKeys) > 0
}

func checkEncryptionRequest(req EncryptionRequest) error {
	if !req.Policy.Valid() {
		return fmt.Errorf("materials: invalid commitment policy %d", req.Policy)
	}
	if err := CheckContext(req.Context); err != nil {
		return err
	}
	if req.Suite != nil && !req.Policy.AllowsEncrypt(req.Suite) {
		return &PolicyError{Suite: req.Suite, Policy: req.Policy, Encrypt: true}
	}
	return nil
}

// encryptionID is the ESDK's identifier for encryption materials:
// SHA-512(SHA-512(partition) ‖ 0x00 ‖ SHA-512(context)) without a suite,
// SHA-512(SHA-512(partition) ‖ 0x01 ‖ suite ID ‖ SHA-512(context)) with one.
// Required context keys, when there are any, follow: 0x02 ‖ each key's
// length (two bytes) and bytes, sorted, so that materials are shared only
// by messages that store the same part of their context.
func (c *Caching) encryptionID(req EncryptionRequest) (cacheID, error) {
	ec, err := contextDigest(req.Context)
	if err != nil {
		return cacheID{}, err
	}
	h := sha512.New()
	h.Write(c.partition[:])
	if req.Suite == nil {
		h.Write([]byte{0})
	} else {
		h.Write([]byte{1})
		h.Write(binary.BigEndian.AppendUint16(nil, uint16(req.Suite.ID)))
	}
	h.Write(ec[:])
	if len(req.RequiredContextKeys) > 0 {
		keys, err := requiredKeys(req.Context, req.RequiredContextKeys)
		if err != nil {
			return cacheID{}, err
		}
		h.Write([]byte{2})
		for _, k := range keys {
			h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(k))))
			h.Write([]byte(k))
		}
	}
	var id cacheID
	h.Sum(id[:0])
	return id, nil
}

// decryptionID is the ESDK's identifier for decryption materials:
// SHA-512(SHA-512(partition) ‖ suite ID ‖ the sorted SHA-512 digests of the
// serialized encrypted data keys ‖ 64 zero bytes ‖ SHA-512(context)), where
// the context is the one the keyrings see: the stored context and the
// reproduced pairs the message does not store.
func (c *Caching) decryptionID(req DecryptionRequest) (cacheID, error) {
	full, _, err := ReproduceContext(req.Context, req.ReproducedContext)
	if err != nil {
		return cacheID{}, err
	}
	ec, err := contextDigest(full)
	if err != nil {
		return cacheID{}, err
	}
	digests := make([][sha512.Size]byte, len(req.EncryptedDataKeys))
	for i, k := range req.EncryptedDataKeys {
		if len(k.ProviderID) > math.MaxUint16 || len(k.ProviderInfo) > math.MaxUint16 || len(k.Ciphertext) > math.MaxUint16 {
			return cacheID{}, fmt.Errorf("materials: encrypted data key %d has a field longer than 65535 bytes", i+1)
		}
		var b []byte
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.ProviderID)))
		b = append(b, k.ProviderID...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.ProviderInfo)))
		b = append(b, k.ProviderInfo...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.Ciphertext)))
		b = append(b, k.Ciphertext...)
		digests[i] = sha512.Sum512(b)
	}
	slices.SortFunc(digests, func(a, b [sha512.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	h := sha512.New()
	h.Write(c.partition[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(req.Suite.ID)))
	for _, d := range digests {
		h.Write(d[:])
	}
	h.Write(make([]byte, sha512.Size))
	h.Write(ec[:])
	var id cacheID
	h.Sum(id[:0])
	return id, nil
}

func contextDigest(ec map[string]string) ([sha512.Size]byte, error) {
	b, err := format.MarshalContext(ec)
	if err != nil {
		return [sha512.Size]byte{}, err
	}
	return sha512.Sum512(b), nil
}

// cloneEncryption copies m so that neither its holder nor the cache can
// change the other's copy. The signing key is shared.
func cloneEncryption(m *keyring.EncryptionMaterials) *keyring.EncryptionMaterials {
	c := *m
	c.Context = maps.Clone(m.Context)
	c.DataKey = bytes.Clone(m.DataKey)
	c.RequiredContextKeys = slices.Clone(m.RequiredContextKeys)
	c.EncryptedDataKeys = make([]keyring.EncryptedDataKey, len(m.EncryptedDataKeys))
	for i, k := range m.EncryptedDataKeys {
		c.EncryptedDataKeys[i] = keyring.EncryptedDataKey{
			ProviderID:   k.ProviderID,
			ProviderInfo: bytes.Clone(k.ProviderInfo),
			Ciphertext:   bytes.Clone(k.Ciphertext),
		}
	}
	return &c
}

// cloneDecryption copies m; the verification key is shared.
func cloneDecryption(m *keyring.DecryptionMaterials) *keyring.DecryptionMaterials {
	c := *m
	c.Context = maps.Clone(m.Context)
	c.DataKey = bytes.Clone(m.DataKey)
	c.RequiredContextKeys = slices.Clone(m.RequiredContextKeys)
	return &c
}

// satAdd adds two non-negative counts, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
