// Package awsapi serves the KMS over the AWS KMS API: AWS JSON 1.1 over
// HTTP (POST /, X-Amz-Target: TrentService.<Operation>), authenticated with
// AWS Signature Version 4, authorized per principal and key, audited to a
// tamper-evident log, and measured for Prometheus. AWS SDKs, the AWS CLI
// and the AWS Encryption SDK work against it with only the endpoint
// changed.
//
// It is a thin adapter: every operation is the kms package's, through an
// explicit dispatch table.
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
	keys       sync.Map // signing keys by access key and scope
	nkeys      atomic.Int64
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
// /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", s.serveKMS)
	return mux
}

// requestID returns a random request id in AWS's UUID form.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// writeError answers with an AWS JSON error.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-ErrorType", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, msg})
	w.Write(b)
}

// statusOf maps an error name to its HTTP status.
// AWS answers client errors, authentication failures included, with 400.
func statusOf(code string) int {
	if code == kms.CodeInternal {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) serveKMS(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID()
	w.Header().Set("x-amzn-RequestId", id)
	opName := "Unknown"
	principal := "-"
	var info auditInfo
	result := "Success"
	defer func() {
		s.requests.WithLabelValues(opName, result).Inc()
		s.latency.WithLabelValues(opName).Observe(time.Since(start).Seconds())
		if s.cfg.Audit != nil {
			ev := &AuditEvent{Time: start.UTC().Format(time.RFC3339Nano), RequestID: id, Principal: principal,
				SourceAddress: sourceAddress(r), Operation: opName, KeyARN: info.keyARN,
				EncryptionContextKeys: info.ecKeys, Result: result}
			if err := s.cfg.Audit.Write(ev); err != nil {
				s.log.Error("audit write failed", "err", err, "requestId", id)
			}
		}
		level := slog.LevelDebug
		if result != "Success" {
			level = slog.LevelInfo
		}
		s.log.Log(r.Context(), level, "request", "requestId", id, "operation", opName, "principal", principal,
			"source", sourceAddress(r), "result", result, "duration", time.Since(start))
	}()
	fail := func(code, msg string) {
		result = code
		writeError(w, statusOf(code), code, msg)
	}

	if r.Method != http.MethodPost || r.URL.Path != "/" {
		fail("UnknownOperationException", "the KMS API is POST / with an X-Amz-Target header")
		return
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, "TrentService.")
	op, known := operations[name]
	if !ok || !known {
		fail("UnknownOperationException", fmt.Sprintf("unknown operation %q", target))
		return
	}
	opName = op.name
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(kms.CodeValidation, fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
		} else {
			fail("SerializationException", "could not read the request body")
		}
		return
	}
	p, err := s.authenticate(r, body)
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
	out, info2, err := op.call(r.Context(), s.cfg.Backend, body, func(action string, ref resourceRef) error {
		return s.authorize(r.Context(), p, action, ref)
	})
	info = info2
	info.keyARN = s.auditARN(r.Context(), info.keyARN, body)
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
			s.log.Error("internal error", "requestId", id, "operation", opName, "err", err)
			fail(kms.CodeInternal, "internal error; request id "+id)
		}
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		fail(kms.CodeInternal, "could not encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
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
func (s *Server) authenticate(r *http.Request, body []byte) (*Principal, error) {
	if s.cfg.InsecureDev && r.Header.Get("Authorization") == "" {
		return s.root, nil
	}
	sr, err := parseAuthorization(r)
	if err != nil {
		return nil, err
	}
	p, ok := s.principals[sr.accessKeyID]
	if !ok {
		return nil, &authError{CodeUnrecognizedClient, "The security token included in the request is invalid."}
	}
	key := func() []byte { return s.signingKey(p, sr) }
	if err := sr.verify(r, body, key, s.cfg.Region, s.cfg.Now()); err != nil {
		return nil, err
	}
	return p, nil
}

// signingKey returns the SigV4 signing key of a principal for a scope,
// derived once per day and cached (four HMACs saved per request).
func (s *Server) signingKey(p *Principal, sr *sigv4Request) []byte {
	id := p.AccessKeyID + "/" + sr.date + "/" + sr.region + "/" + sr.service
	if k, ok := s.keys.Load(id); ok {
		return k.([]byte)
	}
	k := signingKey(p.SecretAccessKey, sr.date, sr.region, sr.service)
	if s.nkeys.Add(1) > 10000 { // a new day, or many principals: start over
		s.keys.Clear()
		s.nkeys.Store(0)
	}
	s.keys.Store(id, k)
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
