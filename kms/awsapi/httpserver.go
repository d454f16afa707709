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
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
// What connections may hold is bounded ([Limits], limits.go): their number,
// globally and per source (at a cap, the least productive connection is
// shed); the memory of requests too large for a connection's 8 KiB buffer
// (a budget shared by all, waited for briefly, else ThrottlingException);
// the time to send a request's headers, counted from the accept for a
// connection's first request. Before a body over 4 KiB is read, the
// signature's access key and scope are checked ([Server.precheck]): a
// request that is bound to be refused is refused without its body.
//
// Any malformed request is answered with a 4xx or 5xx and the connection
// closed. POST / goes straight to [Server.handle]; every other route
// (/healthz, /metrics, anything else) goes through [Server.Handler], with
// an *http.Request made from the same bytes.

// Timeouts bound the connections of [Server.Serve]. Zero fields take the
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
	// precheckBytes is the body length over which a request's credentials
	// are checked before its body is read.
	precheckBytes = 4 << 10
	// refusedDrain and refusedWait bound what is read and dropped after a
	// refusal, before the connection closes.
	refusedDrain = 256 << 10
	refusedWait  = 500 * time.Millisecond
)

// ErrServerClosed is what [Server.Serve] returns after [Server.Shutdown]
// (it is net/http's, so that callers can treat both servers alike).
var ErrServerClosed = http.ErrServerClosed

// httpServer is the state of Serve and Shutdown.
type httpServer struct {
	once      sync.Once
	timeouts  Timeouts
	limits    Limits
	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     connSet // guarded by mu
	mem       requestMemory
	shutdown  atomic.Bool
	date      atomic.Pointer[httpDate]
	warned    atomic.Int64 // when a cap was last logged, in Unix seconds
}

// shedHelp describes envelope_http_connections_shed_total.
const shedHelp = "Connections closed at a connection cap to make room for a new one, by kind: " +
	"fresh (had not completed a signed request) or trusted (had)."

// setup resolves the timeouts and limits and registers the metrics, once.
func (hs *httpServer) setup(s *Server) {
	hs.once.Do(func() {
		hs.timeouts = s.cfg.Timeouts.withDefaults()
		hs.limits = s.cfg.Limits.withDefaults()
		hs.mem.limit = hs.limits.RequestMemory
		gauge := func(name, help string, f func() float64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
		}
		counter := func(name, help string, f func() float64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
		}
		s.Registry().MustRegister(
			gauge("envelope_http_connections", "Open connections of the HTTP server.", func() float64 {
				hs.mu.Lock()
				defer hs.mu.Unlock()
				return float64(hs.conns.all.n)
			}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "envelope_http_connections_shed_total", Help: shedHelp,
				ConstLabels: prometheus.Labels{"kind": "fresh"}}, func() float64 { return float64(hs.conns.shed.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "envelope_http_connections_shed_total", Help: shedHelp,
				ConstLabels: prometheus.Labels{"kind": "trusted"}}, func() float64 { return float64(hs.conns.shedTrusted.Load()) }),
			counter("envelope_http_connections_refused_total", "New connections closed at a connection cap, every open one being served.",
				func() float64 { return float64(hs.conns.refused.Load()) }),
			gauge("envelope_http_request_memory_bytes", "Memory held by requests beyond their connections' buffers (large bodies and headers).",
				func() float64 { return float64(hs.mem.inUse.Load()) }),
			gauge("envelope_http_request_memory_waiting", "Requests waiting for request memory.",
				func() float64 { return float64(hs.mem.waiting.Load()) }),
		)
	})
}

// httpDate is the Date header of one second.
type httpDate struct {
	unix int64
	text [len(http.TimeFormat)]byte
}

