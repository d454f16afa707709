// Package httpserver is a lean HTTP/1.1 server for an RPC-style API whose
// every call is POST / (as AWS's JSON protocols are), made for the KMS API
// of package awsapi. POST / goes straight to a [Handler], as an [Exchange]
// of plain values; every other request (/healthz, anything else) goes to a
// fallback [net/http.Handler], with an *http.Request made from the same
// bytes.
//
// It serves with one goroutine per connection, reused buffers, one read
// and one write system call per request in the common case, and strict
// parsing:
//
//   - request line and headers at most 64 KiB, at most 100 header fields
//     (431 otherwise);
//   - a body only by Content-Length, at most [MaxBodyBytes]; any
//     Transfer-Encoding is refused (411 for chunked, 501 for others, 400
//     with a Content-Length too), as are several Content-Length fields,
//     folded lines, control characters in values and HTTP/1.1 without Host
//     (400): no two parsers can disagree about where a request ends;
//   - "Expect: 100-continue" is answered before the body is read;
//   - pipelined requests are answered in order; HTTP/1.0 connections close
//     after the answer unless they ask for keep-alive.
//
// Any malformed request is answered with a 4xx or 5xx and the connection
// closed.
//
// # Bounds
//
// What connections may hold is bounded ([Limits], limits.go): their number,
// globally and per source (at a cap, the least productive connection is
// shed); the memory of requests too large for a connection's 8 KiB buffer
// (a budget shared by all, waited for briefly, else [ErrNoMemory]); the
// time to send a request's headers, counted from the accept for a
// connection's first request ([Timeouts]). Before a body over
// [PrecheckBytes] is waited for, the [Handler] is asked whether it wants
// it ([Handler.Precheck]): a request that is bound to be refused is
// refused without its body.
package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Timeouts bound the connections of a [Server]. Zero fields take the
// defaults.
type Timeouts struct {
	// ReadHeader bounds reading a request's line and headers: from the
	// connection's accept for its first request (a TLS handshake
	// included), so that a connection that sends nothing is closed after
	// it; from a later request's first byte; default 10 s.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included, from its first
	// byte; default 30 s. The body is read under this deadline, not the
	// header one.
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

// Bounds of the lean server.
const (
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes = 1 << 20
	// PrecheckBytes is the body length over which [Handler.Precheck] is
	// asked before the server waits for a body.
	PrecheckBytes = 4 << 10
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
	// maxDrainBytes is how much of an over-limit body to the Handler is
	// read and dropped after the answer, so that a client still sending it
	// gets the answer rather than a broken pipe.
	maxDrainBytes = 4 * MaxBodyBytes
	// refusedDrain and refusedWait bound what is read and dropped after a
	// refusal, before the connection closes.
	refusedDrain = 256 << 10
	refusedWait  = 500 * time.Millisecond
)

// Config configures a [Server].
type Config struct {
	// Timeouts bound the connections; zero fields take the defaults.
	Timeouts Timeouts
	// Limits bound the connections and the memory their requests hold;
	// zero fields take the defaults.
	Limits Limits
	// Logger logs what goes wrong with connections (failed accepts,
	// connection caps reached, panics, failed TLS handshakes); nil
	// discards.
	Logger *slog.Logger
}

// Server is a lean HTTP/1.1 server: [Server.Serve] serves listeners,
// [Server.Shutdown] stops it.
type Server struct {
	timeouts  Timeouts
	limits    Limits
	log       *slog.Logger
	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     connSet // guarded by mu
	mem       requestMemory
	shutdown  atomic.Bool
	date      atomic.Pointer[httpDate]
	warned    atomic.Int64 // when a cap was last logged, in Unix seconds
}

// New returns a Server with cfg's timeouts and limits, the defaults for
// the fields left zero.
func New(cfg Config) *Server {
	s := &Server{timeouts: cfg.Timeouts.withDefaults(), limits: cfg.Limits.withDefaults(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mem.limit = s.limits.RequestMemory
	return s
}

// Stats are what a [Server] holds and has done, for metrics.
type Stats struct {
	// Connections is the number of open connections.
	Connections int
	// ShedFresh and ShedTrusted count the connections closed at a
	// connection cap to make room for a new one: connections that had not
	// completed an authenticated request, and connections that had.
	ShedFresh, ShedTrusted int64
	// Refused counts the new connections closed at a connection cap,
	// every open one being served.
	Refused int64
	// RequestMemory is the memory held by requests beyond their
	// connections' buffers (large bodies and headers), in bytes;
	// RequestMemoryWaiting is the number of requests waiting for some.
	RequestMemory, RequestMemoryWaiting int64
}

// Stats returns the server's current [Stats].
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := s.conns.all.n
	s.mu.Unlock()
	return Stats{Connections: n, ShedFresh: s.conns.shed.Load(), ShedTrusted: s.conns.shedTrusted.Load(),
		Refused: s.conns.refused.Load(), RequestMemory: s.mem.inUse.Load(), RequestMemoryWaiting: s.mem.waiting.Load()}
}

// httpDate is the Date header of one second.
type httpDate struct {
	unix int64
	text [len(http.TimeFormat)]byte
}

// Serve accepts connections on ln and serves each, until ln fails or
// [Server.Shutdown] is called (then it returns [net/http.ErrServerClosed]).
// h serves POST /; fallback (if not nil; else 404 Not Found) every other
// request. For HTTPS, pass a listener from [crypto/tls.NewListener] whose
// config offers only "http/1.1" by ALPN.
//
// At a connection cap ([Limits]) a new connection sheds an open one that
// is not being served: one that has not completed an authenticated request
// ([Response.Authenticated]), the oldest first, else the one idle longest
// (limits.go says why); it is closed at once only when every open
// connection is being served.
func (s *Server) Serve(ln net.Listener, h Handler, fallback http.Handler) error {
	if fallback == nil {
		fallback = http.NotFoundHandler()
	}
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
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
		shed := s.conns.shed.Load() + s.conns.shedTrusted.Load()
		c := s.newConn(nc, h, fallback)
		if c == nil {
			nc.Close()
			s.warnAtCap()
			continue
		}
		go c.serve()
		if s.conns.shed.Load()+s.conns.shedTrusted.Load() != shed {
			// At a cap: let the new connection read its request before
			// accepting more, so that a flood of connections cannot make
			// the accept loop outrun the connections it sheds for.
			runtime.Gosched()
			s.warnAtCap()
		}
	}
}

// Shutdown stops Serve gracefully: it closes the listeners and the idle
// connections, then waits for the requests in flight to be answered (each
// connection closes after its answer). If ctx ends first, it closes the
// remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.mu.Unlock()
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if s.closeIdle(false) {
			return err
		}
		select {
		case <-ctx.Done():
			// Close every connection and cancel its request, then give the
			// handlers a moment to return, so that what the caller closes
			// next (the audit log, the store) is no longer in use.
			s.closeIdle(true)
			for range 100 {
				if s.closeIdle(false) {
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

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = map[*net.Listener]struct{}{}
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

// closeIdle closes the idle connections (all of them if force) and reports
// whether none remain.
func (s *Server) closeIdle(force bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns.each(func(c *conn) {
		if c.state.CompareAndSwap(stateIdle, stateClosed) || c.state.CompareAndSwap(stateLinger, stateClosed) || force {
			c.cancel()   // a request in flight is abandoned
			c.nc.Close() // its goroutine then ends and forgets it
		}
	})
	return s.conns.all.n == 0
}

// warnAtCap logs, at most once a minute, that connections are being shed
// or refused at a cap.
func (s *Server) warnAtCap() {
	now := time.Now().Unix()
	last := s.warned.Load()
	if now-last < 60 || !s.warned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("connection limit reached: shedding connections that have not completed an authenticated request, or idle longest",
		"maxConnections", s.limits.MaxConnections, "maxConnectionsPerSource", s.limits.MaxConnectionsPerSource,
		"shed", s.conns.shed.Load(), "shedTrusted", s.conns.shedTrusted.Load(), "refused", s.conns.refused.Load())
}

// appendDate appends now as an HTTP Date, formatted once a second.
func (s *Server) appendDate(dst []byte, now time.Time) []byte {
	unix := now.Unix()
	d := s.date.Load()
	if d == nil || d.unix != unix {
		d = &httpDate{unix: unix}
		now.UTC().AppendFormat(d.text[:0], http.TimeFormat)
		s.date.Store(d)
	}
	return append(dst, d.text[:]...)
}

// conn is one connection of the lean server.
type conn struct {
	s        *Server
	h        Handler      // serves POST /
	fallback http.Handler // serves the rest
	nc       net.Conn
	t        Timeouts
	state    atomic.Int32
	accepted time.Time
	served   int                  // requests answered
	source   string               // the client's address without the port
	tls      *tls.ConnectionState // for net/http handlers
	buf      []byte               // buf[r:] is received and not yet used
	r        int
	own      []byte // the connection's own buffer, while buf is a loan
	loan     []byte // buf's memory, when lent by the request memory
	bodyLoan []byte // a large body's memory, lent by the request memory
	out      []byte // the answer being written
	x        Exchange
	rdl      time.Time // the read deadline set
	wdl      time.Time // the write deadline set
	scanned  int       // how far the header scan has looked, from r
	// ctx is the requests' context, cancelled when the connection closes
	// (or Shutdown gives up waiting), as net/http's request contexts are.
	ctx    context.Context
	cancel context.CancelFunc
	// For the connection caps: lastDone is when the last answer was
	// written (Unix nanoseconds); the rest is guarded by Server.mu.
	lastDone atomic.Int64
	key      netip.Addr  // the source, as the per-source cap counts it
	src      *connGroup  // its source's connections
	links    [2]connLink // its places in the server's and the source's lists
	linked   bool        // in the lists (not closed, not shed)
	trusted  bool        // has completed an authenticated request
}

var connPool = sync.Pool{New: func() any { return new(conn) }}

// newConn registers a connection, shedding another at a cap, or returns
// nil during Shutdown or if every connection at the cap is being served.
func (s *Server) newConn(nc net.Conn, h Handler, fallback http.Handler) *conn {
	c := connPool.Get().(*conn)
	c.s, c.h, c.fallback, c.nc, c.t = s, h, fallback, nc, s.timeouts
	c.accepted = time.Now()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.state.Store(stateNew)
	c.lastDone.Store(c.accepted.UnixNano())
	c.key = sourceKeyOf(nc.RemoteAddr())
	if c.buf == nil {
		c.buf = make([]byte, 0, connBufferSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() || !s.conns.admit(c, &s.limits) {
		c.cancel()
		c.release()
		return nil
	}
	return c
}

// release returns the connection's buffers to the pool.
func (c *conn) release() {
	c.returnBody()
	c.returnLoan()
	c.s, c.h, c.fallback, c.nc, c.tls, c.source, c.ctx, c.cancel = nil, nil, nil, nil, nil, "", nil, nil
	c.served, c.key = 0, netip.Addr{}
	c.buf, c.r = c.buf[:0], 0
	c.rdl, c.wdl = time.Time{}, time.Time{}
	req, resp := &c.x.Request, &c.x.Response
	clear(req.Header[:cap(req.Header)]) // forget the last requests' strings
	clear(resp.Header[:cap(resp.Header)])
	*req = Request{Header: req.Header[:0]}
	*resp = Response{Header: resp.Header[:0], Body: resp.Body[:0]}
	if cap(c.buf) > maxKeptBuffer || cap(c.out) > maxKeptBuffer || cap(resp.Body) > maxKeptBuffer {
		return // let an outsize connection go
	}
	connPool.Put(c)
}

func (c *conn) close() {
	c.cancel()
	c.nc.Close()
	s := c.s
	s.mu.Lock()
	s.conns.drop(c)
	s.mu.Unlock()
	c.release()
}

// returnLoan gives buf's memory back to the request memory, if it was
// lent: buf must be empty.
func (c *conn) returnLoan() {
	if c.loan != nil {
		c.s.mem.put(c.loan)
		c.buf, c.own, c.loan = c.own[:0], nil, nil
	}
}

// returnBody gives a large body's memory back to the request memory.
func (c *conn) returnBody() {
	if c.bodyLoan != nil {
		c.s.mem.put(c.bodyLoan)
		c.bodyLoan = nil
	}
}

// httpError is a request the server refuses before any handler sees it;
// the connection closes after the answer.
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
		c.source = hostOf(addr.String())
	}
	if !c.state.CompareAndSwap(stateNew, stateIdle) {
		return // shut down before it started
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(c.accepted.Add(c.t.ReadHeader))
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
		if !c.serveRequest() || c.s.shutdown.Load() {
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
// connection, and reports whether they came. A connection's first request
// must come within the header timeout of its accept; later ones within the
// idle timeout of the last answer.
func (c *conn) next() bool {
	c.scanned = 0
	if c.r < len(c.buf) {
		// Pipelined: already here.
		return c.state.CompareAndSwap(stateBusy, stateReading)
	}
	c.buf, c.r = c.buf[:0], 0
	c.returnLoan()
	if cap(c.buf) > connBufferSize {
		c.buf = make([]byte, 0, connBufferSize) // an idle connection holds little
	}
	clear(c.x.Request.Header) // nor the strings of its last request's headers
	c.x.Request.Header = c.x.Request.Header[:0]
	if c.served > 0 && !c.state.CompareAndSwap(stateBusy, stateIdle) {
		return false
	}
	if c.s.shutdown.Load() {
		return false
	}
	from, timeout := time.Now(), c.t.Idle
	if c.served == 0 {
		from, timeout = c.accepted, c.t.ReadHeader
	}
	if err := c.fill(from, timeout); err != nil {
		return false
	}
	return c.state.CompareAndSwap(stateIdle, stateReading)
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
		switch {
		case c.r > 0:
			n := copy(c.buf, c.buf[c.r:])
			c.buf, c.r = c.buf[:n], 0
		case c.loan == nil && len(c.buf) < maxHeaderBytes:
			// A header section larger than the connection's buffer: its
			// room comes from the request memory.
			b, ok := c.s.mem.get(maxHeaderBytes, earliest(time.Now().Add(memoryWait), dl), c.ctx.Done())
			if !ok {
				return ErrNoMemory
			}
			c.own, c.loan, c.buf = c.buf, b, append(b[:0], c.buf...)
		default:
			c.buf = append(c.buf, 0)[:len(c.buf)] // grow (not reached: the header loop stops first)
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
	headerStart := first
	if c.served == 0 {
		headerStart = c.accepted // a first request's headers are due from the accept
	}
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
		if err := c.fill(headerStart, c.t.ReadHeader); err != nil {
			if err == ErrNoMemory {
				return c.refuse(errBusy)
			}
			return false // timed out or gone: nothing to answer
		}
	}
	if end > maxHeaderBytes {
		return c.refuse(&httpError{http.StatusRequestHeaderFieldsTooLarge, "the request line and headers exceed 64 KiB"})
	}
	head := string(c.buf[c.r : c.r+end]) // the one copy: every string of the request is part of it
	c.r += end
	var h requestHead
	req := &c.x.Request
	if herr := h.parse(head, req.Header[:0]); herr != nil {
		return c.refuse(herr)
	}
	req.Header = h.fields
	keep := h.keepAlive
	handlerRoute := h.method == http.MethodPost && h.path == "/"
	if handlerRoute {
		req.Context = c.ctx
		req.Method, req.Path, req.RawQuery = h.method, h.path, h.query
		req.Host, req.ContentLength = h.host, h.contentLength
		req.Source = c.source
	}

	// The body.
	var body []byte
	var bodyErr error
	unread := false // the body was refused unread
	switch {
	case h.contentLength > MaxBodyBytes:
		if !handlerRoute {
			return c.refuse(&httpError{http.StatusRequestEntityTooLarge, "the request body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"})
		}
		bodyErr, keep = ErrBodyTooLarge, false // the handler answers, then the connection closes
	case h.contentLength > 0:
		n := int(h.contentLength)
		if handlerRoute && len(c.buf)-c.r < n && (n > PrecheckBytes || h.expectContinue) {
			// Refuse a request bound to be refused before waiting for,
			// and holding, its body.
			bodyErr = c.h.Precheck(req)
			unread = bodyErr != nil
		}
		if bodyErr == nil {
			body, bodyErr = c.readBody(first, n, h.expectContinue)
			unread = bodyErr == ErrNoMemory
		}
		if bodyErr != nil {
			if !handlerRoute {
				if bodyErr == ErrNoMemory {
					return c.refuse(errBusy)
				}
				return false
			}
			keep = false
		}
	}
	if !c.state.CompareAndSwap(stateReading, stateBusy) {
		return false // shed or shut down meanwhile
	}

	if c.s.shutdown.Load() {
		keep = false // answer, then close
	}
	now := time.Now()
	out := c.out[:0]
	authenticated := false
	if handlerRoute {
		req.Body, req.BodyErr = body, bodyErr
		resp := &c.x.Response
		*resp = Response{Header: resp.Header[:0], Body: resp.Body[:0]}
		c.h.ServeExchange(&c.x)
		c.returnBody()
		req.Body, req.BodyErr, req.Context = nil, nil, nil
		authenticated = resp.Authenticated
		out = appendStatusLine(out, handlerStatus(resp.Status))
		for _, f := range resp.Header {
			if isToken(f.Name) {
				out = append(out, f.Name...)
				out = append(out, ": "...)
				out = appendHeaderText(out, f.Value)
				out = append(out, "\r\n"...)
			}
		}
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(resp.Body)), 10)
		out = append(out, "\r\nDate: "...)
		out = c.s.appendDate(out, now)
		out = appendConnection(out, keep, h.http10)
		out = append(out, "\r\n\r\n"...)
		out = append(out, resp.Body...)
	} else {
		out, keep = c.serveHandler(out, head, body, keep, h.http10, h.method == http.MethodHead)
		c.returnBody()
	}
	c.out = out
	if !c.write(out, now) {
		return false
	}
	c.served++
	c.lastDone.Store(now.UnixNano())
	if authenticated && !c.trusted {
		c.s.mu.Lock()
		c.s.conns.trust(c)
		c.s.mu.Unlock()
	}
	switch {
	case bodyErr == ErrBodyTooLarge:
		// The body is probably still coming: read it (up to a bound), so
		// that the client's writes do not fail before it reads the answer.
		c.linger(now, min(h.contentLength-int64(len(c.buf)-c.r), maxDrainBytes), c.t.Read)
		return false
	case unread:
		c.linger(now, min(h.contentLength-int64(len(c.buf)-c.r), refusedDrain), refusedWait)
		return false
	}
	if c.r == len(c.buf) && cap(c.buf) > maxKeptBuffer {
		c.buf, c.r = make([]byte, 0, connBufferSize), 0
	}
	return keep
}

// handlerStatus returns the status of a handler's answer: 200 for 0, and
// 500 for a status whose answer cannot have a body.
func handlerStatus(status int) int {
	switch {
	case status == 0:
		return http.StatusOK
	case status < 200 || status > 599 || status == http.StatusNoContent || status == http.StatusNotModified:
		return http.StatusInternalServerError
	}
	return status
}

// errBusy refuses a request to the fallback that cannot get request
// memory.
var errBusy = &httpError{http.StatusServiceUnavailable, "the server is busy: retry later"}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// readBody returns the next n bytes of the connection: in buf when they
// fit (valid until the next request), else in a buffer lent by the
// request memory (valid until returnBody), waiting for it briefly
// (ErrNoMemory if it does not come).
func (c *conn) readBody(first time.Time, n int, expectContinue bool) ([]byte, error) {
	if len(c.buf)-c.r >= n {
		b := c.buf[c.r : c.r+n]
		c.r += n
		return b, nil
	}
	readDeadline := first.Add(c.t.Read)
	if n > cap(c.buf) {
		b, ok := c.s.mem.get(n, earliest(time.Now().Add(memoryWait), readDeadline), c.ctx.Done())
		if !ok {
			return nil, ErrNoMemory
		}
		c.bodyLoan = b
		if expectContinue && !c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"), time.Now()) {
			return nil, errors.New("httpserver: could not write 100 Continue")
		}
		k := copy(b, c.buf[c.r:])
		c.buf, c.r = c.buf[:0], 0
		if err := c.nc.SetReadDeadline(readDeadline); err != nil {
			return nil, err
		}
		c.rdl = readDeadline
		for k < n {
			m, err := c.nc.Read(b[k:n])
			k += m
			if err != nil && k < n {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		return b, nil
	}
	if expectContinue && !c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"), time.Now()) {
		return nil, errors.New("httpserver: could not write 100 Continue")
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
		c.linger(now, refusedDrain, refusedWait)
	}
	return false
}

// appendRefusal appends the answer to a refused request.
func (c *conn) appendRefusal(out []byte, e *httpError, now time.Time) []byte {
	out = appendStatusLine(out, e.status)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(e.msg)+1), 10)
	out = append(out, "\r\nDate: "...)
	out = c.s.appendDate(out, now)
	out = append(out, "\r\nConnection: close\r\n\r\n"...)
	out = append(out, e.msg...)
	return append(out, '\n')
}

// linger lets an answer reach the client before the connection closes with
// input unread (which makes the close send a reset that can destroy the
// answer in flight): it shuts down the writing side and reads what comes,
// at most n bytes for at most wait. The connection may be shed meanwhile.
func (c *conn) linger(now time.Time, n int64, wait time.Duration) {
	if !c.state.CompareAndSwap(stateBusy, stateLinger) && !c.state.CompareAndSwap(stateReading, stateLinger) {
		return
	}
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
	fields                      Header
}

// parse parses a request line and header section (head, ending with the
// empty line), strictly, appending the header fields to fields.
func (h *requestHead) parse(head string, fields Header) *httpError {
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
		fields = append(fields, Field{name, value})
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
	c.fallback.ServeHTTP(w, r)
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
	out = c.s.appendDate(out, time.Now())
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
