package awsapi

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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The lean HTTP/1.1 server (Server.Serve) at the level of bytes on a
// connection. The KMS behaviour through it is tested by the tests of
// server_test.go and sigv4_test.go, which run on both front ends.

// leanEnv is a testEnv served by the lean server, with timeouts.
func leanEnv(t *testing.T, timeouts Timeouts) *testEnv {
	t.Helper()
	return newTestEnv(t, func(c *Config) { c.Timeouts = timeouts })
}

// addr is the server's host:port.
func (e *testEnv) addr() string { return strings.TrimPrefix(e.hs.URL, "http://") }

// dial opens a raw connection to the server.
func (e *testEnv) dial() (net.Conn, *bufio.Reader) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// rawKMS returns a signed KMS request as HTTP/1.1 bytes; edit (if not nil)
// changes it before it is written.
func (e *testEnv) rawKMS(op, body string, edit func(r *http.Request)) []byte {
	e.t.Helper()
	r := e.request(op, []byte(body), signOpts{})
	if edit != nil {
		edit(r)
	}
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		e.t.Fatal(err)
	}
	return b.Bytes()
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

// generateRandom is a GenerateRandom body for n bytes.
func generateRandom(n int) string { return fmt.Sprintf(`{"NumberOfBytes":%d}`, n) }

// wantRandom checks a 200 GenerateRandom answer of n bytes.
func wantRandom(t *testing.T, resp *http.Response, body []byte, n int) {
	t.Helper()
	var out struct{ Plaintext []byte }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.Plaintext) != n {
		t.Fatalf("GenerateRandom(%d) = %d %s", n, resp.StatusCode, body)
	}
}

func TestLeanKeepAlive(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for i := range 100 {
		n := 1 + i%64
		if _, err := c.Write(e.rawKMS("GenerateRandom", generateRandom(n), nil)); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, br)
		wantRandom(t, resp, body, n)
		if resp.Close {
			t.Fatalf("request %d: the server closes a keep-alive connection", i)
		}
	}
}

// TestLeanResponseHeaders: the answer's headers, the Date that SDKs use to
// correct clock skew among them.
func TestLeanResponseHeaders(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for _, tc := range []struct {
		op, body  string
		status    int
		errorType string
	}{
		{"GenerateRandom", generateRandom(8), 200, ""},
		{"DescribeKey", `{"KeyId":"alias/none"}`, 400, "NotFoundException"},
	} {
		c.Write(e.rawKMS(tc.op, tc.body, nil))
		resp, body := readResponse(t, br)
		if resp.StatusCode != tc.status || resp.Proto != "HTTP/1.1" {
			t.Errorf("%s: %s %d, want HTTP/1.1 %d", tc.op, resp.Proto, resp.StatusCode, tc.status)
		}
		h := resp.Header
		if h.Get("Content-Type") != "application/x-amz-json-1.1" || resp.ContentLength != int64(len(body)) ||
			!requestIDRE.MatchString(h.Get("X-Amzn-Requestid")) || h.Get("X-Amzn-Errortype") != tc.errorType {
			t.Errorf("%s: headers %v, body %d bytes", tc.op, h, len(body))
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil || time.Since(date).Abs() > 5*time.Second {
			t.Errorf("%s: Date %q (%v), want now", tc.op, h.Get("Date"), err)
		}
	}
}

// TestLeanPipelining sends many requests in one write: the answers come
// back in order.
func TestLeanPipelining(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	var all []byte
	for i := range 20 {
		all = append(all, e.rawKMS("GenerateRandom", generateRandom(i+1), nil)...)
	}
	all = append(all, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"...)
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		resp, body := readResponse(t, br)
		wantRandom(t, resp, body, i+1)
	}
	if resp, body := readResponse(t, br); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("pipelined GET /healthz = %d %q", resp.StatusCode, body)
	}
}

// TestLeanExpectContinue: with "Expect: 100-continue" the server says
// "100 Continue" before the client sends the body (curl does this for
// bodies over 1 KiB).
func TestLeanExpectContinue(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	body := generateRandom(24)
	raw := e.rawKMS("GenerateRandom", body, func(r *http.Request) { r.Header.Set("Expect", "100-continue") })
	head := raw[:len(raw)-len(body)]
	if _, err := c.Write(head); err != nil {
		t.Fatal(err)
	}
	resp, _ := readResponse(t, br)
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("after the headers: %d, want 100 Continue", resp.StatusCode)
	}
	c.Write([]byte(body))
	resp, b := readResponse(t, br)
	wantRandom(t, resp, b, 24)
	// A body sent without waiting gets no 100.
	c.Write(raw)
	resp, b = readResponse(t, br)
	wantRandom(t, resp, b, 24)
}

