package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The lean HTTP/1.1 server at the level of bytes on a connection, serving
// testHandler. The KMS through it is tested by package awsapi's tests,
// most of which run on both its front ends.

// errBadCredential is testHandler's refusal of a request whose
// Authorization is not "ok".
var errBadCredential = errors.New("bad credential")

// testHandler is the Handler of the tests. It answers POST / with the
// request's body, as Content-Type the request's, the status the request's
// X-Status header says (default 200), and an X-Request-Id counting its
// requests. A request is authenticated if its Authorization is "ok",
// refused (403, and by Precheck) if it has another. It blocks a request
// with X-Block until release is closed, telling started; it panics on one
// with X-Panic.
type testHandler struct {
	started chan struct{}
	release chan struct{}
	n       atomic.Int64 // requests served
	mu      sync.Mutex
	errs    []error // the BodyErr of the requests that had one
	checked int     // Precheck calls
}

var _ Handler = (*testHandler)(nil)

func (h *testHandler) Precheck(r *Request) error {
	h.mu.Lock()
	h.checked++
	h.mu.Unlock()
	if r.Body != nil || r.BodyErr != nil {
		panic("Precheck given a body")
	}
	if a := r.Header.Get("Authorization"); a != "" && a != "ok" {
		return errBadCredential
	}
	return nil
}

func (h *testHandler) ServeExchange(x *Exchange) {
	r, w := &x.Request, &x.Response
	n := h.n.Add(1)
	if r.Method != http.MethodPost || r.Path != "/" || r.Context == nil || r.Source == "" || r.ContentLength != int64(len(r.Body)) && r.BodyErr == nil {
		panic(fmt.Sprintf("a request to the handler: %s %q, source %q, Content-Length %d for %d bytes", r.Method, r.Path, r.Source, r.ContentLength, len(r.Body)))
	}
	w.Header = append(w.Header, Field{"X-Request-Id", strconv.FormatInt(n, 10)})
	if r.BodyErr != nil {
		h.mu.Lock()
		h.errs = append(h.errs, r.BodyErr)
		h.mu.Unlock()
		w.Status = http.StatusBadRequest
		switch {
		case r.BodyErr == ErrBodyTooLarge:
			w.Status = http.StatusRequestEntityTooLarge
		case r.BodyErr == ErrNoMemory:
			w.Status = http.StatusServiceUnavailable
		case r.BodyErr == errBadCredential:
			w.Status = http.StatusForbidden
		}
		w.Header = append(w.Header, Field{"Content-Type", "text/plain"})
		w.Body = append(w.Body, "body error: "+r.BodyErr.Error()...)
		return
	}
	switch a := r.Header.Get("Authorization"); a {
	case "ok":
		w.Authenticated = true
	case "":
	default:
		w.Status = http.StatusForbidden
		w.Body = append(w.Body, "bad credential"...)
		return
	}
	if r.Header.Get("X-Panic") != "" {
		panic("X-Panic")
	}
	if r.Header.Get("X-Block") != "" {
		h.started <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context.Done():
			return
		}
	}
	if s := r.Header.Get("X-Status"); s != "" {
		w.Status, _ = strconv.Atoi(s)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header = append(w.Header, Field{"Content-Type", ct})
	}
	w.Body = append(w.Body, r.Body...)
}

// bodyErrs returns the BodyErr of the requests that had one.
func (h *testHandler) bodyErrs() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// prechecks returns the number of Precheck calls.
func (h *testHandler) prechecks() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checked
}

// testFallback is the fallback handler of the tests: GET /healthz answers
// "ok\n", POST /echo its body with status 201, GET /empty 204; the rest is
// 404.
func testFallback() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", "1")   // the server's own is written instead
		w.Header().Set("Connection", "upgrade") // likewise
		w.Header().Set("X-Fallback", "yes")
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

// testEnv is a Server serving testHandler and testFallback on loopback.
type testEnv struct {
	t    *testing.T
	srv  *Server
	h    *testHandler
	addr string
}

// newTestEnv starts a server with cfg; it is shut down when the test ends.
func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, ln, ln.Addr().String())
}

// serveOn serves ln (at addr) with a new Server with cfg until the test
// ends.
func serveOn(t *testing.T, cfg Config, ln net.Listener, addr string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, srv: New(cfg), h: &testHandler{started: make(chan struct{}), release: make(chan struct{})}, addr: addr}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln, e.h, testFallback()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown err = %v", err)
		}
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve err = %v, want http.ErrServerClosed", err)
		}
	})
	return e
}

