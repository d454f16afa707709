package awsapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lean HTTP/1.1 server. It serves only what the KMS API needs, with
// one goroutine per connection, reused buffers, one read and one write
// system call per request in the common case, and strict parsing:
//
//   - request line and headers at most 64 KiB, at most 100 header fields
//     (431 otherwise);
//   - a body only by Content-Length, at most MaxBodyBytes; any
//     Transfer-Encoding is refused (411 for chunked, 501 for others, 400
//     with a Content-Length too), as are several Content-Length fields,
//     folded lines, control characters in values and HTTP/1.1 without Host
//     (400): no two parsers can disagree about where a request ends;
//   - "Expect: 100-continue" is answered before the body is read;
//   - pipelined requests are answered in order; HTTP/1.0 connections close
//     after the answer unless they ask for keep-alive.
//
// Any malformed request is answered with a 4xx or 5xx and the connection
// closed. POST / goes straight to [Server.handle]; every other route
// (/healthz, /metrics, anything else) goes through [Server.Handler], with
// an *http.Request made from the same bytes.

// Timeouts bound the connections of [Server.Serve]. Zero fields take the
// defaults.
type Timeouts struct {
	// ReadHeader bounds reading a request's line and headers, from its
	// first byte; default 10 s. It also bounds a TLS handshake.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included, from its first
	// byte; default 30 s.
	Read time.Duration
	// Write bounds writing an answer; default 30 s.
	Write time.Duration
	// Idle bounds the wait for the next request on a kept-alive
	// connection; default 2 min.
	Idle time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Read <= 0 {
		t.Read = 30 * time.Second
	}
	if t.Write <= 0 {
		t.Write = 30 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
	}
	return t
}

// Limits of the lean server.
const (
	// maxHeaderBytes bounds the request line and headers together.
	maxHeaderBytes = 64 << 10
	// maxHeaderFields bounds the number of header lines.
	maxHeaderFields = 100
	// connBufferSize is a connection's read buffer, enough for any
	// ordinary KMS request.
	connBufferSize = 8 << 10
	// maxKeptBuffer is the largest buffer a connection keeps between
	// requests.
	maxKeptBuffer = 64 << 10
	// maxDrainBytes is how much of an over-limit KMS body is read and
	// dropped after the answer, so that a client still sending it gets the
	// answer rather than a broken pipe.
	maxDrainBytes = 4 * MaxBodyBytes
)

// ErrServerClosed is what [Server.Serve] returns after [Server.Shutdown]
// (it is net/http's, so that callers can treat both servers alike).
var ErrServerClosed = http.ErrServerClosed

// httpServer is the state of Serve and Shutdown.
type httpServer struct {
	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  atomic.Bool
	date      atomic.Pointer[httpDate]
}

// httpDate is the Date header of one second.
type httpDate struct {
	unix int64
	text [len(http.TimeFormat)]byte
}

// Connection states, for Shutdown.
const (
	stateIdle   int32 = iota // waiting for a request (or in the TLS handshake)
	stateActive              // reading, handling or answering a request
	stateClosed              // closed by Shutdown
)

// Serve accepts connections on ln and serves the KMS API on each, with the
// lean HTTP/1.1 server, until ln fails or [Server.Shutdown] is called
// (then it returns [ErrServerClosed]). For HTTPS, pass a listener from
// [crypto/tls.NewListener] whose config offers only "http/1.1" by ALPN.
//
// It serves the same routes as [Server.Handler] with the same answers, at
// a fraction of net/http's cost per request.
func (s *Server) Serve(ln net.Listener) error {
	hs := &s.http
	if !hs.trackListener(&ln, true) {
		return ErrServerClosed
	}
	defer hs.trackListener(&ln, false)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if hs.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				// Out of file descriptors or memory: wait for some to be
				// freed, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// Shutdown stops Serve gracefully: it closes the listeners and the idle
// connections, then waits for the requests in flight to be answered (each
// connection closes after its answer). If ctx ends first, it closes the
// remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	hs := &s.http
	hs.shutdown.Store(true)
	hs.mu.Lock()
	var err error
	for ln := range hs.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	hs.mu.Unlock()
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if hs.closeIdle(false) {
			return err
		}
		select {
		case <-ctx.Done():
			// Close every connection and cancel its request, then give the
			// handlers a moment to return, so that what the caller closes
			// next (the audit log, the store) is no longer in use.
			hs.closeIdle(true)
			for range 100 {
				if hs.closeIdle(false) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			return ctx.Err()
		case <-timer.C:
			poll = min(2*poll, 100*time.Millisecond)
			timer.Reset(poll)
		}
	}
}

