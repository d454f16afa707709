package kms

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// testClock is a clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func neverDue(*KeyRecord) bool { return false }

// TestCacheIdleMaterialCleared: material handed to the cache is cleared
// and dropped once its entry expires, even if nothing reads the cache
// again (it used to stay in memory until the next write reset the cache).
func TestCacheIdleMaterialCleared(t *testing.T) {
	const ttl = 20 * time.Millisecond
	c := newKeyCache(ttl, time.Now, neverDue)
	start := c.begin()
	defer c.end()
	m := bytes.Repeat([]byte{0xA5}, 32)
	c.putMaterial(start, "k", 1, m)
	c.putAlias(start, "alias/k", "k")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		cleared := !bytes.ContainsFunc(m, func(r rune) bool { return r != 0 })
		left := len(c.materials) + len(c.aliases)
		c.mu.Unlock()
		if cleared && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a %v TTL the cached material is %x and %d entries remain; want it cleared and dropped", ttl, m, left)
		}
		time.Sleep(ttl / 4) // polling: the cache does the work
	}
	c.mu.Lock()
	armed := c.sweeper != nil
	c.mu.Unlock()
	if armed {
		t.Errorf("the sweeper is still armed with nothing left to sweep")
	}
	// A new entry arms it again.
	m2 := bytes.Repeat([]byte{0x5A}, 32)
	c.putMaterial(start, "k", 2, m2)
	for bytes.ContainsFunc(m2, func(r rune) bool { return r != 0 }) {
		if time.Now().After(deadline) {
			t.Fatalf("material cached after a sweep was not cleared: %x", m2)
		}
		time.Sleep(ttl / 4)
	}
}

// TestCacheSweep: a sweep clears and drops what expired and keeps the rest.
func TestCacheSweep(t *testing.T) {
	clock := &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	const ttl = time.Hour // the real timer never fires during the test
	c := newKeyCache(ttl, clock.now, neverDue)
	start := c.begin()
	defer c.end()
	old := bytes.Repeat([]byte{1}, 32)
	c.putMaterial(start, "old", 1, old)
	c.putKey(start, &KeyRecord{ID: "old"})
	clock.advance(ttl / 2)
	young := bytes.Repeat([]byte{2}, 32)
	c.putMaterial(start, "young", 1, young)
	c.putAlias(start, "alias/young", "young")

	clock.advance(ttl/2 + time.Second) // "old" expired, "young" not
	c.sweep()
	if !bytes.Equal(old, make([]byte, 32)) {
		t.Errorf("expired material after a sweep = %x, want zeros", old)
	}
	if !bytes.Equal(young, bytes.Repeat([]byte{2}, 32)) {
		t.Errorf("unexpired material after a sweep = %x, want it untouched", young)
	}
	if _, ok := c.material("old", 1); ok {
		t.Errorf("expired material still served")
	}
	if m, ok := c.material("young", 1); !ok || !bytes.Equal(m, young) {
		t.Errorf("unexpired material = %x, %v; want it served", m, ok)
	}
	c.mu.Lock()
	nk, nm, na := len(c.keys), len(c.materials), len(c.aliases)
	c.mu.Unlock()
	if nk != 0 || nm != 1 || na != 1 {
		t.Errorf("after the sweep: %d keys, %d materials, %d aliases; want 0, 1, 1", nk, nm, na)
	}
	clock.advance(ttl)
	c.sweep()
	if !bytes.Equal(young, make([]byte, 32)) {
		t.Errorf("material expired at the second sweep = %x, want zeros", young)
	}
}