// leanEnv is a testEnv with timeouts.
func leanEnv(t *testing.T, timeouts Timeouts) *testEnv {
	t.Helper()
	return newTestEnv(t, Config{Timeouts: timeouts})
}

// dial opens a raw connection to the server.
func (e *testEnv) dial() (net.Conn, *bufio.Reader) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// rawPost returns an authenticated POST / with body as HTTP/1.1 bytes,
// with the header lines extra ("Name: value\r\n" each) after Host.
func rawPost(body string, extra ...string) []byte {
	return fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: 127.0.0.1:8500\r\nAuthorization: ok\r\nContent-Type: application/x-amz-json-1.1\r\n%sContent-Length: %d\r\n\r\n%s",
		strings.Join(extra, ""), len(body), body)
}

// readResponse reads one answer and its body.
func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading an answer's body: %v", err)
	}
	return resp, b
}

// wantClosed checks that the server closes the connection (no more bytes,
// EOF or reset) within a few seconds.
func wantClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := br.ReadByte()
	if err == nil {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("the connection is still open: read %q", append([]byte{b}, rest...))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within 5 s")
	}
}

// payload is a request body of n bytes, different for each n.
func payload(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i*7+n)%26)
	}
	return string(b)
}

// wantEcho checks a 200 answer of testHandler to a request with body.
func wantEcho(t *testing.T, resp *http.Response, got []byte, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || string(got) != body {
		t.Fatalf("POST / with %d bytes = %d %.100q, want 200 and the body", len(body), resp.StatusCode, got)
	}
}

func TestLeanKeepAlive(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for i := range 100 {
		body := payload(1 + i%64)
		if _, err := c.Write(rawPost(body)); err != nil {
			t.Fatal(err)
		}
		resp, got := readResponse(t, br)
		wantEcho(t, resp, got, body)
		if resp.Close {
			t.Fatalf("request %d: the server closes a keep-alive connection", i)
		}
	}
}

// TestLeanResponseHeaders: the answer's headers are the handler's, and the
// server's Content-Length and Date (which SDKs use to correct clock skew).
func TestLeanResponseHeaders(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for i, tc := range []struct {
		status int
		extra  string
	}{
		{200, ""},
		{400, "X-Status: 400\r\n"},
		{0, "X-Status: 0\r\n"}, // 0 is 200
		{404, "X-Status: 404\r\n"},
	} {
		c.Write(rawPost("{}", tc.extra))
		resp, body := readResponse(t, br)
		want := max(tc.status, 200)
		if resp.StatusCode != want || resp.Proto != "HTTP/1.1" {
			t.Errorf("X-Status %d: %s %d, want HTTP/1.1 %d", tc.status, resp.Proto, resp.StatusCode, want)
		}
		h := resp.Header
		if h.Get("Content-Type") != "application/x-amz-json-1.1" || resp.ContentLength != int64(len(body)) || string(body) != "{}" ||
			h.Get("X-Request-Id") != strconv.Itoa(i+1) {
			t.Errorf("X-Status %d: headers %v, body %q", tc.status, h, body)
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil || time.Since(date).Abs() > 5*time.Second {
			t.Errorf("X-Status %d: Date %q (%v), want now", tc.status, h.Get("Date"), err)
		}
	}
}

// fieldsHandler answers with the header fields it holds.
type fieldsHandler struct{ fields Header }

func (fieldsHandler) Precheck(*Request) error { return nil }

func (h fieldsHandler) ServeExchange(x *Exchange) {
	x.Response.Header = append(x.Response.Header, h.fields...)
	x.Response.Body = append(x.Response.Body, "{}"...)
}

// TestLeanHandlerFields: a handler's header field cannot split the
// answer: fields with names that are not tokens are left out, and control
// characters out of values.
func TestLeanHandlerFields(t *testing.T) {
	srv := New(Config{})
	fc := &fakeConn{in: bytes.NewReader(rawPost("{}", "Connection: close\r\n"))}
	h := fieldsHandler{Header{
		{"X-Good", "a\tb"},
		{"X-Split", "v\r\nSet-Cookie: x=y"},
		{"Bad Name", "v"},
		{"X-Bad:\r\nSet-Cookie", "x=y"},
		{"", "v"},
		{"X-Nul", "a\x00b\x7fc"},
	}}
	c := srv.newConn(fc, h, testFallback())
	c.serve()
	resp, body := readResponse(t, bufio.NewReader(&fc.out))
	if resp.StatusCode != 200 || string(body) != "{}" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Good"); got != "a\tb" {
		t.Errorf("X-Good = %q, want %q", got, "a\tb")
	}
	if got := resp.Header.Get("X-Split"); got != "vSet-Cookie: x=y" {
		t.Errorf("X-Split = %q, want %q", got, "vSet-Cookie: x=y")
	}
	if got := resp.Header.Get("X-Nul"); got != "abc" {
		t.Errorf("X-Nul = %q, want %q", got, "abc")
	}
	if _, ok := resp.Header["Set-Cookie"]; ok || len(resp.Header) != 5 || !resp.Close { // X-Good, X-Split, X-Nul, Content-Length, Date; Connection: close
		t.Errorf("answer headers %v (close %v)", resp.Header, resp.Close)
	}
}