func (hs *httpServer) trackListener(ln *net.Listener, add bool) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if add {
		if hs.shutdown.Load() {
			return false
		}
		if hs.listeners == nil {
			hs.listeners = map[*net.Listener]struct{}{}
		}
		hs.listeners[ln] = struct{}{}
	} else {
		delete(hs.listeners, ln)
	}
	return true
}

// closeIdle closes the idle connections (all of them if force) and reports
// whether none remain.
func (hs *httpServer) closeIdle(force bool) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for c := range hs.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) || force {
			c.cancel()   // a request in flight is abandoned
			c.nc.Close() // its goroutine then ends and forgets it
		}
	}
	return len(hs.conns) == 0
}

// appendDate appends now as an HTTP Date, formatted once a second.
func (hs *httpServer) appendDate(dst []byte, now time.Time) []byte {
	unix := now.Unix()
	d := hs.date.Load()
	if d == nil || d.unix != unix {
		d = &httpDate{unix: unix}
		now.UTC().AppendFormat(d.text[:0], http.TimeFormat)
		hs.date.Store(d)
	}
	return append(dst, d.text[:]...)
}

// conn is one connection of the lean server.
type conn struct {
	s       *Server
	nc      net.Conn
	t       Timeouts
	state   atomic.Int32
	source  string               // the client's address without the port
	tls     *tls.ConnectionState // for net/http handlers
	buf     []byte               // buf[r:] is received and not yet used
	r       int
	out     []byte // the answer being written
	x       exchange
	rdl     time.Time // the read deadline set
	wdl     time.Time // the write deadline set
	scanned int       // how far the header scan has looked, from r
	// ctx is the requests' context, cancelled when the connection closes
	// (or Shutdown gives up waiting), as net/http's request contexts are.
	ctx    context.Context
	cancel context.CancelFunc
}

var connPool = sync.Pool{New: func() any { return new(conn) }}

// newConn registers a connection, or returns nil during Shutdown.
func (s *Server) newConn(nc net.Conn) *conn {
	c := connPool.Get().(*conn)
	c.s, c.nc, c.t = s, nc, s.cfg.Timeouts.withDefaults()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.state.Store(stateIdle)
	if c.buf == nil {
		c.buf = make([]byte, 0, connBufferSize)
	}
	hs := &s.http
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.shutdown.Load() {
		c.cancel()
		c.release()
		return nil
	}
	if hs.conns == nil {
		hs.conns = map[*conn]struct{}{}
	}
	hs.conns[c] = struct{}{}
	return c
}

// release returns the connection's buffers to the pool.
func (c *conn) release() {
	c.s, c.nc, c.tls, c.source, c.ctx, c.cancel = nil, nil, nil, "", nil, nil
	c.buf, c.r = c.buf[:0], 0
	c.rdl, c.wdl = time.Time{}, time.Time{}
	clear(c.x.req.header[:cap(c.x.req.header)]) // forget the last requests' strings
	c.x.req = kmsRequest{header: c.x.req.header[:0]}
	c.x.resp = kmsResponse{body: c.x.resp.body[:0]}
	if cap(c.buf) > maxKeptBuffer || cap(c.out) > maxKeptBuffer || cap(c.x.resp.body) > maxKeptBuffer ||
		cap(c.x.scratch) > maxKeptBuffer || cap(c.x.audit) > maxKeptBuffer {
		return // let an outsize connection go
	}
	connPool.Put(c)
}

func (c *conn) close() {
	c.cancel()
	c.nc.Close()
	hs := &c.s.http
	hs.mu.Lock()
	delete(hs.conns, c)
	hs.mu.Unlock()
	c.release()
}

// httpError is a request the lean server refuses before any handler sees
// it; the connection closes after the answer.
type httpError struct {
	status int
	msg    string
}