func TestLeanHTTP10(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	http10 := func(keepAlive bool) func(r *http.Request) {
		return func(r *http.Request) {
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
			if keepAlive {
				r.Header.Set("Connection", "keep-alive")
			}
		}
	}
	toHTTP10 := func(raw []byte) []byte { return bytes.Replace(raw, []byte("HTTP/1.1"), []byte("HTTP/1.0"), 1) }

	// HTTP/1.0: the connection closes after the answer.
	c, br := e.dial()
	c.Write(toHTTP10(e.rawKMS("GenerateRandom", generateRandom(4), http10(false))))
	resp, b := readResponse(t, br)
	wantRandom(t, resp, b, 4)
	if !resp.Close {
		t.Errorf("HTTP/1.0 answer without Connection: close")
	}
	wantClosed(t, c, br)

	// HTTP/1.0 with Connection: keep-alive stays open.
	c, br = e.dial()
	for range 3 {
		c.Write(toHTTP10(e.rawKMS("GenerateRandom", generateRandom(5), http10(true))))
		resp, b := readResponse(t, br)
		wantRandom(t, resp, b, 5)
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
	c.Write(e.rawKMS("GenerateRandom", generateRandom(7), func(r *http.Request) { r.Close = true }))
	resp, b := readResponse(t, br)
	wantRandom(t, resp, b, 7)
	if !resp.Close {
		t.Errorf("the answer to Connection: close does not say close")
	}
	wantClosed(t, c, br)
}

// TestLeanHeaderCase: header names match whatever their case (the
// signature covers the values, and the names lower-cased).
func TestLeanHeaderCase(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	for _, change := range []func(string) string{strings.ToLower, strings.ToUpper} {
		raw := e.rawKMS("GenerateRandom", generateRandom(9), nil)
		head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		lines := strings.Split(string(head), "\r\n")
		for i := 1; i < len(lines); i++ {
			name, value, _ := strings.Cut(lines[i], ":")
			lines[i] = change(name) + ":" + value
		}
		c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + string(body)))
		resp, b := readResponse(t, br)
		wantRandom(t, resp, b, 9)
	}
}

