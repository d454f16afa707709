package awsapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms"
)

// The limits of the lean server (limits.go): connection caps and which
// connection is shed at a cap, the header timeout from accept, the memory
// budget of large requests, and the credential check before a large body.

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
	c, err := d.Dial("tcp", e.addr())
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

// roundTrip sends a signed GenerateRandom on c and checks the answer.
func (e *testEnv) roundTrip(what string, c rawConn) {
	e.t.Helper()
	if _, err := c.Write(e.rawKMS("GenerateRandom", generateRandom(8), nil)); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		e.t.Fatalf("%s: reading the answer: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	wantRandom(e.t, resp, body, 8)
}

// largeRequest returns a request for UpdateKeyDescription with a body of n
// bytes, signed as opts say, as its header section and its body.
func (e *testEnv) largeRequest(n int, opts signOpts) (head, body []byte) {
	e.t.Helper()
	const pre, post = `{"KeyId":"alias/none","Description":"`, `"}`
	b := []byte(pre + strings.Repeat("d", n-len(pre)-len(post)) + post)
	r := e.request("UpdateKeyDescription", b, opts)
	var w bytes.Buffer
	if err := r.Write(&w); err != nil {
		e.t.Fatal(err)
	}
	raw := w.Bytes()
	return raw[:len(raw)-n], raw[len(raw)-n:]
}

// metric returns the value of a metric without labels from the server's
// metrics handler.
func (e *testEnv) metric(name string) float64 {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("metric %s = %q: %v", name, v, err)
			}
			return f
		}
	}
	e.t.Fatalf("no metric %s in the metrics", name)
	return 0
}

// waitMetric polls a metric until it has the value want.
func (e *testEnv) waitMetric(name string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.metric(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("metric %s = %v after 5 s, want %v", name, got, want)
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
	srv := newServerParts(t, false, func(c *Config) { c.Timeouts = Timeouts{ReadHeader: 300 * time.Millisecond, Idle: time.Minute} }).srv
	cert, _ := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}))
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
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
// connection sheds the oldest that has not completed a signed request; a
// connection that has is kept, and a new signed client gets in at once.
func TestLeanShedsSilentConnections(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{MaxConnections: 8, MaxConnectionsPerSource: 8} })
	signed := e.dialFrom("127.0.0.1")
	e.roundTrip("the signed client's first request", signed)
	var silent []rawConn
	for range 20 {
		silent = append(silent, e.dialFrom("127.0.0.1"))
	}
	// One signed and 20 silent connections over a cap of 8: the 13 oldest
	// silent ones are shed, the other 7 are open.
	for i := range 13 {
		wantClosed(t, silent[i].Conn, silent[i].br)
	}
	for i := 13; i < 20; i++ {
		wantOpen(t, fmt.Sprintf("silent connection %d (of the 7 newest)", i), silent[i], 100*time.Millisecond)
	}
	e.roundTrip("the signed client, after the flood", signed)
	// A new client gets in: it sheds the oldest silent connection.
	fresh := e.dialFrom("127.0.0.1")
	e.roundTrip("a new client at the cap", fresh)
	wantClosed(t, silent[13].Conn, silent[13].br)
	wantOpen(t, "silent connection 14", silent[14], 100*time.Millisecond)
	e.roundTrip("the signed client, at the end", signed)
	// 13, and 1 shed for the new client.
	if n := e.metric(`envelope_http_connections_shed_total{kind="fresh"}`); n != 14 {
		t.Errorf("fresh connections shed: %v, want 14", n)
	}
	if n := e.metric(`envelope_http_connections_shed_total{kind="trusted"}`); n != 0 {
		t.Errorf("trusted connections shed: %v, want 0", n)
	}
}

// TestLeanShedsIdleLongest: with no fresh connection to shed, a new one
// sheds the trusted connection idle longest; a fresh one is shed before
// any trusted one.
func TestLeanShedsIdleLongest(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{MaxConnections: 3, MaxConnectionsPerSource: 3} })
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
}

// TestLeanShedsPerSource: one client address cannot take more than its
// share: at its cap, its own oldest connections are shed, and the other
// addresses' are kept; at the global cap, the oldest of all is shed.
func TestLeanShedsPerSource(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{MaxConnections: 12, MaxConnectionsPerSource: 4} })
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
}

// TestLeanShedsPerSourceOfOne: with a cap of one connection per source,
// each new connection sheds the one before (the source's count survives
// its last connection being shed).
func TestLeanShedsPerSourceOfOne(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{MaxConnections: 8, MaxConnectionsPerSource: 1} })
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

// blockingBackend blocks GenerateRandom until release is closed, telling
// started when it begins.
type blockingBackend struct {
	Backend
	started chan struct{}
	release chan struct{}
}

func (b blockingBackend) GenerateRandom(ctx context.Context, in *kms.GenerateRandomInput) (*kms.GenerateRandomOutput, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Backend.GenerateRandom(ctx, in)
}