func (c *conn) serve() {
	defer c.close()
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("panic serving a connection", "source", c.source, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if addr := c.nc.RemoteAddr(); addr != nil {
		c.source = sourceAddress(addr.String())
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(c.t.ReadHeader))
		if err := tc.HandshakeContext(context.Background()); err != nil {
			var re tls.RecordHeaderError
			if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
				io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
				re.Conn.Close()
			}
			c.s.log.Debug("TLS handshake failed", "source", c.source, "err", err)
			return
		}
		cs := tc.ConnectionState()
		c.tls = &cs
		c.rdl, c.wdl = time.Time{}, time.Time{}
		tc.SetDeadline(time.Time{})
	}
	for {
		if !c.next() {
			return
		}
		if !c.serveRequest() || c.s.http.shutdown.Load() {
			return
		}
	}
}

func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// next waits for the first bytes of the next request, as an idle
// connection, and reports whether they came.
func (c *conn) next() bool {
	c.scanned = 0
	if c.r < len(c.buf) {
		c.state.Store(stateActive) // pipelined: already here
		return true
	}
	c.buf, c.r = c.buf[:0], 0
	if cap(c.buf) > connBufferSize {
		c.buf = make([]byte, 0, connBufferSize) // an idle connection holds little
	}
	clear(c.x.req.header) // nor the strings of its last request's headers
	c.x.req.header = c.x.req.header[:0]
	c.state.Store(stateIdle)
	if c.s.http.shutdown.Load() {
		return false
	}
	if err := c.fill(time.Now(), c.t.Idle); err != nil {
		return false
	}
	return c.state.CompareAndSwap(stateIdle, stateActive)
}

// fill reads more bytes into buf, with a read deadline of timeout after
// from (kept if already set to about that: moving a deadline has a cost).
func (c *conn) fill(from time.Time, timeout time.Duration) error {
	dl := from.Add(timeout)
	if d := c.rdl.Sub(dl); d > 0 || d < -timeout/16 {
		if err := c.nc.SetReadDeadline(dl); err != nil {
			return err
		}
		c.rdl = dl
	}
	if len(c.buf) == cap(c.buf) {
		if c.r > 0 {
			n := copy(c.buf, c.buf[c.r:])
			c.buf, c.r = c.buf[:n], 0
		} else {
			c.buf = append(c.buf, 0)[:len(c.buf)] // grow
		}
	}
	n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// headerEnd finds the end of the request's header section in buf[r:]: the
// index just past its empty line, 0 if not received yet, or an error for
// a bare LF.
func (c *conn) headerEnd() (int, *httpError) {
	b := c.buf[c.r:]
	for i := c.scanned; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return 0, &httpError{http.StatusBadRequest, "bare LF in the request line or headers"}
		}
		if i >= 3 && b[i-3] == '\r' && b[i-2] == '\n' {
			return i + 1, nil
		}
		if i == 1 {
			return 0, &httpError{http.StatusBadRequest, "empty request line"}
		}
		i++
		c.scanned = i
	}
	return 0, nil
}

