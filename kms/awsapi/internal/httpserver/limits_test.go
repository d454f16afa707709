package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// The limits of the lean server (limits.go): connection caps and which
// connection is shed at a cap, the header timeout from accept, the memory
// budget of large requests, and the handler's check before a large body.

// rawConn is a client connection in a test, with its reader.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dialFrom opens a raw connection to the server from the loopback address
// src (127.0.0.0/8 is all loopback on Linux), so that tests can play
// several client addresses.
func (e *testEnv) dialFrom(src string) rawConn {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return rawConn{c, bufio.NewReader(c)}
}

// wantOpen checks that the server has not closed c: nothing arrives within
// d (a silent connection gets nothing until it is closed).
func wantOpen(t *testing.T, what string, c rawConn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := c.br.ReadByte()
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("%s was closed (read: %v), want it open", what, err)
	}
}

// roundTrip sends an authenticated request on c and checks the answer.
func (e *testEnv) roundTrip(what string, c rawConn) {
	e.t.Helper()
	body := payload(8)
	if _, err := c.Write(rawPost(body)); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		e.t.Fatalf("%s: reading the answer: %v", what, err)
	}
	got, _ := io.ReadAll(resp.Body)
	wantEcho(e.t, resp, got, body)
}

// largeRequest returns an authenticated (if auth is "ok") POST / with a
// body of n bytes, as its header section and its body.
func largeRequest(n int, auth string) (head, body []byte) {
	b := payload(n)
	raw := fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s", auth, n, b)
	return raw[:len(raw)-n], raw[len(raw)-n:]
}

// waitStats polls the server's Stats until ok says they are as wanted.
func (e *testEnv) waitStats(what string, ok func(Stats) bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.srv.Stats()
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after 5 s, %s: Stats %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeanSilentConnection: a connection that sends nothing is closed
// after the header timeout, counted from its accept, not after the idle
// timeout; a kept-alive connection between requests waits for the idle
// timeout.
func TestLeanSilentConnection(t *testing.T) {
	e := leanEnv(t, Timeouts{ReadHeader: 300 * time.Millisecond, Idle: time.Minute})
	start := time.Now()
	c, br := e.dial()
	wantClosed(t, c, br)
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("a silent connection was closed after %v, want the 300 ms header timeout", d)
	}

	// Bytes of a request, then nothing: the header timeout still counts
	// from the accept.
	start = time.Now()
	c, br = e.dial()
	c.Write([]byte("POST / HTTP/1.1\r\n"))
	wantClosed(t, c, br)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a connection with a partial request line was closed after %v, want the 300 ms header timeout", d)
	}

	rc := e.dialFrom("127.0.0.1")
	e.roundTrip("a first request", rc)
	wantOpen(t, "a kept-alive connection after 2 header timeouts", rc, 600*time.Millisecond)
	e.roundTrip("a request after 600 ms idle", rc)
}

// TestLeanSilentTLSConnection: over TLS too, a connection that sends
// nothing (no handshake) is closed after the header timeout.
func TestLeanSilentTLSConnection(t *testing.T) {
	e, _ := tlsEnv(t, Config{Timeouts: Timeouts{ReadHeader: 300 * time.Millisecond, Idle: time.Minute}})
	start := time.Now()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantClosed(t, c, bufio.NewReader(c))
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("a silent TLS connection was closed after %v, want the 300 ms header timeout", d)
	}
}