// TestLeanPipelining sends many requests in one write: the answers come
// back in order.
func TestLeanPipelining(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	var all []byte
	for i := range 20 {
		all = append(all, rawPost(payload(i+1))...)
	}
	all = append(all, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"...)
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		resp, body := readResponse(t, br)
		wantEcho(t, resp, body, payload(i+1))
	}
	if resp, body := readResponse(t, br); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("pipelined GET /healthz = %d %q", resp.StatusCode, body)
	}
}

// TestLeanExpectContinue: with "Expect: 100-continue" the server says
// "100 Continue" before the client sends the body (curl does this for
// bodies over 1 KiB), once the handler's Precheck has passed it.
func TestLeanExpectContinue(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	body := payload(24)
	raw := rawPost(body, "Expect: 100-continue\r\n")
	head := raw[:len(raw)-len(body)]
	if _, err := c.Write(head); err != nil {
		t.Fatal(err)
	}
	resp, _ := readResponse(t, br)
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("after the headers: %d, want 100 Continue", resp.StatusCode)
	}
	if n := e.h.prechecks(); n != 1 {
		t.Errorf("%d Precheck calls before 100 Continue, want 1", n)
	}
	c.Write([]byte(body))
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, body)
	// A body sent without waiting gets no 100.
	c.Write(raw)
	resp, b = readResponse(t, br)
	wantEcho(t, resp, b, body)
}

func TestLeanHTTP10(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	http10 := func(raw []byte) []byte { return bytes.Replace(raw, []byte("HTTP/1.1"), []byte("HTTP/1.0"), 1) }

	// HTTP/1.0: the connection closes after the answer.
	c, br := e.dial()
	c.Write(http10(rawPost(payload(4))))
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, payload(4))
	if !resp.Close {
		t.Errorf("HTTP/1.0 answer without Connection: close")
	}
	wantClosed(t, c, br)

	// HTTP/1.0 with Connection: keep-alive stays open.
	c, br = e.dial()
	for range 3 {
		c.Write(http10(rawPost(payload(5), "Connection: keep-alive\r\n")))
		resp, b := readResponse(t, br)
		wantEcho(t, resp, b, payload(5))
		if resp.Header.Get("Connection") != "keep-alive" {
			t.Errorf("HTTP/1.0 keep-alive answer: Connection %q", resp.Header.Get("Connection"))
		}
	}
	// HTTP/1.0 needs no Host.
	c.Write([]byte("GET /healthz HTTP/1.0\r\n\r\n"))
	if resp, b := readResponse(t, br); resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("GET /healthz HTTP/1.0 = %d %q", resp.StatusCode, b)
	}
	wantClosed(t, c, br)
}

func TestLeanConnectionClose(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	c.Write(rawPost(payload(7), "Connection: close\r\n"))
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, payload(7))
	if !resp.Close {
		t.Errorf("the answer to Connection: close does not say close")
	}
	wantClosed(t, c, br)
}

// TestLeanHeaderCase: header names match whatever their case.
func TestLeanHeaderCase(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for _, change := range []func(string) string{strings.ToLower, strings.ToUpper} {
		raw := rawPost(payload(9), "X-Status: 200\r\n")
		head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		lines := strings.Split(string(head), "\r\n")
		for i := 1; i < len(lines); i++ {
			name, value, _ := strings.Cut(lines[i], ":")
			lines[i] = change(name) + ":" + value
		}
		c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + string(body)))
		resp, b := readResponse(t, br)
		wantEcho(t, resp, b, payload(9))
		if resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("%s names: the handler did not find Content-Type", change("X"))
		}
	}
}