// serveRequest reads, handles and answers one request, and reports
// whether the connection stays open for the next.
func (c *conn) serveRequest() bool {
	first := time.Now()
	var end int
	for {
		e, herr := c.headerEnd()
		if herr != nil {
			return c.refuse(herr)
		}
		if e > 0 {
			end = e
			break
		}
		if len(c.buf)-c.r >= maxHeaderBytes {
			return c.refuse(&httpError{http.StatusRequestHeaderFieldsTooLarge, "the request line and headers exceed 64 KiB"})
		}
		if err := c.fill(first, c.t.ReadHeader); err != nil {
			return false // timed out or gone: nothing to answer
		}
	}
	if end > maxHeaderBytes {
		return c.refuse(&httpError{http.StatusRequestHeaderFieldsTooLarge, "the request line and headers exceed 64 KiB"})
	}
	head := string(c.buf[c.r : c.r+end]) // the one copy: every string of the request is part of it
	c.r += end
	var h requestHead
	if herr := h.parse(head, c.x.req.header[:0]); herr != nil {
		return c.refuse(herr)
	}
	c.x.req.header = h.fields
	keep := h.keepAlive

	// The body.
	kmsRoute := h.method == http.MethodPost && h.path == "/"
	var body []byte
	var bodyErr error
	switch {
	case h.contentLength > MaxBodyBytes:
		if !kmsRoute {
			return c.refuse(&httpError{http.StatusRequestEntityTooLarge, "the request body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"})
		}
		bodyErr, keep = errBodyTooLarge, false // the KMS answers, then the connection closes
	case h.contentLength > 0:
		body, bodyErr = c.readBody(first, int(h.contentLength), h.expectContinue)
		if bodyErr != nil {
			if !kmsRoute {
				return false
			}
			keep = false
		}
	}

	if c.s.http.shutdown.Load() {
		keep = false // answer, then close
	}
	now := time.Now()
	out := c.out[:0]
	if kmsRoute {
		req := &c.x.req
		req.ctx = c.ctx
		req.method, req.path, req.rawPath, req.rawQuery = h.method, h.path, h.path, h.query
		req.host, req.contentLength = h.host, h.contentLength
		req.source = c.source
		req.body, req.bodyErr = body, bodyErr
		c.s.handle(&c.x)
		resp := &c.x.resp
		out = appendStatusLine(out, resp.status)
		out = append(out, "Content-Type: application/x-amz-json-1.1\r\nContent-Length: "...)
		out = strconv.AppendInt(out, int64(len(resp.body)), 10)
		out = append(out, "\r\nDate: "...)
		out = c.s.http.appendDate(out, now)
		out = append(out, "\r\nx-amzn-RequestId: "...)
		out = append(out, resp.requestID...)
		if resp.errorType != "" {
			out = append(out, "\r\nx-amzn-ErrorType: "...)
			out = appendHeaderText(out, resp.errorType)
		}
		out = appendConnection(out, keep, h.http10)
		out = append(out, "\r\n\r\n"...)
		out = append(out, resp.body...)
		req.body, req.ctx = nil, nil
	} else {
		out, keep = c.serveHandler(out, head, body, keep, h.http10, h.method == http.MethodHead)
	}
	c.out = out
	if !c.write(out, now) {
		return false
	}
	if bodyErr == errBodyTooLarge {
		// The body is probably still coming: read it (up to a bound), so
		// that the client's writes do not fail before it reads the answer.
		c.linger(now, min(h.contentLength-int64(len(c.buf)-c.r), maxDrainBytes), c.t.Read)
		return false
	}
	if c.r == len(c.buf) && cap(c.buf) > maxKeptBuffer {
		c.buf, c.r = make([]byte, 0, connBufferSize), 0
	}
	return keep
}

// readBody returns the next n bytes of the connection: in buf when they
// fit (valid until the next request), else in a new slice.
func (c *conn) readBody(first time.Time, n int, expectContinue bool) ([]byte, error) {
	if len(c.buf)-c.r >= n {
		b := c.buf[c.r : c.r+n]
		c.r += n
		return b, nil
	}
	if expectContinue {
		if !c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"), time.Now()) {
			return nil, errors.New("could not write 100 Continue")
		}
	}
	if n > cap(c.buf) {
		// Memory follows the bytes that arrive, not the length claimed: a
		// client announcing a large body and sending nothing holds little.
		b := append(make([]byte, 0, min(n, max(2*cap(c.buf), 64<<10))), c.buf[c.r:]...)
		c.buf, c.r = c.buf[:0], 0
		dl := first.Add(c.t.Read)
		if err := c.nc.SetReadDeadline(dl); err != nil {
			return nil, err
		}
		c.rdl = dl
		for len(b) < n {
			if len(b) == cap(b) {
				b = slices.Grow(b, min(n, 2*cap(b))-len(b))
			}
			k, err := c.nc.Read(b[len(b):min(n, cap(b))])
			b = b[:len(b)+k]
			if err != nil && len(b) < n {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		return b, nil
	}
	if c.r > 0 {
		k := copy(c.buf, c.buf[c.r:])
		c.buf, c.r = c.buf[:k], 0
	}
	for len(c.buf) < n {
		if err := c.fill(first, c.t.Read); err != nil {
			return nil, err
		}
	}
	c.r = n
	return c.buf[:n], nil
}

// write writes b with the write deadline, and reports success.
func (c *conn) write(b []byte, now time.Time) bool {
	dl := now.Add(c.t.Write)
	if d := c.wdl.Sub(dl); d > 0 || d < -c.t.Write/16 {
		if c.nc.SetWriteDeadline(dl) != nil {
			return false
		}
		c.wdl = dl
	}
	_, err := c.nc.Write(b)
	return err == nil
}

// refuse answers a request the server will not serve, and closes.
func (c *conn) refuse(e *httpError) bool {
	now := time.Now()
	c.out = c.appendRefusal(c.out[:0], e, now)
	if c.write(c.out, now) {
		c.linger(now, 256<<10, 500*time.Millisecond)
	}
	return false
}

// appendRefusal appends the answer to a refused request.
func (c *conn) appendRefusal(out []byte, e *httpError, now time.Time) []byte {
	out = appendStatusLine(out, e.status)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(e.msg)+1), 10)
	out = append(out, "\r\nDate: "...)
	out = c.s.http.appendDate(out, now)
	out = append(out, "\r\nConnection: close\r\n\r\n"...)
	out = append(out, e.msg...)
	return append(out, '\n')
}

