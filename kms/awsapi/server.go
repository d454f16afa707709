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
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envelopekms/envelope/kms"
)

// MaxBodyBytes caps request bodies; the largest legitimate request (a
// 32 KiB key policy, escaped) is far below it.
const MaxBodyBytes = 1 << 20

// KeyResolver resolves key references for authorization. *kms.Service
// implements it.
type KeyResolver interface {
	ResolveKey(ctx context.Context, ref string) (string, error)
}

// Backend is what the server serves: the KMS operations, key resolution,
// and key ARNs (for authorization messages and the audit log).
type Backend interface {
	kms.API
	KeyResolver
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
	// Principals are further callers with the permissions they are
	// granted (from a policy file).
	Principals []*Principal
	// InsecureDev accepts unsigned requests as the root principal. Only
	// for development on loopback: the caller checks the address.
	InsecureDev bool
	// Audit receives one event per request; nil disables auditing.
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
	principals map[string]*Principal
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
	http       httpServer // the state of Serve and Shutdown
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
	s := &Server{cfg: cfg, principals: map[string]*Principal{}, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.root = &Principal{Name: "root", AccessKeyID: cfg.Root.AccessKeyID, SecretAccessKey: cfg.Root.SecretAccessKey, Root: true}
	s.principals[s.root.AccessKeyID] = s.root
	for _, p := range cfg.Principals {
		if _, dup := s.principals[p.AccessKeyID]; dup {
			return nil, fmt.Errorf("awsapi: access key %s is used twice", p.AccessKeyID)
		}
		s.principals[p.AccessKeyID] = p
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

// Handler returns the HTTP handler: the KMS API on POST /, /healthz and
// /metrics. [Server.Serve] serves the same routes with a leaner HTTP/1.1
// server; both run every KMS request through the same code.
func (s *Server) Handler() http.Handler {
	s.muxOnce.Do(func() {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/", s.serveKMS)
		s.mux = mux
	})
	return s.mux
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

// errBodyTooLarge is a request body over MaxBodyBytes.
var errBodyTooLarge = errors.New("request body too large")

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
	header        headerList
	source        string // the client's address, without the port
	body          []byte // not retained after handle returns
	// bodyErr is why the body was not read: errBodyTooLarge, errNoMemory,
	// an *authError from [Server.precheck], or a read error.
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
// request to request (per connection, or from a pool).
type exchange struct {
	req     kmsRequest
	resp    kmsResponse
	scratch []byte // SigV4 canonical request and string to sign
	audit   []byte // the audit line being built
	idBytes [16]byte
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// headerField is one header line of a request.
type headerField struct{ name, value string }

// headerList is a request's header lines in the order received; lookups
// ignore the case of names.
type headerList []headerField

// get returns the first value of the named header, or "".
func (h headerList) get(name string) string {
	for i := range h {
		if asciiEqualFold(h[i].name, name) {
			return h[i].value
		}
	}
	return ""
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

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
			req.header = append(req.header, headerField{name, v})
		}
	}
	req.source = sourceAddress(r.RemoteAddr)
	if r.ContentLength > precheckBytes && r.ContentLength <= MaxBodyBytes || r.ContentLength < 0 {
		// Refuse a request bound to be refused before reading its body;
		// then close the connection, reading little of the body after.
		if req.bodyErr = s.precheck(req); req.bodyErr != nil {
			w.Header().Set("Connection", "close")
			defer http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedWait))
		}
	}
	if req.bodyErr == nil {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = errBodyTooLarge
			}
			req.bodyErr = err
		}
		req.body = body
	}
	s.handle(x)
	resp := &x.resp
	h := w.Header()
	h.Set("x-amzn-RequestId", resp.requestID)
	h.Set("Content-Type", "application/x-amz-json-1.1")
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
	defer func() {
		if v := recover(); v != nil {
			// A bug below: answer, count and audit it as the failure it is.
			s.log.Error("panic serving a request", "requestId", id, "operation", op.name, "panic", v, "stack", string(debug.Stack()))
			fail(kms.CodeInternal, "internal error; request id "+id)
		}
		elapsed := time.Since(start)
		m := s.metrics(&op)
		if result == "Success" {
			m.success.Inc()
		} else {
			s.requests.WithLabelValues(op.name, result).Inc()
		}
		m.latency.Observe(elapsed.Seconds())
		if s.cfg.Audit != nil {
			x.audit = appendAuditTail(x.audit[:0], start, id, principal, r.source, op.name, info.keyARN, info.ecKeys, result)
			if _, err := s.cfg.Audit.writeTail(x.audit); err != nil {
				s.log.Error("audit write failed", "err", err, "requestId", id)
			}
		}
		level := slog.LevelDebug
		if result != "Success" {
			level = slog.LevelInfo
		}
		if s.log.Enabled(r.ctx, level) {
			s.log.Log(r.ctx, level, "request", "requestId", id, "operation", op.name, "principal", principal,
				"source", r.source, "result", result, "duration", elapsed)
		}
	}()

	if r.method != http.MethodPost || r.path != "/" {
		fail("UnknownOperationException", "the KMS API is POST / with an X-Amz-Target header")
		return
	}
	target := r.header.get("X-Amz-Target")
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
		case r.bodyErr == errBodyTooLarge:
			fail(kms.CodeValidation, fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
		case r.bodyErr == errNoMemory:
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
	ctx := r.ctx
	body := r.body
	var authz authorizer
	if !p.Root {
		authz = func(action string, ref resourceRef) error {
			return s.authorize(ctx, p, action, ref)
		}
	}
	out, err := op.call(ctx, s.cfg.Backend, body, authz, w.body[:0])
	info = out.audit
	info.keyARN = s.auditARN(ctx, info.keyARN, body)
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

// appendError appends an AWS JSON error body.
func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"__type":`...)
	dst = appendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, msg)
	return append(dst, '}')
}

// auditARN turns the key a request named (an alias, a bare id, or nothing
// for a Decrypt that named none) into the key's ARN for the audit log,
// when the key can be found.
func (s *Server) auditARN(ctx context.Context, ref string, body []byte) string {
	if strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":key/") {
		return ref
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
	if id, err := s.cfg.Backend.ResolveKey(ctx, ref); err == nil {
		return s.cfg.Backend.KeyARN(id)
	}
	return ref
}

// authenticate verifies the request's signature and returns its principal.
func (s *Server) authenticate(x *exchange) (*Principal, error) {
	r := &x.req
	if s.cfg.InsecureDev && r.header.get("Authorization") == "" {
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

// authorize checks that p may perform action on ref.
func (s *Server) authorize(ctx context.Context, p *Principal, action string, ref resourceRef) error {
	if p.Root {
		return nil
	}
	deny := func(what string) error {
		return &authError{CodeAccessDenied, fmt.Sprintf("User: %s is not authorized to perform: %s on %s", p.Name, action, what)}
	}
	if ref.alias != "" {
		// An alias as a resource: only grants naming it (or "*") apply.
		if p.allows(action, func(entry string) bool { return entry == ref.alias }) {
			return nil
		}
		return deny(ref.alias)
	}
	if ref.keyID == "" && len(ref.ciphertext) == 0 {
		// Operations on no key need a grant on "*".
		if p.allows(action, func(string) bool { return false }) {
			return nil
		}
		return deny("resource *")
	}
	var keyID string
	resolved := false
	if ref.keyID != "" {
		if id, err := s.cfg.Backend.ResolveKey(ctx, ref.keyID); err == nil {
			keyID, resolved = id, true
		}
	} else {
		keyID, resolved = kms.CiphertextKeyID(ref.ciphertext)
	}
	match := func(entry string) bool {
		if !resolved {
			return false // an unknown key matches only "*" (and then fails as not found)
		}
		if strings.HasPrefix(entry, "alias/") || strings.HasPrefix(entry, "arn:") {
			id, err := s.cfg.Backend.ResolveKey(ctx, entry)
			return err == nil && id == keyID
		}
		return entry == keyID
	}
	if p.allows(action, match) {
		return nil
	}
	if resolved {
		return deny("key " + s.cfg.Backend.KeyARN(keyID))
	}
	return deny(ref.keyID)
}
