package httpserver

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what the connections of [Server.Serve] may hold, so that
// clients that have not authenticated cannot exhaust the server's file
// descriptors or memory. Zero (or negative) fields take the defaults of
// [DefaultLimits].
type Limits struct {
	// MaxConnections caps the open connections.
	MaxConnections int
	// MaxConnectionsPerSource caps the connections from one client
	// address (for IPv6, from one /64 network); default a quarter of
	// MaxConnections.
	MaxConnectionsPerSource int
	// RequestMemory caps the bytes that all connections together hold
	// for requests beyond each connection's own 8 KiB buffer: bodies that
	// do not fit it, and header sections that do not. It is raised to
	// MaxBodyBytes if lower.
	RequestMemory int64
}

// Defaults of [Limits].
const (
	// DefaultRequestMemory is the default of [Limits.RequestMemory].
	DefaultRequestMemory = 64 << 20
	// fdReserve is how many file descriptors the default connection cap
	// leaves for the rest of the server (the store and its journal, the
	// audit log, logs, listeners, metrics), besides a sixteenth of the
	// limit.
	fdReserve = 64
	// minConnections and maxDefaultConnections bound the default cap.
	minConnections        = 16
	maxDefaultConnections = 4096
	// unknownLimitConnections is the default cap where the system does
	// not say its limit on open files.
	unknownLimitConnections = 1024
)

// DefaultLimits returns the default limits for this process:
// MaxConnections from its limit on open files (RLIMIT_NOFILE) less a
// reserve for the rest of the server (64 descriptors and a sixteenth of
// the limit), between 16 and 4096 (1024 where the limit is unknown);
// MaxConnectionsPerSource a quarter of that; RequestMemory 64 MiB.
func DefaultLimits() Limits {
	n, ok := openFileLimit()
	if !ok {
		return Limits{MaxConnections: unknownLimitConnections, MaxConnectionsPerSource: unknownLimitConnections / 4, RequestMemory: DefaultRequestMemory}
	}
	return limitsForFiles(n)
}

// limitsForFiles returns the default limits under a limit of n open files.
func limitsForFiles(n uint64) Limits {
	conns := minConnections
	if reserve := fdReserve + n/16; n > reserve {
		conns = int(min(max(n-reserve, minConnections), maxDefaultConnections))
	}
	return Limits{MaxConnections: conns, MaxConnectionsPerSource: max(conns/4, 1), RequestMemory: DefaultRequestMemory}
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultLimits().MaxConnections
	}
	if l.MaxConnectionsPerSource <= 0 {
		l.MaxConnectionsPerSource = max(l.MaxConnections/4, 1)
	}
	if l.RequestMemory <= 0 {
		l.RequestMemory = DefaultRequestMemory
	}
	l.RequestMemory = max(l.RequestMemory, MaxBodyBytes)
	return l
}