// TestLeanShedsSilentConnections: at the connection cap, each new
// connection sheds the oldest that has not completed an authenticated
// request; a connection that has is kept, and a new authenticated client
// gets in at once.
func TestLeanShedsSilentConnections(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MaxConnections: 8, MaxConnectionsPerSource: 8}})
	signed := e.dialFrom("127.0.0.1")
	e.roundTrip("the authenticated client's first request", signed)
	var silent []rawConn
	for range 20 {
		silent = append(silent, e.dialFrom("127.0.0.1"))
	}
	// One authenticated and 20 silent connections over a cap of 8: the 13
	// oldest silent ones are shed, the other 7 are open.
	for i := range 13 {
		wantClosed(t, silent[i].Conn, silent[i].br)
	}
	for i := 13; i < 20; i++ {
		wantOpen(t, fmt.Sprintf("silent connection %d (of the 7 newest)", i), silent[i], 100*time.Millisecond)
	}
	e.roundTrip("the authenticated client, after the flood", signed)
	// A new client gets in: it sheds the oldest silent connection.
	fresh := e.dialFrom("127.0.0.1")
	e.roundTrip("a new client at the cap", fresh)
	wantClosed(t, silent[13].Conn, silent[13].br)
	wantOpen(t, "silent connection 14", silent[14], 100*time.Millisecond)
	e.roundTrip("the authenticated client, at the end", signed)
	// 13, and 1 shed for the new client.
	if st := e.srv.Stats(); st.ShedFresh != 14 || st.ShedTrusted != 0 {
		t.Errorf("fresh connections shed: %v, trusted: %v; want 14 and 0", st.ShedFresh, st.ShedTrusted)
	}
}

// TestLeanShedsIdleLongest: with no fresh connection to shed, a new one
// sheds the trusted connection idle longest; a fresh one is shed before
// any trusted one.
func TestLeanShedsIdleLongest(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MaxConnections: 3, MaxConnectionsPerSource: 3}})
	a, b, c := e.dialFrom("127.0.0.1"), e.dialFrom("127.0.0.1"), e.dialFrom("127.0.0.1")
	e.roundTrip("a", a)
	e.roundTrip("b", b)
	e.roundTrip("c", c)
	e.roundTrip("b again", b)
	e.roundTrip("a again", a) // c is now idle longest
	d := e.dialFrom("127.0.0.1")
	wantClosed(t, c.Conn, c.br)
	e.roundTrip("d, at the cap", d)
	wantOpen(t, "a", a, 50*time.Millisecond)
	wantOpen(t, "b", b, 50*time.Millisecond)
	// A silent connection sheds b (a and d have been busy since); the next
	// sheds the silent one.
	silent := e.dialFrom("127.0.0.1")
	wantClosed(t, b.Conn, b.br)
	wantOpen(t, "the silent connection", silent, 50*time.Millisecond)
	other := e.dialFrom("127.0.0.1")
	wantClosed(t, silent.Conn, silent.br)
	e.roundTrip("a, at the end", a)
	e.roundTrip("d, at the end", d)
	e.roundTrip("the last one", other)
	if st := e.srv.Stats(); st.ShedTrusted != 2 || st.ShedFresh != 1 {
		t.Errorf("trusted connections shed: %v, fresh: %v; want 2 and 1", st.ShedTrusted, st.ShedFresh)
	}
}

// TestLeanShedsPerSource: one client address cannot take more than its
// share: at its cap, its own oldest connections are shed, and the other
// addresses' are kept; at the global cap, the oldest of all is shed.
func TestLeanShedsPerSource(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MaxConnections: 12, MaxConnectionsPerSource: 4}})
	dialN := func(src string, n int) []rawConn {
		var cs []rawConn
		for range n {
			cs = append(cs, e.dialFrom(src))
		}
		return cs
	}
	a := dialN("127.0.0.2", 4)
	b := dialN("127.0.0.3", 10)
	for i := range 6 {
		wantClosed(t, b[i].Conn, b[i].br)
	}
	c := dialN("127.0.0.4", 4) // 12 in all: at the global cap, nothing shed
	d := dialN("127.0.0.5", 1) // over it: the oldest of all goes
	wantClosed(t, a[0].Conn, a[0].br)
	for name, cs := range map[string][]rawConn{"a": a[1:], "b": b[6:], "c": c, "d": d} {
		for i, conn := range cs {
			wantOpen(t, fmt.Sprintf("connection %s%d", name, i), conn, 50*time.Millisecond)
		}
	}
	e.waitStats("12 connections open", func(st Stats) bool { return st.Connections == 12 })
}