// linger lets an answer reach the client before the connection closes with
// input unread (which makes the close send a reset that can destroy the
// answer in flight): it shuts down the writing side and reads what comes,
// at most n bytes for at most wait.
func (c *conn) linger(now time.Time, n int64, wait time.Duration) {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.nc.SetReadDeadline(now.Add(wait))
		io.CopyN(io.Discard, c.nc, n)
	}
}

func appendStatusLine(dst []byte, status int) []byte {
	switch status {
	case http.StatusOK:
		return append(dst, "HTTP/1.1 200 OK\r\n"...)
	case http.StatusBadRequest:
		return append(dst, "HTTP/1.1 400 Bad Request\r\n"...)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	text := http.StatusText(status)
	if text == "" {
		text = "status code " + strconv.Itoa(status)
	}
	dst = append(dst, text...)
	return append(dst, "\r\n"...)
}

func appendConnection(dst []byte, keep, http10 bool) []byte {
	switch {
	case !keep:
		return append(dst, "\r\nConnection: close"...)
	case http10:
		return append(dst, "\r\nConnection: keep-alive"...)
	}
	return dst
}

// appendHeaderText appends s without the bytes a header value cannot hold.
func appendHeaderText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\t' || c >= 0x20 && c != 0x7f {
			dst = append(dst, c)
		}
	}
	return dst
}

// requestHead is a parsed request line and header section.
type requestHead struct {
	method, target, path, query string
	http10                      bool
	host                        string
	contentLength               int64
	expectContinue              bool
	keepAlive                   bool
	fields                      headerList
}