// TestLeanMalformed sends requests that a strict parser must refuse: the
// server answers with the status and closes the connection, so that no
// bytes after them can be read as another request; the handler sees none
// of them.
func TestLeanMalformed(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	const post = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\n"
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"Transfer-Encoding and Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"Content-Length and Transfer-Encoding", post + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400},
		{"chunked", post + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411},
		{"other transfer coding", post + "Transfer-Encoding: gzip\r\n\r\n", 501},
		{"two Content-Lengths", post + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"conflicting Content-Lengths", post + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", 400},
		{"Content-Length list", post + "Content-Length: 2, 2\r\n\r\n{}", 400},
		{"non-digit Content-Length", post + "Content-Length: 0x2\r\n\r\n{}", 400},
		{"signed Content-Length", post + "Content-Length: +2\r\n\r\n{}", 400},
		{"negative Content-Length", post + "Content-Length: -1\r\n\r\n", 400},
		{"empty Content-Length", post + "Content-Length: \r\n\r\n", 400},
		{"huge Content-Length", post + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"obs-fold", post + "X-Long: a\r\n b\r\n\r\n", 400},
		{"CR in a value", post + "X-Bad: a\rb\r\n\r\n", 400},
		{"NUL in a value", post + "X-Bad: a\x00b\r\n\r\n", 400},
		{"LF alone", "POST / HTTP/1.1\nHost: x\n\n", 400},
		{"LF alone in a header", post + "X-Bad: a\nX-Other: b\r\n\r\n", 400},
		{"space before the colon", post + "Content-Length : 2\r\n\r\n{}", 400},
		{"no colon", post + "NoColon\r\n\r\n", 400},
		{"missing Host", "POST / HTTP/1.1\r\nAuthorization: ok\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"two Hosts", post + "Host: y\r\n\r\n", 400},
		{"bad Host", "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"HTTP/2.0", "POST / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
		{"garbage version", "POST / HTTQ/1.1\r\nHost: x\r\n\r\n", 400},
		{"lower-case version", "POST / http/1.1\r\nHost: x\r\n\r\n", 400},
		{"absolute form", "POST http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"no target", "POST  HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"two spaces", "POST /  HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"empty request line", "\r\n\r\n", 400},
		{"bad method", "P(ST / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"control character in the target", "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"unknown expectation", post + "Expect: something\r\nContent-Length: 2\r\n\r\n{}", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := e.dial()
			// A second, valid request follows: it must not be answered.
			c.Write([]byte(tc.raw + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
			resp, body := readResponse(t, br)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if !resp.Close {
				t.Errorf("the refusal does not say Connection: close")
			}
			wantClosed(t, c, br)
		})
	}
	if n := e.h.n.Load(); n != 0 {
		t.Errorf("the handler served %d of the malformed requests", n)
	}
}

func TestLeanOversize(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	t.Run("headers over 64 KiB", func(t *testing.T) {
		c, br := e.dial()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
		big := "X-Big: " + strings.Repeat("a", 1000) + "\r\n"
		go func() {
			for range 70 {
				if _, err := c.Write([]byte(big)); err != nil {
					return
				}
			}
		}()
		resp, _ := readResponse(t, br)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
		wantClosed(t, c, br)
	})
	t.Run("header line over 64 KiB", func(t *testing.T) {
		c, br := e.dial()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10)))
		resp, _ := readResponse(t, br)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
		wantClosed(t, c, br)
	})
	for _, tc := range []struct {
		fields, status int
	}{
		{101, http.StatusRequestHeaderFieldsTooLarge},
		{100, http.StatusOK},
	} {
		t.Run(fmt.Sprintf("%d header fields", tc.fields), func(t *testing.T) {
			c, br := e.dial()
			var b strings.Builder
			b.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\n")
			for i := range tc.fields - 1 {
				fmt.Fprintf(&b, "X-H%d: v\r\n", i)
			}
			c.Write([]byte(b.String() + "\r\n"))
			resp, _ := readResponse(t, br)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				wantClosed(t, c, br)
			}
		})
	}
	t.Run("handler body over the limit", func(t *testing.T) {
		// Refused by its Content-Length, before it is read: the handler
		// answers, told ErrBodyTooLarge, then the connection closes.
		c, br := e.dial()
		c.Write(fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: %d\r\n\r\n{", MaxBodyBytes+1))
		resp, body := readResponse(t, br)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "body error: "+ErrBodyTooLarge.Error() {
			t.Errorf("oversized body: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		wantClosed(t, c, br)
	})
	t.Run("other body over the limit", func(t *testing.T) {
		c, br := e.dial()
		c.Write(fmt.Appendf(nil, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", MaxBodyBytes+1))
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.StatusCode)
		}
		wantClosed(t, c, br)
	})
	t.Run("largest body", func(t *testing.T) {
		// A body at the limit is read (across many reads) and reaches the
		// handler whole.
		body := payload(MaxBodyBytes)
		c, br := e.dial()
		c.Write(rawPost(body))
		resp, b := readResponse(t, br)
		wantEcho(t, resp, b, body)
		c.Write(rawPost(payload(3)))
		resp, b = readResponse(t, br)
		wantEcho(t, resp, b, payload(3))
	})
}

// TestLeanSlowloris trickles headers past the header timeout: the server
// closes the connection.
func TestLeanSlowloris(t *testing.T) {
	e := leanEnv(t, Timeouts{ReadHeader: 300 * time.Millisecond})
	c, br := e.dial()
	start := time.Now()
	c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\n"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 40 {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte("X")); err != nil {
				return
			}
		}
	}()
	wantClosed(t, c, br)
	if d := time.Since(start); d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("closed after %v, want about the 300 ms header timeout", d)
	}
	<-done
}