// TestLeanServedConnectionsAreNotShed: a connection whose request is being
// served is never cut off; when every connection is, a new one is closed
// at once.
func TestLeanServedConnectionsAreNotShed(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	e := newTestEnv(t, func(c *Config) {
		c.Backend = blockingBackend{c.Backend, started, release}
		c.Limits = Limits{MaxConnections: 2, MaxConnectionsPerSource: 2}
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server shuts down, should the test fail first
	var busy []rawConn
	for range 2 {
		c := e.dialFrom("127.0.0.1")
		c.Write(e.rawKMS("GenerateRandom", generateRandom(5), nil))
		<-started
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
		wantRandom(t, resp, body, 5)
	}
	if n := e.metric("envelope_http_connections_refused_total"); n != 1 {
		t.Errorf("envelope_http_connections_refused_total = %v, want 1", n)
	}
}

// TestCheckBeforeLargeBody: a request announcing a large body with an
// unknown access key or a wrong scope is answered at once, without its
// body, and the connection closed; one with a known key and the right
// scope gets its body read, and its signature checked then.
func TestCheckBeforeLargeBody(t *testing.T) { bothFrontEnds(t, testCheckBeforeLargeBody) }

func testCheckBeforeLargeBody(t *testing.T) {
	e := newTestEnv(t)
	stranger := aws.Credentials{AccessKeyID: "AKIDSTRANGER00000001", SecretAccessKey: testRootSecret}
	wrongSecret := aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: "not the secret"}
	const size = 256 << 10
	for _, tc := range []struct {
		name string
		opts signOpts
		code string
	}{
		{"unsigned", signOpts{unsigned: true}, CodeMissingAuthenticationToken},
		{"unknown access key", signOpts{creds: &stranger}, CodeUnrecognizedClient},
		{"wrong region", signOpts{region: "eu-west-1"}, CodeInvalidSignature},
		{"wrong service", signOpts{service: "s3"}, CodeInvalidSignature},
		{"signed 20 minutes ago", signOpts{at: time.Now().Add(-20 * time.Minute)}, CodeRequestExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := e.largeRequest(size, tc.opts)
			c, br := e.dial()
			if _, err := c.Write(head); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer before the body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: body}, tc.code)
			if !resp.Close {
				t.Errorf("the answer does not say Connection: close")
			}
			wantClosed(t, c, br)
		})
	}
	// The refusals are audited like any other.
	n := 0
	for _, ev := range readAuditEvents(t, e.auditPath) {
		if ev.Operation == "UpdateKeyDescription" && ev.Principal == "-" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d refusals before the body in the audit log, want 5", n)
	}

	// The right access key and scope: the body is read, then the signature
	// found wrong.
	head, body := e.largeRequest(size, signOpts{creds: &wrongSecret})
	c, br := e.dial()
	c.Write(head)
	c.Write(body)
	resp, b := readResponse(t, br)
	wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: b}, CodeInvalidSignature)
	// A good one is served.
	head, body = e.largeRequest(size, signOpts{})
	c.Write(head)
	c.Write(body)
	resp, b = readResponse(t, br)
	wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: b}, "ValidationException") // the Description is too long: the operation got the body
}

// TestLeanRequestMemory: large bodies share the request memory budget;
// past it, a request waits briefly, then is answered ThrottlingException
// without its body being read, while small requests go on; a request
// waiting gets its memory as soon as some is returned.
func TestLeanRequestMemory(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{RequestMemory: 2 << 20} })
	const size = 600 << 10 // takes a 1 MiB buffer
	hold := func() rawConn {
		head, body := e.largeRequest(size, signOpts{})
		c := e.dialFrom("127.0.0.1")
		c.Write(head)
		c.Write(body[:100<<10])
		return c
	}
	held := []rawConn{hold(), hold()}
	e.waitMetric("envelope_http_request_memory_bytes", 2<<20)

	head, _ := e.largeRequest(size, signOpts{})
	c := e.dialFrom("127.0.0.1")
	c.Write(head)
	start := time.Now()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("a large request past the budget: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: b}, "ThrottlingException")
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered ThrottlingException after %v, want after a wait of about a second", d)
	}
	if !resp.Close {
		t.Errorf("the ThrottlingException answer does not say Connection: close")
	}
	wantClosed(t, c.Conn, c.br)
	if r := e.call("GenerateRandom", generateRandom(16), signOpts{}); r.status != http.StatusOK {
		t.Errorf("a small request with the budget spent: %d %s", r.status, r.body)
	}

	// A request waiting for memory proceeds when a held one goes.
	head, body := e.largeRequest(size, signOpts{})
	c = e.dialFrom("127.0.0.1")
	c.Write(head)
	c.Write(body)
	e.waitMetric("envelope_http_request_memory_waiting", 1)
	held[0].Close()
	resp, err = http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the waiting request: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: b}, "ValidationException") // the Description is too long: the operation got the body
	held[1].Close()
	c.Close()
	e.waitMetric("envelope_http_request_memory_bytes", 0)
}

// TestLeanHeaderMemory: a header section that outgrows a connection's
// buffer takes its room from the request memory budget while it is read.
func TestLeanHeaderMemory(t *testing.T) {
	e := newTestEnv(t)
	c := e.dialFrom("127.0.0.1")
	c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 20<<10)))
	e.waitMetric("envelope_http_request_memory_bytes", maxHeaderBytes)
	c.Write([]byte("\r\n\r\n"))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz with 20 KiB of headers: %v, %v", resp, err)
	}
	resp.Body.Close()
	e.waitMetric("envelope_http_request_memory_bytes", 0)
}
