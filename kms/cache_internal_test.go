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

// TestCacheIdleMaterialCleared: material handed to the cache is cleared
// and dropped once its entry expires, even if nothing reads the cache
// again (it used to stay in memory until the next write reset the cache).
func TestCacheIdleMaterialCleared(t *testing.T) {
	const ttl = 20 * time.Millisecond
	c := newKeyCache(ttl, time.Now)
	m := bytes.Repeat([]byte{0xA5}, 32)
	put(c, c.generation(), materialsTable, materialID{"k", 1}, m)
	put(c, c.generation(), aliasesTable, "alias/k", "k")
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
	put(c, c.generation(), materialsTable, materialID{"k", 2}, m2)
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
	c := newKeyCache(ttl, clock.now)
	old := bytes.Repeat([]byte{1}, 32)
	put(c, c.generation(), materialsTable, materialID{"old", 1}, old)
	put(c, c.generation(), keysTable, "old", &KeyRecord{ID: "old"})
	clock.advance(ttl / 2)
	young := bytes.Repeat([]byte{2}, 32)
	put(c, c.generation(), materialsTable, materialID{"young", 1}, young)
	put(c, c.generation(), aliasesTable, "alias/young", "young")

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