// TestLeanSlowBody: a body that does not come within the read timeout is
// not waited for: the handler answers, told the timeout, then the
// connection closes.
func TestLeanSlowBody(t *testing.T) {
	e := leanEnv(t, Timeouts{Read: 300 * time.Millisecond})
	c, br := e.dial()
	start := time.Now()
	c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 10\r\n\r\n{"))
	resp, body := readResponse(t, br)
	if resp.StatusCode != 400 || !resp.Close {
		t.Errorf("body timeout: %d %s (close %v)", resp.StatusCode, body, resp.Close)
	}
	wantClosed(t, c, br)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("closed after %v, want about the 300 ms read timeout", d)
	}
	errs := e.h.bodyErrs()
	var ne net.Error
	if len(errs) != 1 || !errors.As(errs[0], &ne) || !ne.Timeout() {
		t.Errorf("the handler's BodyErrs = %v, want one timeout", errs)
	}
}

func TestLeanIdleTimeout(t *testing.T) {
	e := leanEnv(t, Timeouts{Idle: 300 * time.Millisecond})
	c, br := e.dial()
	c.Write(rawPost(payload(2)))
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, payload(2))
	start := time.Now()
	wantClosed(t, c, br)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed %v after the answer, want the 300 ms idle timeout", d)
	}
	// (Before a first request, the header timeout applies: see
	// TestLeanSilentConnection.)
}

// TestLeanShutdown: Shutdown closes idle connections at once, lets a
// request in flight finish and answer (with Connection: close), then
// returns; Serve returns http.ErrServerClosed.
func TestLeanShutdown(t *testing.T) {
	srv := New(Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &testHandler{}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, h, testFallback()) }()
	e := &testEnv{t: t, srv: srv, h: h, addr: ln.Addr().String()}

	idle, idleBR := e.dial()
	idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	readResponse(t, idleBR)

	busy, busyBR := e.dial()
	body := payload(16)
	raw := rawPost(body, "Expect: 100-continue\r\n")
	busy.Write(raw[:len(raw)-len(body)])
	if resp, _ := readResponse(t, busyBR); resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %d, want 100 Continue", resp.StatusCode)
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	wantClosed(t, idle, idleBR)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("new connections are accepted during Shutdown")
	}
	busy.Write([]byte(body))
	resp, b := readResponse(t, busyBR)
	wantEcho(t, resp, b, body)
	if !resp.Close {
		t.Errorf("the answer during Shutdown does not say Connection: close")
	}
	wantClosed(t, busy, busyBR)
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last answer")
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve err = %v, want http.ErrServerClosed", err)
	}
	if err := srv.Serve(ln, h, nil); err != http.ErrServerClosed {
		t.Errorf("Serve after Shutdown err = %v, want http.ErrServerClosed", err)
	}
}

