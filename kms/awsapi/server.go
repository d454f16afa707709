// Package awsapi serves the KMS over the AWS KMS API: AWS JSON 1.1 over
// HTTP (POST /, X-Amz-Target: TrentService.<Operation>), authenticated with
// AWS Signature Version 4, authorized per principal and key, audited to a
// tamper-evident log, and measured for Prometheus. AWS SDKs, the AWS CLI
// and the AWS Encryption SDK work against it with only the endpoint
// changed.
//
// It is a thin adapter: every operation is the kms package's, through an
// explicit dispatch table.
//
// # Audit
//
// Every request is recorded in an [AuditLog] before it is answered, and
// the server fails closed: no answer goes out without its line. The log's
// lines, their bounds, the records the server adds (start, resume,
// summaries of unauthenticated failures) and its guarantees in each mode
// are described at [AuditLog]; [VerifyAuditLog] checks a log.
//
// # Serving
//
// [Server.Serve] serves a listener with a lean HTTP/1.1 server made for
// this API (what envelope serve runs: a fraction of net/http's cost per
// request); [Server.Handler] is the same API as a net/http handler, to
// mount in a server of one's own. Both hand every KMS request to the same
// code, so they answer alike.
package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
)

// MaxBodyBytes caps request bodies; the largest legitimate request (a
// 32 KiB key policy, escaped) is far below it.
const MaxBodyBytes = httpserver.MaxBodyBytes

// Backend is what the server serves: the KMS operations, and key ARNs
// (for the audit log). Its operations must ask the [kms.Authorizer] their
// context carries ([kms.WithAuthorizer]) about every key they act on, as
// *kms.Service does: the server authorizes its principals through it.
type Backend interface {
	kms.API
	KeyARN(id string) string
}

// Config configures a Server.
type Config struct {
	// Backend is the KMS.
	Backend Backend
	// Region is the region requests must be signed for; it should match
	// the KMS's ARNs.
	Region string
	// Root is the root principal's credentials (every permission).
	Root RootCredentials
	// Principals are further callers with their identity policies (from
	// a policy file); [Server.SetPrincipals] replaces them.
	Principals []*Principal
	// AccountID is the account of the principals' ARNs, which must be the
	// KMS's; default the Backend's AccountID() if it has one, else
	// kms.DefaultAccountID.
	AccountID string
	// SecureTransport is aws:SecureTransport: requests arrive over TLS.
	SecureTransport bool
	// InsecureDev accepts unsigned requests as the root principal if
	// their Host header is a loopback name (localhost, 127.0.0.0/8, ::1;
	// a web page sent here by DNS rebinding has its own name there).
	// Only for development on loopback: the caller checks the listening
	// address.
	InsecureDev bool
	// Audit receives one line per request (failures without credentials
	// beyond a rate are summarised); nil disables auditing. While it
	// cannot be written, every request is answered KMSInternalException
	// and /healthz answers 503.
	Audit *AuditLog
	// Logger logs requests and failures; nil discards.
	Logger *slog.Logger
	// Now is the clock for signature dates; default time.Now.
	Now func() time.Time
	// Timeouts bound the connections of [Server.Serve]; zero fields take
	// the defaults.
	Timeouts Timeouts
	// Limits bound the connections of [Server.Serve] and the memory their
	// requests hold; zero fields take the defaults.
	Limits Limits
}

// Server is the AWS-KMS-API HTTP handler.
type Server struct {
	cfg        Config
	account    string
	arnPrefix  string // arn:aws:kms:REGION:ACCOUNT:
	principals atomic.Pointer[principalSet]
	root       *Principal
	log        *slog.Logger
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	keys       sync.Map // *sigKey by access key and scope
	nkeys      atomic.Int64
	opMetrics  []opMetric // by operation index
	mux        http.Handler
	muxOnce    sync.Once
	lean       *httpserver.Server // the server of Serve and Shutdown
}

// opMetric holds an operation's metrics, resolved from their vectors on
// first use (a label lookup per request costs more than the rest of the
// bookkeeping).
type opMetric struct {
	once    sync.Once
	success prometheus.Counter
	latency prometheus.Observer
}