// TestLeanShedsPerSourceOfOne: with a cap of one connection per source,
// each new connection sheds the one before (the source's count survives
// its last connection being shed).
func TestLeanShedsPerSourceOfOne(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MaxConnections: 8, MaxConnectionsPerSource: 1}})
	prev := e.dialFrom("127.0.0.2")
	for range 4 {
		next := e.dialFrom("127.0.0.2")
		wantClosed(t, prev.Conn, prev.br)
		prev = next
	}
	e.roundTrip("the last connection", prev)
	other := e.dialFrom("127.0.0.3")
	e.roundTrip("another source's", other)
	e.roundTrip("the last connection, again", prev)
}

// TestSourceKey: IPv6 clients are grouped by /64 (one host's share), IPv4
// ones by address, IPv4-mapped IPv6 as IPv4.
func TestSourceKey(t *testing.T) {
	key := func(s string) netip.Addr {
		return sourceKeyOf(&net.TCPAddr{IP: net.ParseIP(s), Port: 1234})
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"::1", "::1", true},
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("sourceKey(%s) == sourceKey(%s) is %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	if k := sourceKeyOf(&net.UnixAddr{Name: "/x", Net: "unix"}); k.IsValid() {
		t.Errorf("sourceKey of a Unix address = %v, want the zero key", k)
	}
}

// TestDefaultLimits: the default connection cap leaves file descriptors
// for the rest of the server.
func TestDefaultLimits(t *testing.T) {
	for _, tc := range []struct {
		files           uint64
		conns, perSouce int
	}{
		{256, 176, 44},
		{1024, 896, 224},
		{1 << 20, 4096, 1024},
		{100, 30, 7},
		{40, 16, 4},
	} {
		l := limitsForFiles(tc.files)
		if l.MaxConnections != tc.conns || l.MaxConnectionsPerSource != tc.perSouce || l.RequestMemory != DefaultRequestMemory {
			t.Errorf("limitsForFiles(%d) = %+v, want %d connections, %d per source", tc.files, l, tc.conns, tc.perSouce)
		}
	}
}

// TestLeanServedConnectionsAreNotShed: a connection whose request is being
// served is never cut off; when every connection is, a new one is closed
// at once.
func TestLeanServedConnectionsAreNotShed(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MaxConnections: 2, MaxConnectionsPerSource: 2}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(e.h.release) }) }
	t.Cleanup(unblock) // before the server shuts down, should the test fail first
	var busy []rawConn
	for range 2 {
		c := e.dialFrom("127.0.0.1")
		c.Write(rawPost(payload(5), "X-Block: 1\r\n"))
		<-e.h.started
		busy = append(busy, c)
	}
	extra := e.dialFrom("127.0.0.1")
	wantClosed(t, extra.Conn, extra.br)
	unblock()
	for _, c := range busy {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("a request in flight at the cap: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		wantEcho(t, resp, body, payload(5))
	}
	if n := e.srv.Stats().Refused; n != 1 {
		t.Errorf("Stats().Refused = %v, want 1", n)
	}
}

// TestLeanPrecheck: a request announcing a body that has not arrived, of
// more than PrecheckBytes (or awaited with 100-continue), is put to the
// handler's Precheck first: refused, it is answered at once, without its
// body, and the connection closed; passed, its body is read.
func TestLeanPrecheck(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	const size = 256 << 10
	for _, tc := range []struct {
		name  string
		head  []byte
		extra string
	}{
		{"large body", nil, ""},
		{"100-continue", nil, "Expect: 100-continue\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := size
			if tc.extra != "" {
				n = 10
			}
			head, _ := largeRequest(n, "forged")
			head = []byte(strings.Replace(string(head), "Host: x\r\n", "Host: x\r\n"+tc.extra, 1))
			c, br := e.dial()
			before := e.h.prechecks()
			if _, err := c.Write(head); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, body := readResponse(t, br)
			if resp.StatusCode != http.StatusForbidden || string(body) != "body error: "+errBadCredential.Error() || !resp.Close {
				t.Errorf("refused by Precheck: %d %q (close %v), want 403 and the handler's answer, closing", resp.StatusCode, body, resp.Close)
			}
			wantClosed(t, c, br)
			if n := e.h.prechecks() - before; n != 1 {
				t.Errorf("%d Precheck calls, want 1", n)
			}
		})
	}
	// Passed: the body is read, and reaches the handler.
	head, body := largeRequest(size, "ok")
	c, br := e.dial()
	before := e.h.prechecks()
	c.Write(head)
	c.Write(body)
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, string(body))
	if n := e.h.prechecks() - before; n != 1 {
		t.Errorf("%d Precheck calls, want 1", n)
	}

	// A body that came with its headers is not prechecked.
	h := &testHandler{}
	fc := &fakeConn{in: bytes.NewReader(rawPost(payload(PrecheckBytes+1), "Connection: close\r\n"))}
	New(Config{}).newConn(fc, h, nil).serve()
	resp, b = readResponse(t, bufio.NewReader(&fc.out))
	wantEcho(t, resp, b, payload(PrecheckBytes+1))
	if h.checked != 0 {
		t.Errorf("%d Precheck calls for a body that came with its headers, want 0", h.checked)
	}
}