// Serve accepts connections on ln and serves the KMS API on each, with the
// lean HTTP/1.1 server, until ln fails or [Server.Shutdown] is called
// (then it returns [ErrServerClosed]). For HTTPS, pass a listener from
// [crypto/tls.NewListener] whose config offers only "http/1.1" by ALPN.
//
// It serves the same routes as [Server.Handler] with the same answers, at
// a fraction of net/http's cost per request, within the [Config]'s
// [Limits] and [Timeouts]. At a connection cap a new connection sheds an
// open one that is not being served: one that has not completed a signed
// request, the oldest first, else the one idle longest (limits.go says
// why); it is closed at once only when every open connection is being
// served.
func (s *Server) Serve(ln net.Listener) error {
	hs := &s.http
	hs.setup(s)
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
		shed := hs.conns.shed.Load() + hs.conns.shedTrusted.Load()
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			hs.warnAtCap(s)
			continue
		}
		go c.serve()
		if hs.conns.shed.Load()+hs.conns.shedTrusted.Load() != shed {
			// At a cap: let the new connection read its request before
			// accepting more, so that a flood of connections cannot make
			// the accept loop outrun the connections it sheds for.
			runtime.Gosched()
			hs.warnAtCap(s)
		}
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
	hs.conns.each(func(c *conn) {
		if c.state.CompareAndSwap(stateIdle, stateClosed) || c.state.CompareAndSwap(stateLinger, stateClosed) || force {
			c.cancel()   // a request in flight is abandoned
			c.nc.Close() // its goroutine then ends and forgets it
		}
	})
	return hs.conns.all.n == 0
}

// warnAtCap logs, at most once a minute, that connections are being shed
// or refused at a cap.
func (hs *httpServer) warnAtCap(s *Server) {
	now := time.Now().Unix()
	last := hs.warned.Load()
	if now-last < 60 || !hs.warned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("connection limit reached: shedding connections that have not completed a signed request, or idle longest",
		"maxConnections", hs.limits.MaxConnections, "maxConnectionsPerSource", hs.limits.MaxConnectionsPerSource,
		"shed", hs.conns.shed.Load(), "shedTrusted", hs.conns.shedTrusted.Load(), "refused", hs.conns.refused.Load())
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
	s        *Server
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
	x        exchange
	rdl      time.Time // the read deadline set
	wdl      time.Time // the write deadline set
	scanned  int       // how far the header scan has looked, from r
	// ctx is the requests' context, cancelled when the connection closes
	// (or Shutdown gives up waiting), as net/http's request contexts are.
	ctx    context.Context
	cancel context.CancelFunc
	// For the connection caps: lastDone is when the last answer was
	// written (Unix nanoseconds); the rest is guarded by httpServer.mu.
	lastDone atomic.Int64
	key      netip.Addr  // the source, as the per-source cap counts it
	src      *connGroup  // its source's connections
	links    [2]connLink // its places in the server's and the source's lists
	linked   bool        // in the lists (not closed, not shed)
	trusted  bool        // has completed a signed request
}

var connPool = sync.Pool{New: func() any { return new(conn) }}