// metrics returns op's metrics.
func (s *Server) metrics(op *operation) *opMetric {
	m := &s.opMetrics[op.index]
	m.once.Do(func() {
		m.success = s.requests.WithLabelValues(op.name, "Success")
		m.latency = s.latency.WithLabelValues(op.name)
	})
	return m
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("awsapi: no backend")
	}
	if cfg.Region == "" {
		return nil, errors.New("awsapi: no region")
	}
	if cfg.Root.AccessKeyID == "" || cfg.Root.SecretAccessKey == "" {
		return nil, errors.New("awsapi: no root credentials")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, account: cfg.AccountID, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.account == "" {
		s.account = kms.DefaultAccountID
		if a, ok := cfg.Backend.(interface{ AccountID() string }); ok {
			s.account = a.AccountID()
		}
	}
	s.arnPrefix = "arn:aws:kms:" + cfg.Region + ":" + s.account + ":"
	s.root = &Principal{Name: "root", AccessKeyID: cfg.Root.AccessKeyID, SecretAccessKey: cfg.Root.SecretAccessKey, Root: true}
	s.root.caller = kms.Caller{ARN: "arn:aws:iam::" + s.account + ":root", Known: s.knownPrincipal}
	s.principals.Store(&principalSet{byKey: map[string]*Principal{s.root.AccessKeyID: s.root},
		byARN: map[string]*Principal{s.root.caller.ARN: s.root}})
	if err := s.SetPrincipals(cfg.Principals); err != nil {
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "envelope_kms_requests_total", Help: "KMS API requests by operation and result (Success or the AWS error name).",
	}, []string{"operation", "result"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "envelope_kms_request_duration_seconds", Help: "KMS API request latency by operation, from body read to answer.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"operation"})
	s.reg.MustRegister(s.requests, s.latency)
	if cfg.Audit != nil {
		s.reg.MustRegister(cfg.Audit.collectors()...)
	}
	s.lean = httpserver.New(httpserver.Config{Timeouts: cfg.Timeouts, Limits: cfg.Limits, Logger: s.log})
	s.reg.MustRegister(leanMetrics(s.lean)...)
	s.opMetrics = make([]opMetric, len(operations)+1)
	if cs, ok := cfg.Backend.(interface{ CacheStats() (uint64, uint64) }); ok {
		s.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "envelope_kms_key_cache_hits_total", Help: "Read-only KMS operations served from the in-memory key cache.",
			}, func() float64 { h, _ := cs.CacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "envelope_kms_key_cache_misses_total", Help: "Read-only KMS operations that read the key store.",
			}, func() float64 { _, m := cs.CacheStats(); return float64(m) }),
		)
	}
	return s, nil
}

// Registry returns the server's metrics registry, for more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler returns the HTTP handler: the KMS API on POST / and /healthz.
// [Server.Serve] serves the same routes with a leaner HTTP/1.1 server;
// both run every KMS request through the same code. The metrics are not
// among them: see [Server.MetricsHandler].
func (s *Server) Handler() http.Handler {
	s.muxOnce.Do(func() {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if s.cfg.Audit != nil {
				if err := s.cfg.Audit.Err(); err != nil {
					w.WriteHeader(http.StatusServiceUnavailable)
					io.WriteString(w, "unhealthy: "+err.Error()+"\n")
					return
				}
			}
			io.WriteString(w, "ok\n")
		})
		mux.HandleFunc("/", s.serveKMS)
		s.mux = mux
	})
	return s.mux
}

// MetricsHandler returns the Prometheus handler of the server's metrics
// (requests and latency by operation and result, the key cache, the Go
// runtime and the process). It does not authenticate: serve it on an
// address of its own that only the scraper reaches (envelope serve
// --metrics-addr), not beside the API, since what it shows (which
// operations run, how often, how many are refused) helps an attacker.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// newRequestID returns a random request id in AWS's UUID form. (x holds
// the bytes: a local array would escape to the heap through rand.Read.)
func (x *exchange) newRequestID() string {
	b := &x.idBytes
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var id [36]byte
	hex.Encode(id[0:8], b[0:4])
	id[8] = '-'
	hex.Encode(id[9:13], b[4:6])
	id[13] = '-'
	hex.Encode(id[14:18], b[6:8])
	id[18] = '-'
	hex.Encode(id[19:23], b[8:10])
	id[23] = '-'
	hex.Encode(id[24:36], b[10:16])
	return string(id[:])
}