// TestLeanRequestMemory: large bodies share the request memory budget;
// past it, a request waits briefly, then is answered (the handler told
// ErrNoMemory) without its body being read, while small requests go on; a
// request waiting gets its memory as soon as some is returned.
func TestLeanRequestMemory(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{RequestMemory: 2 << 20}})
	const size = 600 << 10 // takes a 1 MiB buffer
	hold := func() rawConn {
		head, body := largeRequest(size, "ok")
		c := e.dialFrom("127.0.0.1")
		c.Write(head)
		c.Write(body[:100<<10])
		return c
	}
	held := []rawConn{hold(), hold()}
	e.waitStats("2 MiB of request memory in use", func(st Stats) bool { return st.RequestMemory == 2<<20 })

	head, _ := largeRequest(size, "ok")
	c := e.dialFrom("127.0.0.1")
	c.Write(head)
	start := time.Now()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("a large request past the budget: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "body error: "+ErrNoMemory.Error() {
		t.Errorf("a large request past the budget: %d %q, want the handler's answer to ErrNoMemory", resp.StatusCode, b)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered after %v, want after a wait of about a second", d)
	}
	if !resp.Close {
		t.Errorf("the answer to ErrNoMemory does not say Connection: close")
	}
	wantClosed(t, c.Conn, c.br)
	e.roundTrip("a small request with the budget spent", e.dialFrom("127.0.0.1"))

	// A request waiting for memory proceeds when a held one goes.
	head, body := largeRequest(size, "ok")
	c = e.dialFrom("127.0.0.1")
	c.Write(head)
	c.Write(body)
	e.waitStats("a request waiting for memory", func(st Stats) bool { return st.RequestMemoryWaiting == 1 })
	held[0].Close()
	resp, err = http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the waiting request: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	wantEcho(t, resp, b, string(body)) // the handler got the body
	held[1].Close()
	c.Close()
	e.waitStats("no request memory in use", func(st Stats) bool { return st.RequestMemory == 0 })
}

// TestLeanHeaderMemory: a header section that outgrows a connection's
// buffer takes its room from the request memory budget while it is read.
func TestLeanHeaderMemory(t *testing.T) {
	e := newTestEnv(t, Config{})
	c := e.dialFrom("127.0.0.1")
	c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 20<<10)))
	e.waitStats("the header section's room taken", func(st Stats) bool { return st.RequestMemory == maxHeaderBytes })
	c.Write([]byte("\r\n\r\n"))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz with 20 KiB of headers: %v, %v", resp, err)
	}
	resp.Body.Close()
	e.waitStats("no request memory in use", func(st Stats) bool { return st.RequestMemory == 0 })
}

// TestLeanStats: Stats counts the open connections.
func TestLeanStats(t *testing.T) {
	e := newTestEnv(t, Config{})
	a, b := e.dialFrom("127.0.0.1"), e.dialFrom("127.0.0.2")
	e.roundTrip("a", a)
	e.roundTrip("b", b)
	if st := e.srv.Stats(); st != (Stats{Connections: 2}) {
		t.Errorf("Stats() = %+v, want 2 connections and nothing else", st)
	}
	a.Close()
	e.waitStats("one connection left", func(st Stats) bool { return st.Connections == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.srv.Stats(); st.Connections != 0 {
		t.Errorf("after Shutdown, Stats() = %+v", st)
	}
}