// TestCacheInvalidate: invalidating a key drops its record, material
// (cleared), private key and the aliases that point to it, and nothing
// else; invalidating an alias drops it alone; All drops everything.
func TestCacheInvalidate(t *testing.T) {
	c := newKeyCache(time.Hour, time.Now, neverDue)
	start := c.begin()
	m1, m2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	c.putKey(start, &KeyRecord{ID: "k1"})
	c.putKey(start, &KeyRecord{ID: "k2"})
	c.putMaterial(start, "k1", 1, m1)
	c.putMaterial(start, "k2", 1, m2)
	c.putAlias(start, "alias/a", "k1")
	c.putAlias(start, "alias/b", "k2")
	c.putAlias(start, "alias/c", "k2")
	c.end()

	c.invalidate(Change{KeyIDs: []string{"k1"}})
	if !bytes.Equal(m1, make([]byte, 32)) {
		t.Errorf("material of an invalidated key = %x, want zeros", m1)
	}
	_, k1 := c.key("k1")
	_, a := c.alias("alias/a")
	_, k2 := c.key("k2")
	_, b := c.alias("alias/b")
	if _, m := c.material("k2", 1); k1 || a || !k2 || !b || !m {
		t.Errorf("after invalidating k1: k1 %v, alias/a %v (want both gone); k2 %v, alias/b %v, k2's material %v (want all kept)", k1, a, k2, b, m)
	}
	c.invalidate(Change{Aliases: []string{"alias/b"}})
	_, b = c.alias("alias/b")
	_, cc := c.alias("alias/c")
	if _, k2 = c.key("k2"); b || !cc || !k2 {
		t.Errorf("after invalidating alias/b: alias/b %v (want gone), alias/c %v, k2 %v (want kept)", b, cc, k2)
	}
	c.invalidate(Change{All: true})
	c.mu.Lock()
	n := len(c.keys) + len(c.aliases) + len(c.materials) + len(c.privKeys)
	c.mu.Unlock()
	if n != 0 || !bytes.Equal(m2, make([]byte, 32)) {
		t.Errorf("after invalidating all: %d entries, material %x; want none, zeros", n, m2)
	}
}

// TestCacheFillsAfterChanges: what a fill read is kept unless something it
// depends on changed after the fill began: the key (for its record,
// material and private key), the alias or the key it points to (for an
// alias), anything (All, or more changes than are remembered).
func TestCacheFillsAfterChanges(t *testing.T) {
	c := newKeyCache(time.Hour, time.Now, neverDue)
	cachedKey := func(id string) bool { _, ok := c.key(id); return ok }
	cachedAlias := func(name string) bool { _, ok := c.alias(name); return ok }

	early := c.begin()
	c.invalidate(Change{KeyIDs: []string{"k1"}, Aliases: []string{"alias/a"}})
	late := c.begin()
	m := bytes.Repeat([]byte{7}, 32)
	c.putKey(early, &KeyRecord{ID: "k1"}) // changed since: dropped
	c.putMaterial(early, "k1", 1, m)      // dropped, and cleared
	c.putAlias(early, "alias/a", "k2")    // changed since: dropped
	c.putAlias(early, "alias/b", "k1")    // its key changed since: dropped
	c.putKey(early, &KeyRecord{ID: "k2"}) // unchanged: kept
	c.putAlias(early, "alias/c", "k2")    // unchanged: kept
	c.putKey(late, &KeyRecord{ID: "k3"})  // begun after: kept
	c.putAlias(late, "alias/a", "k3")     // begun after: kept
	if cachedKey("k1") || cachedAlias("alias/b") || !cachedKey("k2") || !cachedAlias("alias/c") || !cachedKey("k3") {
		t.Errorf("fills across a change of k1 and alias/a: k1 %v, alias/b %v (want dropped); k2 %v, alias/c %v, k3 %v (want kept)",
			cachedKey("k1"), cachedAlias("alias/b"), cachedKey("k2"), cachedAlias("alias/c"), cachedKey("k3"))
	}
	if id, ok := c.alias("alias/a"); !ok || id != "k3" {
		t.Errorf("alias/a = %q, %v; want the later fill's k3", id, ok)
	}
	if !bytes.Equal(m, make([]byte, 32)) {
		t.Errorf("material of a dropped fill = %x, want it cleared", m)
	}
	c.end()
	c.end()

	// With no fill under way nothing is remembered.
	c.mu.Lock()
	remembered := len(c.changed)
	c.mu.Unlock()
	if remembered != 0 {
		t.Errorf("%d changes remembered with no fill under way, want 0", remembered)
	}

	// All, or too many changes to remember, drop every fill under way.
	for _, change := range []Change{{All: true}, {KeyIDs: make([]string, maxChanged+1)}} {
		start := c.begin()
		c.invalidate(change)
		c.putKey(start, &KeyRecord{ID: "k9"})
		c.end()
		if cachedKey("k9") {
			t.Errorf("a fill begun before a change of %d keys (all: %v) was kept", len(change.KeyIDs), change.All)
		}
	}
}