// statusOf maps an error name to its HTTP status.
// AWS answers client errors, authentication failures included, with 400.
func statusOf(code string) int {
	if code == kms.CodeInternal {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// sourceAddress is the host part of a remote address.
func sourceAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// kmsRequest is one KMS API request as a front end hands it over: the
// net/http [Server.Handler] and the lean HTTP/1.1 server ([Server.Serve])
// both make one, and [Server.handle] does the rest.
type kmsRequest struct {
	ctx           context.Context
	method        string
	path          string // unescaped path, for routing
	rawPath       string // escaped path as sent, for SigV4
	rawQuery      string
	host          string
	contentLength int64
	header        httpserver.Header
	source        string // the client's address, without the port
	body          []byte // not retained after handle returns
	// bodyErr is why the body was not read: httpserver.ErrBodyTooLarge,
	// httpserver.ErrNoMemory, an *authError from [Server.precheck], or a
	// read error.
	bodyErr error
}

// kmsResponse is the answer to a request: its status, the headers that vary
// (Content-Type is always application/x-amz-json-1.1) and its JSON body.
type kmsResponse struct {
	status    int
	requestID string // x-amzn-RequestId
	errorType string // x-amzn-ErrorType, on errors
	body      []byte
	// authenticated: the request's signature was verified (or
	// InsecureDev let it through unsigned).
	authenticated bool
}

// exchange holds a request, its response and scratch space, reused from
// request to request through a pool.
type exchange struct {
	req     kmsRequest
	resp    kmsResponse
	scratch []byte // SigV4 canonical request and string to sign
	audit   []byte // the audit line being built
	idBytes [16]byte
	authz   keyAuthorizer // the KMS's authorizer for the request
}

// sourceIP parses a request's source address for aws:SourceIp.
func sourceIP(source string) netip.Addr {
	a, err := netip.ParseAddr(source)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// refusedReadWait is how long the net/http front end goes on reading a
// body it refused unread before the connection closes (as the lean
// server does).
const refusedReadWait = 500 * time.Millisecond

// serveKMS is the net/http front end of [Server.handle].
func (s *Server) serveKMS(w http.ResponseWriter, r *http.Request) {
	x := exchanges.Get().(*exchange)
	defer func() {
		x.req = kmsRequest{header: x.req.header[:0]}
		x.resp = kmsResponse{body: x.resp.body[:0]}
		exchanges.Put(x)
	}()
	req := &x.req
	req.ctx = r.Context()
	req.method = r.Method
	req.path = r.URL.Path
	req.rawPath = r.URL.EscapedPath()
	req.rawQuery = r.URL.RawQuery
	req.host = r.Host
	req.contentLength = r.ContentLength
	for name, values := range r.Header {
		for _, v := range values {
			req.header = append(req.header, httpserver.Field{Name: name, Value: v})
		}
	}
	req.source = sourceAddress(r.RemoteAddr)
	if r.ContentLength > httpserver.PrecheckBytes && r.ContentLength <= MaxBodyBytes || r.ContentLength < 0 {
		// Refuse a request bound to be refused before reading its body;
		// then close the connection, reading little of the body after.
		if req.bodyErr = s.precheck(req); req.bodyErr != nil {
			w.Header().Set("Connection", "close")
			defer http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedReadWait))
		}
	}
	if req.bodyErr == nil {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = httpserver.ErrBodyTooLarge
			}
			req.bodyErr = err
		}
		req.body = body
	}
	s.handle(x)
	resp := &x.resp
	h := w.Header()
	h.Set("x-amzn-RequestId", resp.requestID)
	h.Set("Content-Type", jsonContentType)
	if resp.errorType != "" {
		h.Set("x-amzn-ErrorType", resp.errorType)
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

// handle runs one KMS API request, whatever brought it, into x.resp: it
// checks the route and the operation, the body, the signature and the
// permissions, calls the KMS, and records the request in the metrics, the
// audit log and the log.
func (s *Server) handle(x *exchange) {
	r, w := &x.req, &x.resp
	start := time.Now()
	id := x.newRequestID()
	w.requestID = id
	w.status = http.StatusOK
	w.errorType = ""
	w.body = w.body[:0]
	w.authenticated = false
	op := unknownOperation
	principal := "-"
	var info auditInfo
	result := "Success"
	fail := func(code, msg string) {
		result = code
		w.status = statusOf(code)
		w.errorType = code
		w.body = appendError(w.body[:0], code, msg)
	}
	auditDown := false
	defer func() {
		if v := recover(); v != nil {
			// A bug below: answer, count and audit it as the failure it is.
			s.log.Error("panic serving a request", "requestId", id, "operation", op.name, "panic", v, "stack", string(debug.Stack()))
			fail(kms.CodeInternal, "internal error; request id "+id)
		}
		if s.cfg.Audit != nil && !auditDown && !s.audit(x, start, id, principal, op.name, info, result) {
			// Fail closed: no answer without its audit line. The answer
			// computed (it may hold a data key) is wiped and replaced.
			clear(w.body[:cap(w.body)])
			fail(kms.CodeInternal, auditRefusal)
		}
		elapsed := time.Since(start)
		m := s.metrics(&op)
		if result == "Success" {
			m.success.Inc()
		} else {
			s.requests.WithLabelValues(op.name, result).Inc()
		}
		m.latency.Observe(elapsed.Seconds())
		level := slog.LevelDebug
		if result != "Success" {
			level = slog.LevelInfo
		}
		if s.log.Enabled(r.ctx, level) {
			s.log.Log(r.ctx, level, "request", "requestId", id, "operation", op.name, "principal", principal,
				"source", r.source, "result", result, "duration", elapsed)
		}
	}()

	if s.cfg.Audit != nil && s.cfg.Audit.admit() != nil {
		auditDown = true // refused before anything runs, counted by the log
		fail(kms.CodeInternal, auditRefusal)
		return
	}
	if r.method != http.MethodPost || r.path != "/" {
		fail("UnknownOperationException", "the KMS API is POST / with an X-Amz-Target header")
		return
	}
	target := r.header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, "TrentService.")
	o, known := operations[name]
	if !ok || !known {
		fail("UnknownOperationException", fmt.Sprintf("unknown operation %q", target))
		return
	}
	op = o
	if r.bodyErr != nil {
		var ae *authError
		switch {
		case r.bodyErr == httpserver.ErrBodyTooLarge:
			fail(kms.CodeValidation, fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
		case r.bodyErr == httpserver.ErrNoMemory:
			fail(CodeThrottling, "too many large requests at once: retry later")
		case errors.As(r.bodyErr, &ae):
			fail(ae.code, ae.msg)
		default:
			fail("SerializationException", "could not read the request body")
		}
		return
	}
	p, err := s.authenticate(x)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			fail(ae.code, ae.msg)
		} else {
			fail(kms.CodeInternal, "authentication failed")
		}
		return
	}
	principal = p.Name
	w.authenticated = true
	body := r.body
	// The KMS asks x.authz about every key it resolves, in the
	// transaction that uses the key; x.authz remembers the key's ARN.
	x.authz = keyAuthorizer{p: p, caller: p.caller, log: s.log, prefix: s.arnPrefix}
	x.authz.caller.SourceIP = sourceIP(r.source)
	x.authz.caller.SecureTransport = s.cfg.SecureTransport
	ctx := kms.WithAuthorizer(r.ctx, &x.authz)
	var authz authorizer
	if !p.Root {
		authz = func(action, alias string) error { return s.authorizeIdentity(&x.authz, action, alias) }
	}
	out, err := op.call(ctx, s.cfg.Backend, body, authz, w.body[:0])
	info = out.audit
	info.keyARN = s.auditARN(info.keyARN, x.authz.keyARN, body)
	info.decidedBy, info.sid = x.authz.decidedBy, x.authz.sid
	if err != nil {
		var ae *authError
		var ke *kms.Error
		switch {
		case errors.As(err, &ae):
			fail(ae.code, ae.msg)
		case errors.As(err, &ke):
			fail(ke.Code, ke.Message)
		case errors.Is(err, context.Canceled):
			fail(kms.CodeInternal, "the request was cancelled")
		default:
			s.log.Error("internal error", "requestId", id, "operation", op.name, "err", err)
			fail(kms.CodeInternal, "internal error; request id "+id)
		}
		return
	}
	w.body = out.body
}