// hostOf is the host part of a remote address.
func hostOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// sourceKeyOf returns what the per-source cap counts a client address
// under: the IPv4 address, or the /64 network of an IPv6 one (the least a
// single host is given); the zero Addr for addresses that are not IP.
func sourceKeyOf(addr net.Addr) netip.Addr {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// # Connection caps
//
// The policy at a cap. Refusing new connections at a cap would let whoever
// holds the cap — silent or slow clients, which cost an attacker nothing —
// lock everyone else out until timeouts free a slot, and then race for it.
// Instead a new connection is accepted and, at a cap, sheds an open
// connection that is not being served (running a request's handler or
// writing its answer), the least productive one:
//
//  1. among those that have not yet completed an authenticated request ("fresh":
//     silent, slow, or sending only unauthenticated or refused requests), the
//     oldest of those whose next request has not arrived, else the oldest
//     of those whose request has arrived but is not yet read (on Linux the
//     kernel says so, FIONREAD) — legitimate clients send their first
//     request as soon as they connect, so the oldest fresh connection is the
//     likeliest to be stalling, and a new client is the last to go;
//  2. if there is no fresh connection at all, among those that have
//     completed an authenticated request ("trusted"), the one idle longest, unless
//     its next request has arrived.
//
// When there is none (every connection is being served, or fresh ones are,
// which will soon be sheddable or trusted), the new connection is closed at
// once. An attacker without credentials thus only ever cycles through fresh
// connections: authenticated clients' kept-alive connections stay, and a new
// authenticated client is safe once its request has arrived (before that, only an
// attacker opening a whole cap's worth of connections in the meantime sheds
// it). The per-source cap applies the same choice among one source's
// connections first, so that one address (or IPv6 /64) can neither take the
// whole of the global cap nor make other sources' connections be shed.

// Connection states (conn.state).
const (
	stateNew     int32 = iota // accepted, not yet read
	stateIdle                 // waiting for a request's first byte (or in the TLS handshake)
	stateReading              // reading a request
	stateBusy                 // handling a request or writing its answer
	stateLinger               // answered; reading what the client still sends before closing
	stateClosed               // closed by Shutdown or shed
)

// sheddable reports whether a connection in state s may be shed: it is not
// being served.
func sheddable(s int32) bool { return s != stateBusy && s != stateClosed }

// Which of a connection's two links a list uses.
const (
	linkAll    = 0 // the server's lists
	linkSource = 1 // its source's lists
)

// connLink is a connection's place in a list.
type connLink struct{ prev, next *conn }

// connList is an intrusive list of connections, in the order they were
// added.
type connList struct {
	head, tail *conn
	k          int // which link of the connections it uses
}

func (l *connList) push(c *conn) {
	c.links[l.k] = connLink{prev: l.tail}
	if l.tail != nil {
		l.tail.links[l.k].next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) remove(c *conn) {
	lk := &c.links[l.k]
	if lk.prev != nil {
		lk.prev.links[l.k].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		lk.next.links[l.k].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	*lk = connLink{}
}

// connGroup is a set of connections under one cap: all of them, or one
// source's.
type connGroup struct {
	n       int
	fresh   connList // not yet trusted, oldest first
	trusted connList // have completed an authenticated request
}

func newConnGroup(k int) connGroup {
	return connGroup{fresh: connList{k: k}, trusted: connList{k: k}}
}

// waiting reports whether a connection in state s has a request waiting to
// be read: bytes have arrived while it waits for a request's first byte
// (or has yet to start), which its goroutine is about to read. The bytes
// of a request being read (a body waiting for memory) do not count.
func (c *conn) waiting(s int32) bool {
	return (s == stateNew || s == stateIdle) && pendingInput(c.nc)
}

// maxVictimScan bounds how many fresh connections victim looks at for one
// without a request waiting.
const maxVictimScan = 64

// victim returns the connection of g to shed, already marked closed, or
// nil if there is none to shed: in this order, the oldest fresh connection
// without a request waiting, the oldest fresh one with one, and, only if g
// has no fresh connection at all (they are all being served otherwise, and
// soon sheddable or trusted), the trusted one idle longest without a
// request waiting. A connection being served is never shed.
func (g *connGroup) victim() *conn {
	var waiting *conn
	var waitingState int32
	scanned := 0
	for c := g.fresh.head; c != nil && scanned < maxVictimScan; c = c.links[g.fresh.k].next {
		s := c.state.Load()
		if !sheddable(s) {
			continue
		}
		scanned++
		if c.waiting(s) {
			if waiting == nil {
				waiting, waitingState = c, s
			}
			continue
		}
		if c.state.CompareAndSwap(s, stateClosed) {
			return c
		}
	}
	if waiting != nil && waiting.state.CompareAndSwap(waitingState, stateClosed) {
		return waiting
	}
	if g.fresh.head != nil {
		return nil
	}
	for range 4 { // a candidate may start a request meanwhile: look again
		var best *conn
		var bestState int32
		var bestDone int64
		for c := g.trusted.head; c != nil; c = c.links[g.trusted.k].next {
			if s := c.state.Load(); sheddable(s) && !c.waiting(s) {
				if done := c.lastDone.Load(); best == nil || done < bestDone {
					best, bestState, bestDone = c, s, done
				}
			}
		}
		if best == nil {
			return nil
		}
		if best.state.CompareAndSwap(bestState, stateClosed) {
			return best
		}
	}
	return nil
}

// connSet is the lean server's open connections, by source, for the caps
// (guarded by Server.mu).
type connSet struct {
	all         connGroup
	sources     map[netip.Addr]*connGroup
	shed        atomic.Int64 // fresh connections shed at a cap
	shedTrusted atomic.Int64 // trusted connections shed at a cap
	refused     atomic.Int64 // new connections closed at a cap, nothing to shed
}

// admit registers c, shedding a connection if a cap is reached, and
// reports whether c was admitted.
func (cs *connSet) admit(c *conn, lim *Limits) bool {
	if cs.sources == nil {
		cs.all = newConnGroup(linkAll)
		cs.sources = map[netip.Addr]*connGroup{}
	}
	src := cs.sources[c.key]
	if src == nil {
		g := newConnGroup(linkSource)
		src = &g
		cs.sources[c.key] = src
	}
	ok := true
	if src.n >= lim.MaxConnectionsPerSource {
		ok = cs.shedFrom(src)
	}
	if ok && cs.all.n >= lim.MaxConnections {
		ok = cs.shedFrom(&cs.all)
	}
	if !ok {
		if src.n == 0 {
			delete(cs.sources, c.key)
		}
		cs.refused.Add(1)
		return false
	}
	cs.sources[c.key] = src // again: shedding its last connection may have dropped it
	c.src, c.trusted, c.linked = src, false, true
	cs.all.fresh.push(c)
	src.fresh.push(c)
	cs.all.n++
	src.n++
	return true
}

// shedFrom closes the least productive connection of g, and reports
// whether there was one.
func (cs *connSet) shedFrom(g *connGroup) bool {
	v := g.victim()
	if v == nil {
		return false
	}
	if v.trusted {
		cs.shedTrusted.Add(1)
	} else {
		cs.shed.Add(1)
	}
	cs.drop(v)
	v.cancel()
	v.nc.Close() // its goroutine sees the connection closed and ends
	return true
}

// drop forgets c.
func (cs *connSet) drop(c *conn) {
	if !c.linked {
		return
	}
	src := c.src
	if c.trusted {
		cs.all.trusted.remove(c)
		src.trusted.remove(c)
	} else {
		cs.all.fresh.remove(c)
		src.fresh.remove(c)
	}
	cs.all.n--
	if src.n--; src.n == 0 {
		delete(cs.sources, c.key)
	}
	c.src, c.linked = nil, false
}

// trust moves c to the trusted connections: it has completed an
// authenticated request.
func (cs *connSet) trust(c *conn) {
	if !c.linked || c.trusted {
		return
	}
	cs.all.fresh.remove(c)
	c.src.fresh.remove(c)
	cs.all.trusted.push(c)
	c.src.trusted.push(c)
	c.trusted = true
}

// each calls f for every connection.
func (cs *connSet) each(f func(*conn)) {
	for _, l := range []*connList{&cs.all.fresh, &cs.all.trusted} {
		for c := l.head; c != nil; {
			next := c.links[linkAll].next
			f(c)
			c = next
		}
	}
}

// # Request memory

// Request buffers come in classes of powers of two, from 16 KiB to
// MaxBodyBytes.
const (
	minBufferClass = 14 // 16 KiB
	maxBufferClass = 20 // 1 MiB = MaxBodyBytes
	// memoryWait is how long a request waits for request memory before it
	// is answered ThrottlingException.
	memoryWait = time.Second
	// keepFreeBuffers is how long returned buffers are kept for reuse.
	keepFreeBuffers = 30 * time.Second
)

// requestMemory is the budget of the buffers that requests use beyond
// their connection's own: bodies and header sections too large for it. It
// is taken before a single byte goes into such a buffer, and returned as
// soon as the request is handled, so that however many connections stall
// mid-request, they hold at most the budget. Returned buffers are kept for
// reuse (counted in the budget) for a while, so that a stream of large
// requests makes no garbage.
type requestMemory struct {
	limit   int64
	mu      sync.Mutex
	held    int64 // bytes of the buffers that exist, in use or free
	inUse   atomic.Int64
	waiting atomic.Int64
	free    [maxBufferClass - minBufferClass + 1][][]byte
	wake    chan struct{} // closed when memory is returned, while someone waits
	used    time.Time     // when a buffer was last taken
	trimmer *time.Timer
}

// bufferClass returns the class of the buffer for n bytes (n ≤
// MaxBodyBytes).
func bufferClass(n int) int {
	c := 0
	for 1<<(minBufferClass+c) < n {
		c++
	}
	return c
}

// get returns a buffer of n bytes (n ≤ MaxBodyBytes) from the budget,
// waiting for memory to be returned until deadline or until done is
// closed; false if it got none. The buffer goes back with put.
func (m *requestMemory) get(n int, deadline time.Time, done <-chan struct{}) ([]byte, bool) {
	class := bufferClass(n)
	size := 1 << (minBufferClass + class)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	m.mu.Lock()
	for {
		m.used = time.Now()
		if free := m.free[class]; len(free) > 0 {
			b := free[len(free)-1]
			free[len(free)-1] = nil
			m.free[class] = free[:len(free)-1]
			m.inUse.Add(int64(size))
			m.mu.Unlock()
			return b[:n], true
		}
		for m.held+int64(size) > m.limit && m.dropFree() {
		}
		if m.held+int64(size) <= m.limit {
			m.held += int64(size)
			m.inUse.Add(int64(size))
			m.mu.Unlock()
			return make([]byte, n, size), true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			m.mu.Unlock()
			return nil, false
		}
		if m.wake == nil {
			m.wake = make(chan struct{})
		}
		wake := m.wake
		m.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		m.waiting.Add(1)
		select {
		case <-wake:
		case <-timer.C:
		case <-done:
			m.waiting.Add(-1)
			return nil, false
		}
		m.waiting.Add(-1)
		m.mu.Lock()
	}
}

// put returns a buffer that get gave.
func (m *requestMemory) put(b []byte) {
	size := cap(b)
	class := bufferClass(size)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inUse.Add(-int64(size))
	m.free[class] = append(m.free[class], b[:size])
	if m.wake != nil {
		close(m.wake)
		m.wake = nil
	}
	if m.trimmer == nil {
		m.trimmer = time.AfterFunc(keepFreeBuffers, m.trim)
	}
}

// dropFree drops a free buffer, the largest, and reports whether there was
// one. m.mu is held.
func (m *requestMemory) dropFree() bool {
	for class := len(m.free) - 1; class >= 0; class-- {
		if free := m.free[class]; len(free) > 0 {
			m.held -= int64(cap(free[len(free)-1]))
			free[len(free)-1] = nil
			m.free[class] = free[:len(free)-1]
			return true
		}
	}
	return false
}

// trim drops the free buffers once none has been taken for a while.
func (m *requestMemory) trim() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if idle := time.Since(m.used); idle < keepFreeBuffers {
		m.trimmer.Reset(keepFreeBuffers - idle)
		return
	}
	for m.dropFree() {
	}
	m.trimmer = nil
}