// TestLeanShutdownDeadline: when ctx ends first, Shutdown closes what
// remains and returns ctx's error.
func TestLeanShutdownDeadline(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")) // in flight, stuck
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown err = %v, want context.DeadlineExceeded", err)
	}
	wantClosed(t, c, br)
}

// selfSigned makes a TLS certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, pool
}

// tlsEnv is a testEnv served over TLS, with cfg.
func tlsEnv(t *testing.T, cfg Config) (*testEnv, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	return serveOn(t, cfg, tln, ln.Addr().String()), pool
}

func TestLeanTLS(t *testing.T) {
	e, pool := tlsEnv(t, Config{})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	url := "https://" + e.addr
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("GET /healthz over TLS: %d %s, ALPN %q", resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	for i := range 3 { // on one kept-alive TLS connection
		body := payload(12 + i)
		r, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
		r.Header.Set("Authorization", "ok")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatalf("POST / over TLS: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantEcho(t, resp, b, body)
	}
	// Plain HTTP on the TLS port is told so.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(c)
	if resp, b := readResponse(t, br); resp.StatusCode != 400 || !strings.Contains(string(b), "HTTPS") {
		t.Errorf("plain HTTP on the TLS port: %d %q", resp.StatusCode, b)
	}
}

// TestLeanFallback: everything but POST / goes to the fallback handler,
// as net/http would serve it: its status, headers and body, with the
// server's own Content-Length, Date and Connection; HEAD without the body.
func TestLeanFallback(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	c.Write([]byte("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 3 {
		t.Errorf("HEAD /healthz = %v, %v", resp, err)
	}
	c.Write([]byte("POST /echo?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
	resp, b := readResponse(t, br)
	if resp.StatusCode != http.StatusCreated || string(b) != "hello" || resp.Header.Get("X-Fallback") != "yes" ||
		resp.Header.Get("Connection") != "" || resp.Header.Get("Date") == "" || resp.Header.Get("Content-Type") == "" {
		t.Errorf("POST /echo = %d %q %v", resp.StatusCode, b, resp.Header)
	}
	c.Write([]byte("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"))
	if resp, b := readResponse(t, br); resp.StatusCode != http.StatusNoContent || len(b) != 0 || resp.Header.Get("Content-Length") != "" {
		t.Errorf("GET /empty = %d %q %v", resp.StatusCode, b, resp.Header)
	}
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /keys HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 2\r\n\r\n{}",
		"GET /nothing?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c.Write([]byte(req))
		if resp, b := readResponse(t, br); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%q = %d %s", strings.SplitN(req, "\r\n", 2)[0], resp.StatusCode, b)
		}
	}
	if n := e.h.n.Load(); n != 0 {
		t.Errorf("the handler served %d requests to other routes", n)
	}
	// POST / with a query is the handler's.
	c.Write([]byte("POST /?a=b HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 2\r\n\r\n{}"))
	resp, b = readResponse(t, br)
	wantEcho(t, resp, b, "{}")
}

// TestLeanNilFallback: with no fallback, other routes are 404 Not Found.
func TestLeanNilFallback(t *testing.T) {
	srv := New(Config{})
	fc := &fakeConn{in: bytes.NewReader([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))}
	ln := &oneConnListener{c: fc}
	if err := srv.Serve(ln, &testHandler{}, nil); err != io.EOF {
		t.Fatalf("Serve err = %v, want the listener's io.EOF", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Connections > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	resp, _ := readResponse(t, bufio.NewReader(bytes.NewReader(fc.output())))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /healthz with no fallback = %d, want 404", resp.StatusCode)
	}
}

// oneConnListener accepts one connection, then fails with io.EOF.
type oneConnListener struct {
	c    net.Conn
	done bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.done {
		return nil, io.EOF
	}
	l.done = true
	return l.c, nil
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// TestLeanPanickingHandler: a handler that panics loses its connection,
// not the server; the panic is logged.
func TestLeanPanickingHandler(t *testing.T) {
	catcher := &panicCatcher{}
	e := newTestEnv(t, Config{Logger: slog.New(catcher)})
	c, br := e.dial()
	c.Write(rawPost("{}", "X-Panic: 1\r\n"))
	wantClosed(t, c, br)
	c, br = e.dial()
	c.Write(rawPost("{}"))
	resp, b := readResponse(t, br)
	wantEcho(t, resp, b, "{}")
	catcher.mu.Lock()
	defer catcher.mu.Unlock()
	if len(catcher.panics) != 1 || !strings.Contains(catcher.panics[0], "X-Panic") {
		t.Errorf("panics logged: %q, want the handler's", catcher.panics)
	}
}

// fakeConn is a connection whose input is a fixed string of bytes.
type fakeConn struct {
	in  *bytes.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *fakeConn) Read(b []byte) (int, error) { return c.in.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}
func (c *fakeConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}
func (c *fakeConn) Close() error        { return nil }
func (c *fakeConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8500} }
func (c *fakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

// panicCatcher is a log handler that records panics the server recovers.
type panicCatcher struct {
	mu     sync.Mutex
	panics []string
}

func (h *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, "%s=%v\n", a.Key, a.Value); return true })
		h.mu.Lock()
		h.panics = append(h.panics, b.String())
		h.mu.Unlock()
	}
	return nil
}
func (h *panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicCatcher) WithGroup(string) slog.Handler      { return h }

// FuzzHTTPServer feeds arbitrary bytes to a connection of the lean server
// serving testHandler: it must never panic, and what it writes back must
// be a sequence of well-formed HTTP/1.1 answers, each with a status, a
// Date and a Content-Length that matches.
func FuzzHTTPServer(f *testing.F) {
	catcher := &panicCatcher{}
	srv := New(Config{Logger: slog.New(catcher)})
	h := &testHandler{}
	fallback := testFallback()
	post := func(body string, extra string) string {
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:8500\r\nContent-Type: application/x-amz-json-1.1\r\n%sContent-Length: %d\r\n\r\n%s", extra, len(body), body)
	}
	for _, seed := range []string{
		post(`{"NumberOfBytes":16}`, "Authorization: ok\r\n"),
		post(`{}`, "") + post(`{}`, "Connection: keep-alive\r\n"),
		post(`{"KeyId":"alias/x","NumberOfBytes":32}`, "Expect: 100-continue\r\n"),
		post(`{"CiphertextBlob":"AAECAwQ="}`, "Connection: close\r\n") + post("{}", ""),
		post(`{}`, "Authorization: bad\r\nX-Status: 404\r\n"),
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n",
		"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"\r\n\r\n", "GET / HTTP/1.1\n\n", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if lower := bytes.ToLower(in); bytes.Contains(lower, []byte("x-block")) || bytes.Contains(lower, []byte("x-panic")) {
			return // testHandler's hooks to block and to panic
		}
		fc := &fakeConn{in: bytes.NewReader(in)}
		c := srv.newConn(fc, h, fallback)
		c.serve()
		catcher.mu.Lock()
		panics := catcher.panics
		catcher.panics = nil
		catcher.mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("the server panicked on %q:\n%s", in, panics[0])
		}
		out := fc.out.Bytes()
		if len(out) > 0 && len(in) == 0 {
			t.Fatalf("an answer to no request: %q", out)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for n := 0; ; n++ {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer %d to %q is not HTTP: %v\n%q", n, in, err, out)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				if bytes.Contains(in, []byte("HEAD")) {
					break // the answer to a HEAD has no body (which this reader cannot know)
				}
				t.Fatalf("answer %d to %q: body: %v\n%q", n, in, err, out)
			}
			if resp.Proto != "HTTP/1.1" && !(resp.StatusCode == 400 && resp.Proto == "HTTP/1.0") || resp.StatusCode < 100 || resp.StatusCode > 599 {
				t.Fatalf("answer %d to %q: %s %d", n, in, resp.Proto, resp.StatusCode)
			}
			if resp.StatusCode == http.StatusContinue {
				continue
			}
			if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil || resp.ContentLength != int64(len(body)) && resp.ContentLength != -1 {
				t.Fatalf("answer %d to %q: Date %q, Content-Length %d for %d bytes", n, in, resp.Header.Get("Date"), resp.ContentLength, len(body))
			}
			if resp.Header.Get("Content-Length") == "" && !(resp.StatusCode == 204 || resp.StatusCode == 304) {
				t.Fatalf("answer %d to %q: no Content-Length", n, in)
			}
			if resp.Close {
				if rest, _ := io.ReadAll(br); len(rest) > 0 {
					t.Fatalf("answer %d to %q closes the connection, yet %q follows", n, in, rest)
				}
				break
			}
		}
	})
}