// parse parses a request line and header section (head, ending with the
// empty line), strictly, appending the header fields to fields.
func (h *requestHead) parse(head string, fields headerList) *httpError {
	bad := func(msg string) *httpError { return &httpError{http.StatusBadRequest, msg} }
	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" {
		return bad("malformed request line")
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f || c == '#' {
			return bad("malformed request target")
		}
	}
	if target[0] != '/' {
		return bad("the request target must be a path (origin form)")
	}
	switch proto {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		if strings.HasPrefix(proto, "HTTP/") && len(proto) == len("HTTP/1.1") && proto[6] == '.' {
			return &httpError{http.StatusHTTPVersionNotSupported, "only HTTP/1.1 and HTTP/1.0 are supported"}
		}
		return bad("malformed HTTP version")
	}
	h.method, h.target = method, target
	h.path, h.query, _ = strings.Cut(target, "?")

	var hasHost, hasLength, hasTE, chunked, connClose, connKeepAlive bool
	var expect string
	hasExpect := false
	for rest != "\r\n" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if len(fields) == maxHeaderFields {
			return &httpError{http.StatusRequestHeaderFieldsTooLarge, "more than 100 header fields"}
		}
		if line == "" {
			return bad("malformed header line")
		}
		if line[0] == ' ' || line[0] == '\t' {
			return bad("folded header line (obs-fold)")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return bad("malformed header line")
		}
		value = strings.Trim(value, " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return bad("control character in the value of header " + strconv.Quote(name))
			}
		}
		fields = append(fields, headerField{name, value})
		switch {
		case asciiEqualFold(name, "Host"):
			if hasHost {
				return bad("more than one Host header")
			}
			hasHost, h.host = true, value
			if !validHost(value) {
				return bad("malformed Host header")
			}
		case asciiEqualFold(name, "Content-Length"):
			if hasLength {
				return bad("more than one Content-Length header")
			}
			hasLength = true
			n, ok := parseContentLength(value)
			if !ok {
				return bad("malformed Content-Length")
			}
			h.contentLength = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			hasTE = true
			chunked = chunked || asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			for opt := range strings.SplitSeq(value, ",") {
				opt = strings.Trim(opt, " \t")
				connClose = connClose || asciiEqualFold(opt, "close")
				connKeepAlive = connKeepAlive || asciiEqualFold(opt, "keep-alive")
			}
		case asciiEqualFold(name, "Expect"):
			if hasExpect {
				return &httpError{http.StatusExpectationFailed, "more than one Expect header"}
			}
			hasExpect, expect = true, value
		}
	}
	h.fields = fields
	switch {
	case hasTE && hasLength:
		return bad("both Transfer-Encoding and Content-Length")
	case hasTE && chunked:
		return &httpError{http.StatusLengthRequired, "chunked request bodies are not supported: send Content-Length"}
	case hasTE:
		return &httpError{http.StatusNotImplemented, "Transfer-Encoding is not supported: send Content-Length"}
	case !hasHost && !h.http10:
		return bad("missing Host header")
	}
	if hasExpect && !h.http10 {
		if !asciiEqualFold(expect, "100-continue") {
			return &httpError{http.StatusExpectationFailed, "only Expect: 100-continue is supported"}
		}
		h.expectContinue = true
	}
	if h.http10 {
		h.keepAlive = connKeepAlive && !connClose
	} else {
		h.keepAlive = !connClose
	}
	return nil
}

// byteSet is a set of bytes.
type byteSet [256]bool

func newByteSet(ranges ...string) *byteSet {
	var s byteSet
	for _, r := range ranges {
		for i := 0; i < len(r); i++ {
			s[r[i]] = true
		}
	}
	return &s
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var (
	tokenBytes = newByteSet(alnum, "!#$%&'*+-.^_`|~")
	hostBytes  = newByteSet(alnum, "!$&'()*+,;=:[]%-._~")
)

// isToken reports whether s is an HTTP token (a method or header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenBytes[s[i]] {
			return false
		}
	}
	return s != ""
}

// validHost reports whether a Host value has only the characters of a
// host name (UTF-8 allowed), an IP literal and a port, as net/http
// checks.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !hostBytes[c] && c < 0x80 {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: digits only.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// serveHandler answers a request through Server.Handler (every route but
// POST /), from an *http.Request made of the request's bytes, and returns
// the answer appended to out and whether the connection stays open.
func (c *conn) serveHandler(out []byte, head string, body []byte, keep, http10, isHead bool) ([]byte, bool) {
	r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(body))))
	if err != nil {
		return c.appendRefusal(out, &httpError{http.StatusBadRequest, "malformed request"}, time.Now()), false
	}
	r.RemoteAddr = c.nc.RemoteAddr().String()
	r.TLS = c.tls
	w := &bufferedResponse{header: http.Header{}}
	c.s.Handler().ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.header
	if w.body.Len() > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Date", "Trailer"} {
		h.Del(k)
	}
	out = appendStatusLine(out, w.status)
	buf := bytes.NewBuffer(out)
	h.Write(buf)
	out = buf.Bytes()
	bodyAllowed := w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
	if bodyAllowed {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(w.body.Len()), 10)
		out = append(out, "\r\n"...)
	}
	out = append(out, "Date: "...)
	out = c.s.http.appendDate(out, time.Now())
	out = appendConnection(out, keep, http10)
	out = append(out, "\r\n\r\n"...)
	if bodyAllowed && !isHead {
		out = append(out, w.body.Bytes()...)
	}
	return out, keep
}

// bufferedResponse is an http.ResponseWriter that keeps the answer for
// the lean server to write.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