// TestLeanMalformed sends requests that a strict parser must refuse: the
// server answers with the status and closes the connection, so that no
// bytes after them can be read as another request.
func TestLeanMalformed(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	const post = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\n"
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
		{"missing Host", "POST / HTTP/1.1\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\n\r\n{}", 400},
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
	t.Run("101 header fields", func(t *testing.T) {
		c, br := e.dial()
		var b strings.Builder
		b.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\n")
		for i := range 100 {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		c.Write([]byte(b.String() + "\r\n"))
		resp, _ := readResponse(t, br)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
		wantClosed(t, c, br)
	})
	t.Run("100 header fields", func(t *testing.T) {
		c, br := e.dial()
		var b strings.Builder
		b.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\n")
		for i := range 99 {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		c.Write([]byte(b.String() + "\r\n"))
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})
	t.Run("KMS body over the limit", func(t *testing.T) {
		// Refused by its Content-Length, before it is read: the KMS's
		// error, then the connection closes.
		c, br := e.dial()
		c.Write(fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: %d\r\n\r\n{", MaxBodyBytes+1))
		resp, body := readResponse(t, br)
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Errortype") != "ValidationException" || !bytes.Contains(body, []byte("larger than")) {
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
	t.Run("largest KMS body", func(t *testing.T) {
		// A body at the limit is read (across many reads) and reaches the
		// operation.
		body := `{"Description":"` + strings.Repeat("a", MaxBodyBytes-len(`{"Description":""}`)) + `"}`
		c, br := e.dial()
		c.Write(e.rawKMS("UpdateKeyDescription", body, nil))
		resp, b := readResponse(t, br)
		if resp.StatusCode != 400 || bytes.Contains(b, []byte("larger than")) {
			t.Errorf("a %d-byte body: %d %s", len(body), resp.StatusCode, b)
		}
		c.Write(e.rawKMS("GenerateRandom", generateRandom(3), nil))
		resp, b = readResponse(t, br)
		wantRandom(t, resp, b, 3)
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
// not waited for.
func TestLeanSlowBody(t *testing.T) {
	e := leanEnv(t, Timeouts{Read: 300 * time.Millisecond})
	c, br := e.dial()
	start := time.Now()
	c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 10\r\n\r\n{"))
	// The KMS answers that it could not read the body; then the
	// connection closes.
	resp, body := readResponse(t, br)
	if resp.StatusCode != 400 || !resp.Close {
		t.Errorf("body timeout: %d %s (close %v)", resp.StatusCode, body, resp.Close)
	}
	wantClosed(t, c, br)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("closed after %v, want about the 300 ms read timeout", d)
	}
}

func TestLeanIdleTimeout(t *testing.T) {
	e := leanEnv(t, Timeouts{Idle: 300 * time.Millisecond})
	c, br := e.dial()
	c.Write(e.rawKMS("GenerateRandom", generateRandom(2), nil))
	resp, b := readResponse(t, br)
	wantRandom(t, resp, b, 2)
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
// returns; Serve returns ErrServerClosed.
func TestLeanShutdown(t *testing.T) {
	srv := newServerParts(t, false, func(c *Config) { c.Audit = nil }).srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	e := &testEnv{t: t, srv: srv, hs: &testServer{URL: "http://" + ln.Addr().String()}}

	idle, idleBR := e.dial()
	idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	readResponse(t, idleBR)

	busy, busyBR := e.dial()
	body := generateRandom(16)
	raw := e.rawKMS("GenerateRandom", body, func(r *http.Request) { r.Header.Set("Expect", "100-continue") })
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
	wantRandom(t, resp, b, 16)
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
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve err = %v, want ErrServerClosed", err)
	}
	if err := srv.Serve(ln); err != ErrServerClosed {
		t.Errorf("Serve after Shutdown err = %v, want ErrServerClosed", err)
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

func TestLeanTLS(t *testing.T) {
	e := newTestEnv(t)
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	srv := e.srv
	go srv.Serve(tln)
	e.hs = &testServer{URL: "https://" + ln.Addr().String(), client: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}}
	resp, err := e.hs.client.Get(e.hs.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("GET /healthz over TLS: %d %s, ALPN %q", resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	for range 3 { // on one kept-alive TLS connection
		r := e.call("GenerateRandom", generateRandom(12), signOpts{})
		if r.status != 200 {
			t.Fatalf("GenerateRandom over TLS: %d %s", r.status, r.body)
		}
	}
	// Plain HTTP on the TLS port is told so.
	c, err := net.Dial("tcp", ln.Addr().String())
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

// TestLeanOtherRoutes: everything but POST / goes through Server.Handler,
// as net/http would serve it.
func TestLeanOtherRoutes(t *testing.T) {
	e := leanEnv(t, Timeouts{})
	c, br := e.dial()
	c.Write([]byte("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 3 {
		t.Errorf("HEAD /healthz = %v, %v", resp, err)
	}
	for _, req := range []string{
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", // served only by Server.MetricsHandler
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /? HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"GET /nothing?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c.Write([]byte(req))
		resp, b := readResponse(t, br)
		var doc struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(b, &doc)
		if resp.StatusCode != 400 || doc.Type == "" || resp.Header.Get("X-Amzn-Errortype") != doc.Type {
			t.Errorf("%q = %d %s", strings.SplitN(req, "\r\n", 2)[0], resp.StatusCode, b)
		}
	}
}

// fakeConn is a connection whose input is a fixed string of bytes.
type fakeConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *fakeConn) Read(b []byte) (int, error)  { return c.in.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error) { return c.out.Write(b) }
func (c *fakeConn) Close() error                { return nil }
func (c *fakeConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8500} }
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
// (unsigned requests reach the KMS through InsecureDev): it must never
// panic, and what it writes back must be a sequence of well-formed HTTP/1.1
// answers, each with a status, a Date and a Content-Length that matches.
func FuzzHTTPServer(f *testing.F) {
	catcher := &panicCatcher{}
	srv := newServerParts(f, false, func(c *Config) { c.InsecureDev, c.Logger = true, slog.New(catcher) }).srv
	kmsReq := func(op, body string, extra string) string {
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:8500\r\nX-Amz-Target: TrentService.%s\r\nContent-Type: application/x-amz-json-1.1\r\n%sContent-Length: %d\r\n\r\n%s", op, extra, len(body), body)
	}
	for _, seed := range []string{
		kmsReq("GenerateRandom", `{"NumberOfBytes":16}`, ""),
		kmsReq("ListKeys", `{}`, "") + kmsReq("CreateKey", `{}`, "Connection: keep-alive\r\n"),
		kmsReq("GenerateDataKey", `{"KeyId":"alias/x","NumberOfBytes":32}`, "Expect: 100-continue\r\n"),
		kmsReq("Decrypt", `{"CiphertextBlob":"AAECAwQ="}`, "Connection: close\r\n") + kmsReq("ListKeys", "{}", ""),
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n",
		"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"\r\n\r\n", "GET / HTTP/1.1\n\n", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fc := &fakeConn{in: bytes.NewReader(in)}
		c := srv.newConn(fc)
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