// auditRefusal is the message of requests refused because the audit log
// cannot be written.
const auditRefusal = "the audit log cannot be written, so no request is served until it can (see /healthz)"

// audit writes the request's audit line and reports whether it was written
// (or, for a failure with no authenticated principal beyond the rate,
// counted for a summary line).
func (s *Server) audit(x *exchange, start time.Time, id, principal, operation string, info auditInfo, result string) bool {
	a := s.cfg.Audit
	if principal == "-" && !a.admitUnauthenticated(x.req.source, result) {
		return true
	}
	x.audit = appendAuditTail(x.audit[:0], start, id, principal, x.req.source, operation, info.keyARN, info.ecKeys, info.decidedBy, info.sid, result)
	if _, err := a.writeTail(x.audit); err != nil {
		s.log.Error("audit write failed: the request is refused", "err", err, "requestId", id)
		return false
	}
	return true
}

// appendError appends an AWS JSON error body.
func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"__type":`...)
	dst = appendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, msg)
	return append(dst, '}')
}

// auditARN returns the key ARN the audit log records for a request: the
// ARN its answer reports (ref, then), else the ARN of the key the KMS
// resolved for it (resolved), else the key as the request named it (the ARN
// of the key a ciphertext names, when it named none).
func (s *Server) auditARN(ref, resolved string, body []byte) string {
	if strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":key/") {
		return ref
	}
	if resolved != "" {
		return resolved
	}
	if ref == "" {
		var in struct{ CiphertextBlob []byte }
		if json.Unmarshal(body, &in) == nil && len(in.CiphertextBlob) > 0 {
			if id, ok := kms.CiphertextKeyID(in.CiphertextBlob); ok {
				return s.cfg.Backend.KeyARN(id)
			}
		}
		return ""
	}
	return ref
}

// authenticate verifies the request's signature and returns its principal.
func (s *Server) authenticate(x *exchange) (*Principal, error) {
	r := &x.req
	if s.cfg.InsecureDev && r.header.Get("Authorization") == "" {
		// A page a browser was made to send here (DNS rebinding) names
		// its own host: only requests for a loopback name are root.
		if !loopbackHost(r.host) {
			return nil, &authError{CodeMissingAuthenticationToken, fmt.Sprintf("unsigned requests are accepted (--insecure-dev) only with a loopback Host header (localhost, 127.0.0.1 or [::1], any port), not %q: sign the request", r.host)}
		}
		return s.root, nil
	}
	sr, p, err := s.checkCredential(r)
	if err != nil {
		return nil, err
	}
	if x.scratch, err = sr.checkSignature(r, s.signingKey(p, &sr), x.scratch); err != nil {
		return nil, err
	}
	return p, nil
}

// loopbackHost reports whether a Host header names the loopback interface:
// localhost, an address of 127.0.0.0/8 or ::1, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// signingKey returns the SigV4 signing key of a principal for a scope,
// derived once per day and cached (four HMACs saved per request).
func (s *Server) signingKey(p *Principal, sr *sigv4Request) *sigKey {
	id := sr.credential // access key id/date/region/service/aws4_request
	if k, ok := s.keys.Load(id); ok {
		return k.(*sigKey)
	}
	k := newSigKey(signingKey(p.SecretAccessKey, sr.date, sr.region, sr.service))
	if s.nkeys.Add(1) > 10000 { // a new day, or many principals: start over
		s.keys.Clear()
		s.nkeys.Store(0)
	}
	s.keys.Store(strings.Clone(id), k) // id is part of a request's headers
	return k
}

// authorizeIdentity checks, by the principal's identity policies alone,
// that it may perform action on an alias as a resource of its own, or on
// no key if alias is "" (arn:aws:kms:REGION:ACCOUNT:*). Permissions on
// keys are decided in the KMS, which asks keyAuthorizer.
func (s *Server) authorizeIdentity(a *keyAuthorizer, action, alias string) error {
	res := s.arnPrefix + "*"
	if alias != "" {
		res = s.arnPrefix + alias
	}
	acc := kms.DecideIdentity(&a.caller, action, res, s.cfg.Region, time.Now())
	a.note(&acc, !acc.Allowed)
	return acc.Err("")
}

// keyAuthorizer is the [kms.Authorizer] of one request: the KMS asks it
// about every key it resolves for the request, in the transaction that
// then uses the key. It decides as AWS KMS does for the principal's caller
// (key policy, identity policies, grants; the root principal may do
// everything) and remembers, for the audit log, the ARN of the key
// refused, else of the last key asked about for the first action asked
// (ReEncrypt's source; an operation whose cached read missed asks again in
// its read of the store, which is the one that counts), and what decided.
type keyAuthorizer struct {
	p      *Principal
	caller kms.Caller
	log    *slog.Logger
	prefix string // arn:aws:kms:REGION:ACCOUNT:
	keyARN string
	action string // of keyARN
	denied bool
	// decidedBy and sid: what decided (a denial, else the last allowed
	// decision), for the audit log.
	decidedBy, sid string
}

var _ kms.Authorizer = (*keyAuthorizer)(nil)
var _ kms.CallerProvider = (*keyAuthorizer)(nil)

// Caller implements [kms.CallerProvider]: the caller CreateKey and
// PutKeyPolicy check a new key policy's lockout for.
func (a *keyAuthorizer) Caller() *kms.Caller { return &a.caller }

// note records what decided, for the audit log: a denial wins.
func (a *keyAuthorizer) note(acc *kms.Access, deny bool) {
	if a.decidedBy != "" && !deny && strings.HasPrefix(a.decidedBy, "deny") {
		return
	}
	verdict := "allow: "
	if deny {
		verdict = "deny: "
	}
	a.decidedBy = verdict + acc.Source.String()
	switch acc.Source {
	case kms.SourceGrant:
		a.decidedBy += " " + acc.GrantID
	case kms.SourceIdentityPolicy:
		a.decidedBy += " " + acc.Policy
	}
	a.sid = acc.Sid()
}

// Authorize implements [kms.Authorizer]. The refusal names the key as the
// caller named it (a key id as its ARN, an alias as its alias ARN), never
// what it resolved to, so that it tells nothing of other keys.
func (a *keyAuthorizer) Authorize(_ context.Context, req *kms.AuthzRequest) error {
	if req.Key != nil && !a.denied && (a.keyARN == "" || req.Action == a.action) {
		a.keyARN, a.action = req.Key.ARN, req.Action
	}
	if a.p.Root {
		return nil
	}
	acc := req.Decide(&a.caller)
	if acc.PolicyErr != nil {
		a.log.Error("the key policy of a key cannot be read: the key is refused to all but the root principal; set a valid one with PutKeyPolicy",
			"key", req.Key.ARN, "err", acc.PolicyErr)
	}
	a.note(&acc, !acc.Allowed)
	if acc.Allowed {
		return nil
	}
	if req.Key != nil && !a.denied {
		a.keyARN, a.denied = req.Key.ARN, true
	}
	return acc.Err(a.named(req))
}

// named returns the resource a refusal names: the key as the request
// named it, a key id as its key ARN and an alias name as its alias ARN.
func (a *keyAuthorizer) named(req *kms.AuthzRequest) string {
	ref := req.Ref
	switch {
	case ref == "" || strings.HasPrefix(ref, "arn:"):
		return ref
	case strings.HasPrefix(ref, "alias/"):
		return a.prefix + ref
	}
	return a.prefix + "key/" + ref
}