// newConn registers a connection, shedding another at a cap, or returns
// nil during Shutdown or if every connection at the cap is being served.
func (s *Server) newConn(nc net.Conn) *conn {
	hs := &s.http
	hs.setup(s)
	c := connPool.Get().(*conn)
	c.s, c.nc, c.t = s, nc, hs.timeouts
	c.accepted = time.Now()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.state.Store(stateNew)
	c.lastDone.Store(c.accepted.UnixNano())
	c.key = sourceKeyOf(nc.RemoteAddr())
	if c.buf == nil {
		c.buf = make([]byte, 0, connBufferSize)
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.shutdown.Load() || !hs.conns.admit(c, &hs.limits) {
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
	c.s, c.nc, c.tls, c.source, c.ctx, c.cancel = nil, nil, nil, "", nil, nil
	c.served, c.key = 0, netip.Addr{}
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
	hs.conns.drop(c)
	hs.mu.Unlock()
	c.release()
}

// returnLoan gives buf's memory back to the request memory, if it was
// lent: buf must be empty.
func (c *conn) returnLoan() {
	if c.loan != nil {
		c.s.http.mem.put(c.loan)
		c.buf, c.own, c.loan = c.own[:0], nil, nil
	}
}

// returnBody gives a large body's memory back to the request memory.
func (c *conn) returnBody() {
	if c.bodyLoan != nil {
		c.s.http.mem.put(c.bodyLoan)
		c.bodyLoan = nil
	}
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
	clear(c.x.req.header) // nor the strings of its last request's headers
	c.x.req.header = c.x.req.header[:0]
	if c.served > 0 && !c.state.CompareAndSwap(stateBusy, stateIdle) {
		return false
	}
	if c.s.http.shutdown.Load() {
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
			b, ok := c.s.http.mem.get(maxHeaderBytes, earliest(time.Now().Add(memoryWait), dl), c.ctx.Done())
			if !ok {
				return errNoMemory
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
			if err == errNoMemory {
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
	if herr := h.parse(head, c.x.req.header[:0]); herr != nil {
		return c.refuse(herr)
	}
	c.x.req.header = h.fields
	keep := h.keepAlive
	kmsRoute := h.method == http.MethodPost && h.path == "/"
	req := &c.x.req
	if kmsRoute {
		req.ctx = c.ctx
		req.method, req.path, req.rawPath, req.rawQuery = h.method, h.path, h.path, h.query
		req.host, req.contentLength = h.host, h.contentLength
		req.source = c.source
	}

	// The body.
	var body []byte
	var bodyErr error
	unread := false // the body was refused unread
	switch {
	case h.contentLength > MaxBodyBytes:
		if !kmsRoute {
			return c.refuse(&httpError{http.StatusRequestEntityTooLarge, "the request body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"})
		}
		bodyErr, keep = errBodyTooLarge, false // the KMS answers, then the connection closes
	case h.contentLength > 0:
		n := int(h.contentLength)
		if kmsRoute && len(c.buf)-c.r < n && (n > precheckBytes || h.expectContinue) {
			// Refuse a request bound to be refused before waiting for,
			// and holding, its body.
			bodyErr = c.s.precheck(req)
		}
		if bodyErr == nil {
			body, bodyErr = c.readBody(first, n, h.expectContinue)
		}
		unread = bodyErr == errNoMemory || isAuthError(bodyErr)
		if bodyErr != nil {
			if !kmsRoute {
				if bodyErr == errNoMemory {
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

	if c.s.http.shutdown.Load() {
		keep = false // answer, then close
	}
	now := time.Now()
	out := c.out[:0]
	authenticated := false
	if kmsRoute {
		req.body, req.bodyErr = body, bodyErr
		c.s.handle(&c.x)
		c.returnBody()
		resp := &c.x.resp
		authenticated = resp.authenticated
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
		c.returnBody()
	}
	c.out = out
	if !c.write(out, now) {
		return false
	}
	c.served++
	c.lastDone.Store(now.UnixNano())
	if authenticated && !c.trusted {
		hs := &c.s.http
		hs.mu.Lock()
		hs.conns.trust(c)
		hs.mu.Unlock()
	}
	switch {
	case bodyErr == errBodyTooLarge:
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

// errBusy refuses a request of another route than the KMS's that cannot
// get request memory.
var errBusy = &httpError{http.StatusServiceUnavailable, "the server is busy: retry later"}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// isAuthError reports whether err is an authentication failure.
func isAuthError(err error) bool {
	_, ok := err.(*authError)
	return ok
}

// readBody returns the next n bytes of the connection: in buf when they
// fit (valid until the next request), else in a buffer lent by the
// request memory (valid until returnBody), waiting for it briefly
// (errNoMemory if it does not come).
func (c *conn) readBody(first time.Time, n int, expectContinue bool) ([]byte, error) {
	if len(c.buf)-c.r >= n {
		b := c.buf[c.r : c.r+n]
		c.r += n
		return b, nil
	}
	readDeadline := first.Add(c.t.Read)
	if n > cap(c.buf) {
		b, ok := c.s.http.mem.get(n, earliest(time.Now().Add(memoryWait), readDeadline), c.ctx.Done())
		if !ok {
			return nil, errNoMemory
		}
		c.bodyLoan = b
		if expectContinue && !c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"), time.Now()) {
			return nil, errors.New("could not write 100 Continue")
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
		return nil, errors.New("could not write 100 Continue")
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
	out = c.s.http.appendDate(out, now)
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
